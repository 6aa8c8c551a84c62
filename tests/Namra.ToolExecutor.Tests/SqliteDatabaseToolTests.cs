using Google.Protobuf.WellKnownTypes;
using Microsoft.Data.Sqlite;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>The database tool on SQLite: bound parameters, row limits, and read-only enforced by the database.</summary>
public sealed class DatabaseToolTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("namra-db-").FullName;
    private string _database = "";
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async Task InitializeAsync()
    {
        _database = Path.Combine(_folder, "inventory.db");
        await using (var connection = new SqliteConnection($"Data Source={_database};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
                + string.Concat(Enumerable.Range(1, 150).Select(i => $"INSERT INTO items (name, price) VALUES ('item {i}', {i}.5);"));
            await command.ExecuteNonQueryAsync();
        }

        _host = await NamraTestHost.StartAsync("tool-executor");
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Select_BindsParametersAndAnswersJson()
    {
        var result = await Call("{\"sql\":\"SELECT id, name, price FROM items WHERE id = $1\",\"parameters\":[7]}");

        Assert.False(result.IsError, result.Content);
        Assert.Equal("{\"columns\":[\"id\",\"name\",\"price\"],\"rows\":[[7,\"item 7\",7.5]]}", result.Content);
    }

    [Fact]
    public async Task Parameters_AreValuesNeverSql()
    {
        var result = await Call("{\"sql\":\"SELECT count(*) FROM items WHERE name = $1\",\"parameters\":[\"x' OR '1'='1\"]}");

        Assert.Equal("{\"columns\":[\"count(*)\"],\"rows\":[[0]]}", result.Content);
    }

    [Fact]
    public async Task Rows_AreLimited()
    {
        var result = await Call("{\"sql\":\"SELECT id FROM items\"}", maxRows: 5);

        Assert.Contains("\"rows\":[[1],[2],[3],[4],[5]]", result.Content, StringComparison.Ordinal);
        Assert.Contains("more than 5 rows", result.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("DELETE FROM items")]
    [InlineData("SELECT 1; DELETE FROM items")]
    [InlineData("UPDATE items SET price = 0")]
    [InlineData("DROP TABLE items")]
    [InlineData("ATTACH DATABASE '/tmp/namra-evil.db' AS evil")]
    public async Task Writes_AreRefusedByTheDatabaseWhenReadOnly_AndNothingChanges(string sql)
    {
        var result = await Call(System.Text.Json.JsonSerializer.Serialize(new { sql }));

        Assert.True(result.IsError, result.Content);
        Assert.Equal(150L, await CountAsync());
        Assert.False(File.Exists("/tmp/namra-evil.db"));
    }

    [Fact]
    public async Task Writes_WorkWhenTheToolIsWritable()
    {
        var result = await Call("{\"sql\":\"INSERT INTO items (name, price) VALUES ($1, $2)\",\"parameters\":[\"new\",1.25]}", readOnly: false);

        Assert.Equal("{\"rows_affected\":1}", result.Content);
        Assert.Equal(151L, await CountAsync());
    }

    [Theory]
    [InlineData("INSERT INTO items (name) VALUES ('a'); DELETE FROM items")]
    [InlineData("SELECT 1; DELETE FROM items")]
    [InlineData("SELECT 1;DELETE FROM items;")]
    [InlineData("SELECT 1 /* a comment; */ ; -- note\n DELETE FROM items")]
    public async Task SecondStatements_AreRefusedAndUndone_EvenWhenWritable(string sql)
    {
        var result = await Call(System.Text.Json.JsonSerializer.Serialize(new { sql }), readOnly: false);

        Assert.True(result.IsError, result.Content);
        Assert.Contains("one SQL statement", result.Content, StringComparison.Ordinal);
        Assert.Equal(150L, await CountAsync());
    }

    [Theory]
    [InlineData("SELECT count(*) FROM items;")]
    [InlineData("SELECT count(*) FROM items; -- trailing comment")]
    [InlineData("SELECT ';' || name FROM items WHERE id = 1")]
    public async Task OneStatement_WithTrailingSemicolonsOrComments_Runs(string sql)
    {
        var result = await Call(System.Text.Json.JsonSerializer.Serialize(new { sql }));

        Assert.False(result.IsError, result.Content);
    }

    [Fact]
    public async Task ARunawayRecursiveQuery_IsInterruptedAtTheTimeout()
    {
        // SQLite ran it on past the tool's and the run's timeouts, at full CPU.
        var sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

        var result = await Call(System.Text.Json.JsonSerializer.Serialize(new { sql }), timeout: TimeSpan.FromMilliseconds(500));

        Assert.True(result.IsError);
        Assert.Contains("did not finish within 0.5 s", result.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SELECT zeroblob(1000000000)", "too big")]
    [InlineData("SELECT length(replace(hex(zeroblob(100000000)), '0', 'xx'))", "too big")]
    [InlineData("SELECT printf('%.*c', 1000000000, 'x') AS text", "{\"columns\":[\"text\"],\"rows\":[[null]]}")] // printf gives up past the limit
    public async Task HugeValues_AreNotBuiltInMemory(string sql, string answer)
    {
        var result = await Call(System.Text.Json.JsonSerializer.Serialize(new { sql }));

        Assert.Contains(answer, result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OtherDatabaseFiles_CannotBeAttached_EvenWhenWritable()
    {
        var other = Path.Combine(_folder, "other.db");

        var result = await Call(System.Text.Json.JsonSerializer.Serialize(new { sql = $"ATTACH DATABASE '{other}' AS other" }), readOnly: false);

        Assert.True(result.IsError, result.Content);
        Assert.False(File.Exists(other));
    }

    [Theory]
    [InlineData("COMMIT")]
    [InlineData("  -- first\n/* then */ BEGIN IMMEDIATE")]
    [InlineData("rollback")]
    [InlineData("SAVEPOINT a")]
    public async Task TransactionStatements_GetAClearError(string sql)
    {
        var result = await Call(System.Text.Json.JsonSerializer.Serialize(new { sql }), readOnly: false);

        Assert.True(result.IsError);
        Assert.Contains("Transaction statements (BEGIN, COMMIT, ROLLBACK, SAVEPOINT...) are the tool's", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadSql_IsAnErrorTheModelCanRead()
    {
        var result = await Call("{\"sql\":\"SELEC nonsense\"}");

        Assert.True(result.IsError);
        Assert.Contains("syntax error", result.Content, StringComparison.Ordinal);
    }

    private async Task<long> CountAsync()
    {
        await using var connection = new SqliteConnection($"Data Source={_database};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM items";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<ToolResult> Call(string arguments, bool readOnly = true, int maxRows = 100, TimeSpan? timeout = null)
    {
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig
            {
                Name = "db",
                Type = ToolType.BuiltinDatabase,
                Timeout = Duration.FromTimeSpan(timeout ?? TimeSpan.FromSeconds(30)),
                Config = new Struct
                {
                    Fields =
                    {
                        ["driver"] = Value.ForString("sqlite"),
                        ["connection_string"] = Value.ForString($"Data Source={_database}"),
                        ["read_only"] = Value.ForBool(readOnly),
                        ["max_rows"] = Value.ForNumber(maxRows),
                    },
                },
            },
            Call = new ToolCall { Id = "call_1", Name = "db", ArgumentsJson = arguments },
        });
        return response.Result;
    }
}
