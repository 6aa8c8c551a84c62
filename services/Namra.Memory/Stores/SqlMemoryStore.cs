using System.Data.Common;
using System.Runtime.InteropServices;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Namra.Contracts;
using Namra.Contracts.V1;

namespace Namra.Memory.Stores;

/// <summary>
/// The SQL stores (SQLite and PostgreSQL) share one schema and one set of statements, written with <c>$1</c>
/// parameters; a subclass opens connections, binds parameters and serializes appends to one session. Messages
/// and run records are kept in their protobuf encoding, with the columns queries need beside them. Times are
/// Unix milliseconds.
/// </summary>
internal abstract class SqlMemoryStore(TimeProvider timeProvider) : IMemoryStore
{
    /// <summary>The schema version this code writes; older schemas are upgraded at start.</summary>
    protected const int SchemaVersion = 3;

    // The tables of version 1, renamed aside by the upgrade from it.
    private static readonly string[] Tables = ["namra_sessions", "namra_messages", "namra_runs", "namra_run_journal", "namra_memories"];

    public abstract MemoryType Type { get; }

    public abstract TimeSpan Timeout { get; }

    /// <summary>The column type for bytes.</summary>
    protected abstract string BinaryType { get; }

    /// <summary>An open connection.</summary>
    protected abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>A transaction in which the session's row can be read and written by one caller at a time.</summary>
    protected abstract Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>Appended to the statement that reads a session's row inside <see cref="BeginWriteAsync"/>, to lock it.</summary>
    protected abstract string LockRow { get; }

    /// <summary>Binds <c>$1</c>, <c>$2</c>... in order.</summary>
    protected abstract void Bind(DbCommand command, object?[] values);

    /// <summary>
    /// Reads the database's schema version (0 when it has none), runs <see cref="Upgrade"/> from it and records
    /// <see cref="SchemaVersion"/>, in one transaction guarded against other starting replicas.
    /// </summary>
    protected abstract Task MigrateAsync(DbConnection connection, CancellationToken cancellationToken);

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await MigrateAsync(connection, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The statements that bring a schema at <paramref name="version"/> to <see cref="SchemaVersion"/>. Version 1 had no
    /// tenants: its tables are renamed aside, the new ones made, and every row copied into the default tenant.
    /// </summary>
    protected IReadOnlyList<string> Upgrade(int version) => version switch
    {
        // Version 3 added the audit log, a table of its own.
        0 or 2 or SchemaVersion => Schema(),
        1 =>
        [
            .. Tables.Select(table => $"ALTER TABLE {table} RENAME TO {table}_v1"),
            "DROP INDEX IF EXISTS namra_runs_by_time",
            "DROP INDEX IF EXISTS namra_runs_by_status",
            .. Schema(),
            $"INSERT INTO namra_sessions SELECT '{Tenants.Default}', session_id, agent_name, message_count, next_seq, create_millis, update_millis, expire_millis FROM namra_sessions_v1",
            $"INSERT INTO namra_messages SELECT '{Tenants.Default}', session_id, seq, message_id, body FROM namra_messages_v1",
            $"INSERT INTO namra_runs SELECT '{Tenants.Default}', run_id, agent_name, session_id, status, create_millis, version, body FROM namra_runs_v1",
            $"INSERT INTO namra_run_journal SELECT '{Tenants.Default}', run_id, seq, body FROM namra_run_journal_v1",
            $"INSERT INTO namra_memories SELECT '{Tenants.Default}', namespace, id, text, metadata, model, embedding FROM namra_memories_v1",
            .. Tables.Select(table => $"DROP TABLE {table}_v1"),
        ],
        _ => throw new InvalidOperationException($"The database's schema is version {version}, newer than this build's ({SchemaVersion}); run a newer Namra against it."),
    };

    // Constraints are named, so that the unnamed ones of version 1's tables (renamed aside while rows are copied) do not clash.
    private List<string> Schema() =>
    [
        """
        CREATE TABLE IF NOT EXISTS namra_sessions (
            tenant TEXT NOT NULL, session_id TEXT NOT NULL, agent_name TEXT NOT NULL, message_count BIGINT NOT NULL, next_seq BIGINT NOT NULL,
            create_millis BIGINT NOT NULL, update_millis BIGINT NOT NULL, expire_millis BIGINT,
            CONSTRAINT namra_sessions_key PRIMARY KEY (tenant, session_id))
        """,
        $"""
        CREATE TABLE IF NOT EXISTS namra_messages (
            tenant TEXT NOT NULL, session_id TEXT NOT NULL, seq BIGINT NOT NULL, message_id TEXT NOT NULL, body {BinaryType} NOT NULL,
            CONSTRAINT namra_messages_key PRIMARY KEY (tenant, session_id, seq), CONSTRAINT namra_messages_once UNIQUE (tenant, session_id, message_id))
        """,
        $"""
        CREATE TABLE IF NOT EXISTS namra_runs (
            tenant TEXT NOT NULL, run_id TEXT NOT NULL, agent_name TEXT NOT NULL, session_id TEXT NOT NULL, status INTEGER NOT NULL,
            create_millis BIGINT NOT NULL, version BIGINT NOT NULL, body {BinaryType} NOT NULL,
            CONSTRAINT namra_runs_key PRIMARY KEY (tenant, run_id))
        """,
        "CREATE INDEX IF NOT EXISTS namra_runs_by_time ON namra_runs (tenant, create_millis DESC, run_id DESC)",
        "CREATE INDEX IF NOT EXISTS namra_runs_by_status ON namra_runs (status, create_millis DESC, run_id DESC)",
        $"""
        CREATE TABLE IF NOT EXISTS namra_run_journal (
            tenant TEXT NOT NULL, run_id TEXT NOT NULL, seq BIGINT NOT NULL, body {BinaryType} NOT NULL,
            CONSTRAINT namra_run_journal_key PRIMARY KEY (tenant, run_id, seq))
        """,
        $"""
        CREATE TABLE IF NOT EXISTS namra_memories (
            tenant TEXT NOT NULL, namespace TEXT NOT NULL, id TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT NOT NULL, model TEXT NOT NULL,
            embedding {BinaryType} NOT NULL, CONSTRAINT namra_memories_key PRIMARY KEY (tenant, namespace, id))
        """,
        $"""
        CREATE TABLE IF NOT EXISTS namra_audit (
            seq BIGINT NOT NULL, entry_id TEXT NOT NULL, tenant TEXT NOT NULL, body {BinaryType} NOT NULL,
            CONSTRAINT namra_audit_key PRIMARY KEY (seq), CONSTRAINT namra_audit_once UNIQUE (entry_id))
        """,
        "CREATE INDEX IF NOT EXISTS namra_audit_by_tenant ON namra_audit (tenant, seq)",
    ];

    public virtual async Task<AppendOutcome> AppendAsync(string tenant, string sessionId, string agentName, IReadOnlyList<Message> messages, Retention retention, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await BeginWriteAsync(connection, cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, cancellationToken,
            "INSERT INTO namra_sessions (tenant, session_id, agent_name, message_count, next_seq, create_millis, update_millis) VALUES ($1, $2, $3, 0, 0, $4, $4) ON CONFLICT (tenant, session_id) DO NOTHING",
            tenant, sessionId, agentName, now).ConfigureAwait(false);

        long nextSeq, count;
        long? expires;
        await using (var reader = await ReadAsync(connection, transaction, cancellationToken,
            "SELECT next_seq, message_count, expire_millis FROM namra_sessions WHERE tenant = $1 AND session_id = $2" + LockRow, tenant, sessionId).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            (nextSeq, count, expires) = (reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2));
        }

        if (expires <= now)
        {
            // An expired session starts again, empty.
            await ExecuteAsync(connection, transaction, cancellationToken, "DELETE FROM namra_messages WHERE tenant = $1 AND session_id = $2", tenant, sessionId).ConfigureAwait(false);
            await ExecuteAsync(connection, transaction, cancellationToken,
                "UPDATE namra_sessions SET agent_name = $3, create_millis = $4, message_count = 0, next_seq = 0 WHERE tenant = $1 AND session_id = $2", tenant, sessionId, agentName, now).ConfigureAwait(false);
            (nextSeq, count) = (0, 0);
        }

        var appended = 0;
        foreach (var message in messages)
        {
            appended += await ExecuteAsync(connection, transaction, cancellationToken,
                "INSERT INTO namra_messages (tenant, session_id, seq, message_id, body) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, session_id, message_id) DO NOTHING",
                tenant, sessionId, nextSeq + appended, message.Id, message.ToByteArray()).ConfigureAwait(false);
        }

        nextSeq += appended;
        count += appended;
        if (retention.MaxMessages > 0 && count > retention.MaxMessages)
        {
            await ExecuteAsync(connection, transaction, cancellationToken,
                "DELETE FROM namra_messages WHERE tenant = $1 AND session_id = $2 AND seq < $3", tenant, sessionId, nextSeq - retention.MaxMessages).ConfigureAwait(false);
            count = retention.MaxMessages;
        }

        await ExecuteAsync(connection, transaction, cancellationToken,
            "UPDATE namra_sessions SET next_seq = $3, message_count = $4, update_millis = $5, expire_millis = $6 WHERE tenant = $1 AND session_id = $2",
            tenant, sessionId, nextSeq, count, now, retention.Ttl is { } ttl ? now + (long)ttl.TotalMilliseconds : null).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new AppendOutcome(appended, messages.Count - appended, count);
    }

    public async Task<History?> GetHistoryAsync(string tenant, string sessionId, int newest, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        long total;
        await using (var reader = await ReadAsync(connection, null, cancellationToken,
            "SELECT message_count FROM namra_sessions WHERE tenant = $1 AND session_id = $2 AND (expire_millis IS NULL OR expire_millis > $3)", tenant, sessionId, now).ConfigureAwait(false))
        {
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            total = reader.GetInt64(0);
        }

        var messages = new List<Message>();
        await using (var reader = await ReadAsync(connection, null, cancellationToken,
            "SELECT body FROM namra_messages WHERE tenant = $1 AND session_id = $2 ORDER BY seq DESC LIMIT $3", tenant, sessionId, newest > 0 ? (long)newest : long.MaxValue).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                messages.Add(Message.Parser.ParseFrom((byte[])reader.GetValue(0)));
            }
        }

        messages.Reverse();
        return new History(messages, total);
    }

    public async Task<IReadOnlyList<Session>> ListSessionsAsync(string tenant, string agentName, int limit, string afterId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var reader = await ReadAsync(connection, null, cancellationToken,
            """
            SELECT session_id, agent_name, message_count, create_millis, update_millis FROM namra_sessions
            WHERE tenant = $1 AND session_id > $2 AND ($3 = '' OR agent_name = $3) AND (expire_millis IS NULL OR expire_millis > $4)
            ORDER BY session_id LIMIT $5
            """,
            tenant, afterId, agentName, timeProvider.GetUtcNow().ToUnixTimeMilliseconds(), (long)limit).ConfigureAwait(false);
        var sessions = new List<Session>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            sessions.Add(new Session
            {
                SessionId = reader.GetString(0),
                AgentName = reader.GetString(1),
                MessageCount = reader.GetInt64(2),
                CreateTime = Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3))),
                UpdateTime = Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4))),
            });
        }

        return sessions;
    }

    public virtual async Task<bool> DeleteSessionAsync(string tenant, string sessionId, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await BeginWriteAsync(connection, cancellationToken).ConfigureAwait(false);
        bool live;
        await using (var reader = await ReadAsync(connection, transaction, cancellationToken,
            "SELECT expire_millis FROM namra_sessions WHERE tenant = $1 AND session_id = $2" + LockRow, tenant, sessionId).ConfigureAwait(false))
        {
            live = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && (reader.IsDBNull(0) || reader.GetInt64(0) > now);
        }

        await ExecuteAsync(connection, transaction, cancellationToken, "DELETE FROM namra_messages WHERE tenant = $1 AND session_id = $2", tenant, sessionId).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, cancellationToken, "DELETE FROM namra_sessions WHERE tenant = $1 AND session_id = $2", tenant, sessionId).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return live;
    }

    public virtual async Task<bool> CreateRunAsync(Run run, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await BeginWriteAsync(connection, cancellationToken).ConfigureAwait(false);
        if (await ExecuteAsync(connection, transaction, cancellationToken,
            "INSERT INTO namra_runs (tenant, run_id, agent_name, session_id, status, create_millis, version, body) VALUES ($1, $2, $3, $4, $5, $6, 1, $7) ON CONFLICT (tenant, run_id) DO NOTHING",
            run.Tenant, run.RunId, run.Agent?.Name ?? "", run.SessionId, (long)run.Status, RunPosition.Millis(run), run.ToByteArray()).ConfigureAwait(false) != 1)
        {
            return false;
        }

        await AppendJournalAsync(connection, transaction, run, journal, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    public async Task<IReadOnlyList<RunJournalEntry>> GetJournalAsync(string tenant, string runId, long after, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var reader = await ReadAsync(connection, null, cancellationToken,
            "SELECT body FROM namra_run_journal WHERE tenant = $1 AND run_id = $2 AND seq > $3 ORDER BY seq LIMIT $4", tenant, runId, after, limit).ConfigureAwait(false);
        var entries = new List<RunJournalEntry>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            entries.Add(RunJournalEntry.Parser.ParseFrom((byte[])reader.GetValue(0)));
        }

        return entries;
    }

    // Inserts fail on a sequence the journal holds already: the transaction then writes nothing.
    private async Task AppendJournalAsync(DbConnection connection, DbTransaction transaction, Run run, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken)
    {
        foreach (var entry in journal)
        {
            await ExecuteAsync(connection, transaction, cancellationToken,
                "INSERT INTO namra_run_journal (tenant, run_id, seq, body) VALUES ($1, $2, $3, $4)", run.Tenant, run.RunId, entry.Sequence, entry.ToByteArray()).ConfigureAwait(false);
        }
    }

    public async Task<VersionedRun?> GetRunAsync(string tenant, string runId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var reader = await ReadAsync(connection, null, cancellationToken, "SELECT body, version FROM namra_runs WHERE tenant = $1 AND run_id = $2", tenant, runId).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new VersionedRun(Run.Parser.ParseFrom((byte[])reader.GetValue(0)), reader.GetInt64(1))
            : null;
    }

    public virtual async Task<bool> ReplaceRunAsync(Run run, long expectedVersion, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await BeginWriteAsync(connection, cancellationToken).ConfigureAwait(false);
        if (await ExecuteAsync(connection, transaction, cancellationToken,
            "UPDATE namra_runs SET body = $4, status = $5, session_id = $6, version = version + 1 WHERE tenant = $1 AND run_id = $2 AND version = $3",
            run.Tenant, run.RunId, expectedVersion, run.ToByteArray(), (long)run.Status, run.SessionId).ConfigureAwait(false) != 1)
        {
            return false;
        }

        await AppendJournalAsync(connection, transaction, run, journal, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    public async Task<IReadOnlyList<VersionedRun>> ListRunsAsync(RunFilter filter, int limit, RunPosition? after, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        // One tenant's runs are read through the index that leads with the tenant; every tenant's (the recovery scan) by status.
        await using var reader = await ReadAsync(connection, null, cancellationToken,
            $"""
            SELECT body, version FROM namra_runs
            WHERE {(filter.Tenant is null ? "$7 = ''" : "tenant = $7")} AND ($1 = '' OR agent_name = $1) AND ($2 = '' OR session_id = $2) AND ($3 = 0 OR status = $3)
              AND (create_millis < $4 OR (create_millis = $4 AND run_id < $5))
            ORDER BY create_millis DESC, run_id DESC LIMIT $6
            """,
            filter.AgentName, filter.SessionId, (long)filter.Status, after?.CreateMillis ?? long.MaxValue, after?.RunId ?? "", (long)limit, filter.Tenant ?? "").ConfigureAwait(false);
        var runs = new List<VersionedRun>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            runs.Add(new VersionedRun(Run.Parser.ParseFrom((byte[])reader.GetValue(0)), reader.GetInt64(1)));
        }

        return runs;
    }

    public virtual async Task RememberAsync(string tenant, string space, StoredMemory memory, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, null, cancellationToken,
            """
            INSERT INTO namra_memories (tenant, namespace, id, text, metadata, model, embedding) VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (tenant, namespace, id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata, model = excluded.model, embedding = excluded.embedding
            """,
            tenant, space, memory.Id, memory.Text, JsonSerializer.Serialize(memory.Metadata, StoredJson.Default.IReadOnlyDictionaryStringString), memory.Model, MemoryMarshal.AsBytes(memory.Embedding.AsSpan()).ToArray()).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<StoredMemory>> MemoriesAsync(string tenant, string space, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var reader = await ReadAsync(connection, null, cancellationToken,
            "SELECT id, text, metadata, model, embedding FROM namra_memories WHERE tenant = $1 AND namespace = $2 LIMIT $3", tenant, space, (long)limit).ConfigureAwait(false);
        var memories = new List<StoredMemory>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            memories.Add(MemoryOf(reader));
        }

        return memories;
    }

    public async Task<StoredMemory?> MemoryAsync(string tenant, string space, string id, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var reader = await ReadAsync(connection, null, cancellationToken,
            "SELECT id, text, metadata, model, embedding FROM namra_memories WHERE tenant = $1 AND namespace = $2 AND id = $3", tenant, space, id).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? MemoryOf(reader) : null;
    }

    public virtual async Task<bool> ForgetAsync(string tenant, string space, string id, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return await ExecuteAsync(connection, null, cancellationToken, "DELETE FROM namra_memories WHERE tenant = $1 AND namespace = $2 AND id = $3", tenant, space, id)
            .ConfigureAwait(false) > 0;
    }

    private static StoredMemory MemoryOf(DbDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        JsonSerializer.Deserialize(reader.GetString(2), StoredJson.Default.DictionaryStringString) ?? [],
        reader.GetString(3),
        MemoryMarshal.Cast<byte, float>((byte[])reader.GetValue(4)).ToArray());

    /// <summary>Makes the transaction the only writer of the audit log until it ends.</summary>
    protected abstract Task LockAuditAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken);

    public virtual async Task<IReadOnlyList<AuditEntry>> AppendAuditAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await BeginWriteAsync(connection, cancellationToken).ConfigureAwait(false);
        await LockAuditAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        AuditEntry? previous = null;
        await using (var reader = await ReadAsync(connection, transaction, cancellationToken, "SELECT body FROM namra_audit ORDER BY seq DESC LIMIT 1").ConfigureAwait(false))
        {
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                previous = AuditEntry.Parser.ParseFrom((byte[])reader.GetValue(0));
            }
        }

        var stored = new List<AuditEntry>(entries.Count);
        foreach (var entry in entries)
        {
            // A retried append: what the log holds already is not added again.
            await using (var held = await ReadAsync(connection, transaction, cancellationToken, "SELECT 1 FROM namra_audit WHERE entry_id = $1", entry.Id).ConfigureAwait(false))
            {
                if (await held.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    continue;
                }
            }

            var linked = entry.Clone();
            AuditChain.Link(linked, previous);
            await ExecuteAsync(connection, transaction, cancellationToken, "INSERT INTO namra_audit (seq, entry_id, tenant, body) VALUES ($1, $2, $3, $4)",
                linked.Sequence, linked.Id, linked.Tenant, linked.ToByteArray()).ConfigureAwait(false);
            stored.Add(linked);
            previous = linked;
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return stored;
    }

    public async Task<IReadOnlyList<AuditEntry>> ListAuditAsync(string? tenant, long afterSequence, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var reader = await ReadAsync(connection, null, cancellationToken,
            $"SELECT body FROM namra_audit WHERE {(tenant is null ? "$1 = ''" : "tenant = $1")} AND seq > $2 ORDER BY seq LIMIT $3",
            tenant ?? "", afterSequence, (long)limit).ConfigureAwait(false);
        var entries = new List<AuditEntry>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            entries.Add(AuditEntry.Parser.ParseFrom((byte[])reader.GetValue(0)));
        }

        return entries;
    }

    /// <summary>The schema version a database records, as <paramref name="query"/> reads it (0 when it records none).</summary>
    protected static async Task<int> VersionAsync(DbConnection connection, DbTransaction transaction, string query, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = query;
        return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Runs a statement and returns the rows it affected.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1068", Justification = "The values read best after the SQL they bind.")]
    protected async Task<int> ExecuteAsync(DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken, string sql, params object?[] values)
    {
        await using var command = Command(connection, transaction, sql, values);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1068", Justification = "The values read best after the SQL they bind.")]
    private async Task<DbDataReader> ReadAsync(DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken, string sql, params object?[] values)
    {
        // The reader owns the command's resources until it is disposed.
        var command = Command(connection, transaction, sql, values);
        return await command.ExecuteReaderAsync(System.Data.CommandBehavior.Default, cancellationToken).ConfigureAwait(false);
    }

    private DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, object?[] values)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        Bind(command, values);
        return command;
    }
}
