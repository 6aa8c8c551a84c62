using Namra.Testing.Containers;
using Npgsql;

namespace Namra.ToolExecutor.Tests;

/// <summary>PostgreSQL in a container: one inventory database, and an unprivileged role the tool connects as.</summary>
public sealed class PostgresInventory : IAsyncLifetime
{
    private const string Stock = """INSERT INTO items (name, price, tags) SELECT 'item ' || i, i + 0.5, '["a"]' FROM generate_series(1, 150) AS i;""";

    public LocalServer Server { get; private set; } = null!;

    /// <summary>Connects as <c>agent</c>, who may read and write <c>items</c> and nothing else.</summary>
    public string AgentConnectionString => new NpgsqlConnectionStringBuilder(Server.ConnectionString) { Username = "agent", Password = "agent-password" }.ToString();

    public async ValueTask InitializeAsync()
    {
        Server = await LocalContainers.StartPostgresAsync();
        await ExecuteAsync("""
            CREATE ROLE agent LOGIN PASSWORD 'agent-password';
            CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), added timestamptz DEFAULT '2026-01-02T03:04:05Z', tags jsonb);
            CREATE SEQUENCE tickets;
            GRANT SELECT, INSERT, UPDATE, DELETE ON items TO agent;
            GRANT USAGE ON SEQUENCE items_id_seq, tickets TO agent;
            """ + Stock);
    }

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    /// <summary>Puts the inventory back as it was made: the 150 items, and no ticket drawn.</summary>
    public async Task ResetAsync() => await ExecuteAsync("TRUNCATE items RESTART IDENTITY; ALTER SEQUENCE tickets RESTART;" + Stock);

    public async Task<object?> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(Server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    public async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(Server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>
/// The database tool on PostgreSQL: the contract, and what only PostgreSQL needs (server-side writes a read-only
/// transaction refuses, roles that reach the server's files, the connection string's secrets). The inventory is the
/// class's: each test puts it back.
/// </summary>
[Collection(DatabaseToolContract.HugeValues)]
public sealed class PostgresDatabaseToolTests(PostgresInventory database) : DatabaseToolContract, IClassFixture<PostgresInventory>
{
    protected override string Driver => "postgres";

    protected override string ConnectionString => database.AgentConnectionString;

    // A numeric(10,2) keeps its scale.
    protected override string PriceOfItem7 => "7.50";

    // The server's words: the statement is sent as written, and PostgreSQL refuses a second one in it before any runs.
    protected override string SecondStatementRefusal => "cannot insert multiple commands into a prepared statement";

    protected override string SlowQuery => "SELECT pg_sleep(60)";

    protected override string HugeText => "SELECT repeat('x', 10000000) AS big";

    public override async ValueTask DisposeAsync()
    {
        try
        {
            await database.ResetAsync();
        }
        finally
        {
            await base.DisposeAsync();
        }
    }

    [Fact]
    public async Task Select_BindsParametersAndAnswersTypedJson()
    {
        var result = await Call("{\"sql\":\"SELECT id, name, price, added, tags, price > $2 AS dear FROM items WHERE id = $1\",\"parameters\":[7, 5]}");

        Assert.False(result.IsError, result.Content);
        Assert.Equal(
            "{\"columns\":[\"id\",\"name\",\"price\",\"added\",\"tags\",\"dear\"],\"rows\":[[7,\"item 7\",7.50,\"2026-01-02T03:04:05.0000000Z\",\"[\\\"a\\\"]\",true]]}",
            result.Content);
    }

    [Theory]
    [InlineData("TRUNCATE items")]
    [InlineData("WITH gone AS (DELETE FROM items RETURNING id) SELECT count(*) FROM gone")]
    [InlineData("WITH mode AS (SELECT set_config('transaction_read_only', 'off', true)), gone AS (DELETE FROM items RETURNING 1) SELECT * FROM mode, gone")]
    [InlineData("SELECT nextval('tickets')")]
    [InlineData("COPY (SELECT 1) TO '/tmp/namra-pg-escape'")]
    public async Task PostgresWrites_AreRefusedByTheServerWhenReadOnly_AndNothingChanges(string sql)
    {
        await AssertWriteIsRefusedAsync(sql);
    }

    [Theory]
    [InlineData("superuser")]
    [InlineData("pg_execute_server_program")]
    [InlineData("pg_read_server_files")]
    [InlineData("pg_write_server_files")]
    public async Task ARoleThatReachesTheServersFilesOrPrograms_IsRefused(string power)
    {
        // COPY ... TO PROGRAM, lo_import and pg_read_file go around a read-only transaction.
        var role = $"powerful_{power}";
        await database.ExecuteAsync(power == "superuser"
            ? $"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD 'p'"
            : $"CREATE ROLE {role} LOGIN PASSWORD 'p'; GRANT {power} TO {role}");
        var connection = new NpgsqlConnectionStringBuilder(database.Server.ConnectionString) { Username = role, Password = "p" }.ToString();

        var result = await Call("{\"sql\":\"COPY (SELECT 1) TO PROGRAM 'touch /tmp/namra-pg-program'\"}", connectionString: connection);

        Assert.True(result.IsError);
        Assert.Contains($"connects to PostgreSQL as {role}, which can read and write the server's files or run programs", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AHugeValue_IsReadOnlyAsFarAsItIsShown()
    {
        var before = GC.GetTotalAllocatedBytes(precise: true);

        var result = await Call("{\"sql\":\"SELECT repeat('x', 200000000) AS big\"}", timeout: TimeSpan.FromSeconds(60));

        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.False(result.IsError, result.Content);
        Assert.Contains("\"rows\":[[\"xxxx", result.Content, StringComparison.Ordinal);
        Assert.Contains("x...\"]]", result.Content, StringComparison.Ordinal);
        // Held whole, the value is 200 MB as bytes and 400 MB as a string; read as far as shown, a few kilobytes. The
        // count is the process's, so other tests running meanwhile share it: the bound leaves them room.
        Assert.True(allocated < 300_000_000, $"{allocated:N0} bytes allocated");
    }

    [Fact]
    public async Task AnUnreachableServer_IsAnErrorResult_WithoutThePassword()
    {
        var connection = new NpgsqlConnectionStringBuilder(database.AgentConnectionString) { Port = 9 }.ToString();

        var result = await Call("{\"sql\":\"SELECT 1\"}", connectionString: connection);

        Assert.True(result.IsError);
        Assert.DoesNotContain("agent-password", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheConnectionString_IsReadFromTheExecutorsEnvironment()
    {
        Environment.SetEnvironmentVariable("NAMRA_TEST_PG_PASSWORD", "agent-password");
        var connection = new NpgsqlConnectionStringBuilder(database.AgentConnectionString) { Password = null }.ToString() + ";Password=${NAMRA_TEST_PG_PASSWORD}";

        var result = await Call("{\"sql\":\"SELECT current_user\"}", connectionString: connection);

        Assert.Equal("{\"columns\":[\"current_user\"],\"rows\":[[\"agent\"]]}", result.Content);
    }

    protected override Task<object?> ScalarAsync(string sql) => database.ScalarAsync(sql);

    // A sequence is not transactional: a nextval that got through would stay drawn.
    protected override async Task AssertNothingElseChangedAsync() =>
        Assert.Equal(0L, Convert.ToInt64(await database.ScalarAsync("SELECT last_value - 1 + (CASE WHEN is_called THEN 1 ELSE 0 END) FROM tickets"), System.Globalization.CultureInfo.InvariantCulture));

    // Cancelled on the server, not only abandoned by the tool.
    protected override async Task AssertTheSlowQueryStoppedAsync()
    {
        object? running = 1L;
        for (var i = 0; i < 50 && running is > 0L; i++)
        {
            await Task.Delay(100);
            running = await database.ScalarAsync("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND state = 'active'");
        }

        Assert.Equal(0L, running);
    }
}
