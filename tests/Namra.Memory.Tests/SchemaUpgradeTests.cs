using System.Data.Common;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Namra.Contracts.V1;
using Namra.Testing;
using Npgsql;

namespace Namra.Memory.Tests;

/// <summary>
/// A database written by the first schema (before tenants) is upgraded at start: every session, message, run, journal
/// step and memory it held is the default tenant's afterwards, and no other tenant sees it.
/// </summary>
public abstract class SchemaUpgradeContract : IAsyncLifetime
{
    private NamraTestHost? _host;

    protected abstract string BinaryType { get; }

    protected abstract Task<DbConnection> OpenAsync();

    /// <summary>Records the first schema's version the way the store reads it.</summary>
    protected abstract string MarkVersion1 { get; }

    /// <summary>The schema version the store recorded.</summary>
    protected abstract string ReadVersion { get; }

    protected abstract IDictionary<string, string?> Settings { get; }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public virtual async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task EverythingStoredBeforeTenants_IsTheDefaultTenants_AfterTheUpgrade()
    {
        var message = new Message { Id = "m1", Role = Role.User, Content = { new ContentBlock { Text = "remembered from before" } } };
        var run = new Run { RunId = "old-run", Agent = new AgentRef { Name = "old-agent", Version = "1.0.0" }, Status = RunStatus.Completed, Answer = "42",
            CreateTime = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero)) };
        var step = new RunJournalEntry { Sequence = 1, Began = new RunBegan { Agent = new AgentDefinition { Name = "old-agent" }, Input = message } };
        await using (var connection = await OpenAsync())
        {
            foreach (var statement in Version1Schema(BinaryType).Append(MarkVersion1))
            {
                await ExecuteAsync(connection, statement);
            }

            await ExecuteAsync(connection, "INSERT INTO namra_sessions VALUES ('old-session', 'old-agent', 1, 1, 1000, 1000, NULL)");
            await ExecuteAsync(connection, "INSERT INTO namra_messages VALUES ('old-session', 0, 'm1', @body)", message.ToByteArray());
            await ExecuteAsync(connection, "INSERT INTO namra_runs VALUES ('old-run', 'old-agent', '', 3, @millis, 4, @body)", run.ToByteArray(), 1767323045000L);
            await ExecuteAsync(connection, "INSERT INTO namra_run_journal VALUES ('old-run', 1, @body)", step.ToByteArray());
            await ExecuteAsync(connection, "INSERT INTO namra_memories VALUES ('user-1', 'fact', 'likes tea', '{}', 'm', @body)", new byte[8]);
        }

        _host = await NamraTestHost.StartAsync("memory", Settings);
        var client = new MemoryService.MemoryServiceClient(_host.Channel);

        var history = await client.GetHistoryAsync(new GetHistoryRequest { SessionId = "old-session" });
        var sessions = await client.ListSessionsAsync(new ListSessionsRequest { AgentName = "old-agent" });
        var read = await client.GetRunRecordAsync(new GetRunRecordRequest { RunId = "old-run" });
        var journal = await client.GetRunJournalAsync(new GetRunJournalRequest { RunId = "old-run" });
        var listed = await client.ListRunRecordsAsync(new ListRunRecordsRequest { AgentName = "old-agent" });
        var elsewhere = await Assert.ThrowsAsync<RpcException>(() => client.GetRunRecordAsync(new GetRunRecordRequest { Tenant = "acme", RunId = "old-run" }).ResponseAsync);
        var updated = await client.UpdateRunRecordAsync(new UpdateRunRecordRequest { Run = new Run { RunId = "old-run", Answer = "43" }, UpdateMask = new FieldMask { Paths = { "answer" } }, Etag = read.Run.Etag });
        await using var after = await OpenAsync();
        var memories = await ScalarAsync(after, "SELECT COUNT(*) FROM namra_memories WHERE tenant = 'default' AND namespace = 'user-1'");
        var version = await ScalarAsync(after, ReadVersion);

        Assert.Equal("remembered from before", history.Messages.Single().Content[0].Text);
        Assert.Equal(["old-session"], sessions.Sessions.Select(s => s.SessionId));
        Assert.Equal(("default", "42", "\"4\""), (read.Run.Tenant, read.Run.Answer, read.Run.Etag));
        Assert.Equal("remembered from before", journal.Entries.Single().Began.Input.Content[0].Text);
        Assert.Equal([("old-run", "default")], listed.Runs.Select(r => (r.RunId, r.Tenant)));
        Assert.Equal(StatusCode.NotFound, elsewhere.StatusCode);
        Assert.Equal(("43", "default"), (updated.Run.Answer, updated.Run.Tenant));
        Assert.Equal(1L, memories);
        Assert.Equal(3L, version); // upgraded on to the newest schema
    }

    // The schema as the first version of the SQL stores made it.
    private static string[] Version1Schema(string binary) =>
    [
        """
        CREATE TABLE IF NOT EXISTS namra_sessions (
            session_id TEXT PRIMARY KEY, agent_name TEXT NOT NULL, message_count BIGINT NOT NULL, next_seq BIGINT NOT NULL,
            create_millis BIGINT NOT NULL, update_millis BIGINT NOT NULL, expire_millis BIGINT)
        """,
        $"""
        CREATE TABLE IF NOT EXISTS namra_messages (
            session_id TEXT NOT NULL, seq BIGINT NOT NULL, message_id TEXT NOT NULL, body {binary} NOT NULL,
            PRIMARY KEY (session_id, seq), UNIQUE (session_id, message_id))
        """,
        $"""
        CREATE TABLE IF NOT EXISTS namra_runs (
            run_id TEXT PRIMARY KEY, agent_name TEXT NOT NULL, session_id TEXT NOT NULL, status INTEGER NOT NULL,
            create_millis BIGINT NOT NULL, version BIGINT NOT NULL, body {binary} NOT NULL)
        """,
        "CREATE INDEX IF NOT EXISTS namra_runs_by_time ON namra_runs (create_millis DESC, run_id DESC)",
        "CREATE INDEX IF NOT EXISTS namra_runs_by_status ON namra_runs (status, create_millis DESC, run_id DESC)",
        $"""
        CREATE TABLE IF NOT EXISTS namra_run_journal (
            run_id TEXT NOT NULL, seq BIGINT NOT NULL, body {binary} NOT NULL, PRIMARY KEY (run_id, seq))
        """,
        $"""
        CREATE TABLE IF NOT EXISTS namra_memories (
            namespace TEXT NOT NULL, id TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT NOT NULL, model TEXT NOT NULL,
            embedding {binary} NOT NULL, PRIMARY KEY (namespace, id))
        """,
    ];

    private static readonly string[] ParameterNames = ["@body", "@millis"];

    private static async Task ExecuteAsync(DbConnection connection, string sql, params object[] values)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        var names = ParameterNames.Where(sql.Contains).ToList();
        for (var i = 0; i < values.Length; i++)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = names[i];
            parameter.Value = values[i];
            command.Parameters.Add(parameter);
        }

        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}

/// <summary>The upgrade of a SQLite file.</summary>
public sealed class SqliteSchemaUpgradeTests : SchemaUpgradeContract
{
    private readonly string _folder = Directory.CreateTempSubdirectory("namra-upgrade-").FullName;

    private string Database => Path.Combine(_folder, "memory.db");

    protected override string BinaryType => "BLOB";

    protected override string MarkVersion1 => "PRAGMA user_version = 1";

    protected override string ReadVersion => "PRAGMA user_version";

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Namra:Memory:SqlitePath"] = Database,
        ["Namra:Memory:DefaultStore"] = "sqlite",
    };

    protected override async Task<DbConnection> OpenAsync()
    {
        var connection = new SqliteConnection($"Data Source={Database}");
        await connection.OpenAsync();
        return connection;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}

/// <summary>The upgrade of a PostgreSQL database, whose unnamed constraints of the first schema keep their names when renamed.</summary>
public sealed class PostgresSchemaUpgradeTests(PostgresServer postgres) : SchemaUpgradeContract, IClassFixture<PostgresServer>
{
    protected override string BinaryType => "BYTEA";

    protected override string MarkVersion1 => "CREATE TABLE namra_schema (version INTEGER NOT NULL); INSERT INTO namra_schema VALUES (1)";

    protected override string ReadVersion => "SELECT version FROM namra_schema";

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Namra:Memory:PostgresConnectionString"] = postgres.Server.ConnectionString,
        ["Namra:Memory:DefaultStore"] = "postgres",
    };

    protected override async Task<DbConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(postgres.Server.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }
}
