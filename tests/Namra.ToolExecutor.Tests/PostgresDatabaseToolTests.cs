using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Containers;
using Npgsql;

namespace Namra.ToolExecutor.Tests;

/// <summary>PostgreSQL in a container: one inventory database, and an unprivileged role the tool connects as.</summary>
public sealed class PostgresInventory : IAsyncLifetime
{
    public LocalServer Server { get; private set; } = null!;

    /// <summary>Connects as <c>agent</c>, who may read and write <c>items</c> and nothing else.</summary>
    public string AgentConnectionString => new NpgsqlConnectionStringBuilder(Server.ConnectionString) { Username = "agent", Password = "agent-password" }.ToString();

    public async Task InitializeAsync()
    {
        Server = await LocalContainers.StartPostgresAsync();
        await ExecuteAsync("""
            CREATE ROLE agent LOGIN PASSWORD 'agent-password';
            CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), added timestamptz DEFAULT '2026-01-02T03:04:05Z', tags jsonb);
            INSERT INTO items (name, price, tags) SELECT 'item ' || i, i + 0.5, '["a"]' FROM generate_series(1, 150) AS i;
            CREATE SEQUENCE tickets;
            GRANT SELECT, INSERT, UPDATE, DELETE ON items TO agent;
            GRANT USAGE ON SEQUENCE items_id_seq, tickets TO agent;
            """);
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public async Task<long> CountAsync() => (long)(await ScalarAsync("SELECT count(*) FROM items"))!;

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

/// <summary>The database tool on PostgreSQL: bound parameters, row and time limits, read-only enforced by the server.</summary>
public sealed class PostgresDatabaseToolTests(PostgresInventory database) : IClassFixture<PostgresInventory>, IAsyncLifetime
{
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async Task InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("tool-executor");
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Select_BindsParametersAndAnswersTypedJson()
    {
        var result = await Call("{\"sql\":\"SELECT id, name, price, added, tags, price > $2 AS dear FROM items WHERE id = $1\",\"parameters\":[7, 5]}");

        Assert.False(result.IsError, result.Content);
        Assert.Equal(
            "{\"columns\":[\"id\",\"name\",\"price\",\"added\",\"tags\",\"dear\"],\"rows\":[[7,\"item 7\",7.50,\"2026-01-02T03:04:05.0000000Z\",\"[\\\"a\\\"]\",true]]}",
            result.Content);
    }

    [Fact]
    public async Task Parameters_AreValuesNeverSql()
    {
        var result = await Call("{\"sql\":\"SELECT count(*) FROM items WHERE name = $1\",\"parameters\":[\"x' OR '1'='1\"]}");

        Assert.Equal("{\"columns\":[\"count\"],\"rows\":[[0]]}", result.Content);
    }

    [Fact]
    public async Task Rows_AreLimited()
    {
        var result = await Call("{\"sql\":\"SELECT id FROM items ORDER BY id\"}", maxRows: 3);

        Assert.Contains("\"rows\":[[1],[2],[3]]", result.Content, StringComparison.Ordinal);
        Assert.Contains("more than 3 rows", result.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("DELETE FROM items")]
    [InlineData("UPDATE items SET price = 0")]
    [InlineData("INSERT INTO items (name) VALUES ('sneaky')")]
    [InlineData("DROP TABLE items")]
    [InlineData("TRUNCATE items")]
    [InlineData("WITH gone AS (DELETE FROM items RETURNING id) SELECT count(*) FROM gone")]
    [InlineData("WITH mode AS (SELECT set_config('transaction_read_only', 'off', true)), gone AS (DELETE FROM items RETURNING 1) SELECT * FROM mode, gone")]
    [InlineData("SELECT nextval('tickets')")]
    [InlineData("SELECT 1; DELETE FROM items")]
    [InlineData("COMMIT; DELETE FROM items")]
    [InlineData("COPY (SELECT 1) TO '/tmp/namra-pg-escape'")]
    public async Task Writes_AreRefusedByTheServerWhenReadOnly_AndNothingChanges(string sql)
    {
        var result = await Call(JsonSerializer.Serialize(new { sql }));

        Assert.True(result.IsError, result.Content);
        Assert.Equal(150L, await database.CountAsync());
        Assert.Equal(0L, Convert.ToInt64(await database.ScalarAsync("SELECT last_value - 1 + (CASE WHEN is_called THEN 1 ELSE 0 END) FROM tickets"), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("superuser")]
    [InlineData("pg_execute_server_program")]
    [InlineData("pg_read_server_files")]
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
    public async Task TwoStatements_AreRefused_EvenWhenBothRead()
    {
        var result = await Call("{\"sql\":\"SELECT 1; SELECT 2\"}");

        Assert.True(result.IsError);
    }

    [Fact]
    public async Task WhenWritable_OneStatementWrites_ButASecondOneUndoesTheCall()
    {
        var written = await Call("{\"sql\":\"UPDATE items SET name = $1 WHERE id = 150\",\"parameters\":[\"renamed\"]}", readOnly: false);
        var smuggled = await Call("{\"sql\":\"UPDATE items SET name = 'first' WHERE id = 149; DELETE FROM items\"}", readOnly: false);

        Assert.Equal("{\"rows_affected\":1}", written.Content);
        Assert.Equal("renamed", await database.ScalarAsync("SELECT name FROM items WHERE id = 150"));
        Assert.True(smuggled.IsError, smuggled.Content);
        Assert.Equal(150L, await database.CountAsync());
        Assert.Equal("item 149", await database.ScalarAsync("SELECT name FROM items WHERE id = 149"));
        await database.ExecuteAsync("UPDATE items SET name = 'item 150' WHERE id = 150");
    }

    [Fact]
    public async Task ASlowQuery_IsCancelledOnTheServerAtTheTimeout()
    {
        var result = await Call("{\"sql\":\"SELECT pg_sleep(60)\"}", timeout: TimeSpan.FromSeconds(1));

        Assert.True(result.IsError);
        Assert.Contains("did not finish within 1 s", result.Content, StringComparison.Ordinal);
        object? running = 1L;
        for (var i = 0; i < 50 && running is > 0L; i++)
        {
            await Task.Delay(100);
            running = await database.ScalarAsync("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND state = 'active'");
        }

        Assert.Equal(0L, running);
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

    private async Task<ToolResult> Call(string arguments, int maxRows = 100, bool readOnly = true, TimeSpan? timeout = null, string? connectionString = null)
    {
        var tool = new ToolConfig
        {
            Name = "inventory",
            Type = ToolType.BuiltinDatabase,
            Config = new Struct
            {
                Fields =
                {
                    ["driver"] = Value.ForString("postgres"),
                    ["connection_string"] = Value.ForString(connectionString ?? database.AgentConnectionString),
                    ["read_only"] = Value.ForBool(readOnly),
                    ["max_rows"] = Value.ForNumber(maxRows),
                },
            },
        };
        if (timeout is { } limit)
        {
            tool.Timeout = Duration.FromTimeSpan(limit);
        }

        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = tool,
            Call = new ToolCall { Id = "call_1", Name = "inventory", ArgumentsJson = arguments },
        });
        return response.Result;
    }
}
