using System.Data.Common;
using Microsoft.Data.Sqlite;
using Namra.Contracts.V1;

namespace Namra.Memory.Stores;

/// <summary>
/// <c>sqlite</c>: one database file, in write-ahead-log mode, fully synced on commit. Writers of this process queue
/// on one lock (SQLite admits one writer, and its own busy wait sleeps where a queue would not); appends also
/// take SQLite's write lock at their start (<c>BEGIN IMMEDIATE</c>) against other processes sharing the file.
/// </summary>
internal sealed class SqliteMemoryStore(string path, TimeSpan timeout, TimeProvider timeProvider) : SqlMemoryStore(timeProvider), IDisposable
{
    private readonly SemaphoreSlim _writer = new(1, 1);

    private readonly string _connectionString = new SqliteConnectionStringBuilder
    {
        DataSource = path,
        Mode = SqliteOpenMode.ReadWriteCreate,
        Pooling = true,
        DefaultTimeout = Math.Max(1, (int)timeout.TotalSeconds),
    }.ToString();

    public override MemoryType Type => MemoryType.Sqlite;

    public override TimeSpan Timeout => timeout;

    public override Task<AppendOutcome> AppendAsync(string tenant, string sessionId, string agentName, IReadOnlyList<Message> messages, Retention retention, CancellationToken cancellationToken) =>
        WriteAsync(() => base.AppendAsync(tenant, sessionId, agentName, messages, retention, cancellationToken), cancellationToken);

    public override Task<bool> DeleteSessionAsync(string tenant, string sessionId, CancellationToken cancellationToken) =>
        WriteAsync(() => base.DeleteSessionAsync(tenant, sessionId, cancellationToken), cancellationToken);

    public override Task<bool> CreateRunAsync(Run run, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken) =>
        WriteAsync(() => base.CreateRunAsync(run, journal, cancellationToken), cancellationToken);

    public override Task<bool> ReplaceRunAsync(Run run, long expectedVersion, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken) =>
        WriteAsync(() => base.ReplaceRunAsync(run, expectedVersion, journal, cancellationToken), cancellationToken);

    public override Task RememberAsync(string tenant, string space, StoredMemory memory, CancellationToken cancellationToken) =>
        WriteAsync(async () =>
        {
            await base.RememberAsync(tenant, space, memory, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public override Task<bool> ForgetAsync(string tenant, string space, string id, CancellationToken cancellationToken) =>
        WriteAsync(() => base.ForgetAsync(tenant, space, id, cancellationToken), cancellationToken);

    public override Task<IReadOnlyList<AuditEntry>> AppendAuditAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken) =>
        WriteAsync(() => base.AppendAuditAsync(entries, cancellationToken), cancellationToken);

    // BEGIN IMMEDIATE holds SQLite's one write lock already.
    protected override Task LockAuditAsync(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _writer.Dispose();

    private async Task<T> WriteAsync<T>(Func<Task<T>> write, CancellationToken cancellationToken)
    {
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await write().ConfigureAwait(false);
        }
        finally
        {
            _writer.Release();
        }
    }

    protected override string BinaryType => "BLOB";

    protected override string LockRow => "";

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } folder && !Directory.Exists(folder))
        {
            Directory.CreateDirectory(folder);
        }

        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    protected override Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken) =>
        Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: false));

    protected override void Bind(DbCommand command, object?[] values)
    {
        var parameters = ((SqliteCommand)command).Parameters;
        for (var i = 0; i < values.Length; i++)
        {
            parameters.AddWithValue($"${i + 1}", values[i] ?? DBNull.Value);
        }
    }

    protected override async Task MigrateAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, null, cancellationToken, "PRAGMA journal_mode = WAL").ConfigureAwait(false);
        await using var transaction = await BeginWriteAsync(connection, cancellationToken).ConfigureAwait(false);
        var version = await VersionAsync(connection, transaction, "PRAGMA user_version", cancellationToken).ConfigureAwait(false);
        foreach (var statement in Upgrade(version))
        {
            await ExecuteAsync(connection, transaction, cancellationToken, statement).ConfigureAwait(false);
        }

        await ExecuteAsync(connection, transaction, cancellationToken, $"PRAGMA user_version = {SchemaVersion}").ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }
}
