using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>The database drivers' suites, run with no other test beside them (see <see cref="DatabaseToolContract.HugeValues"/>).</summary>
[CollectionDefinition(DatabaseToolContract.HugeValues, DisableParallelization = true)]
public sealed class HugeValueTestGroup;

/// <summary>
/// What the database tool promises on every driver, checked through the tool executor's gRPC API: bound parameters,
/// JSON answers, row and time limits, read-only enforced by the database, one statement per call. One subclass per
/// driver sets up the inventory: a table <c>items</c> whose rows 1 to 150 are named <c>item i</c> and priced
/// <c>i.5</c>. Each test starts from that inventory; a driver whose database outlives a test puts it back.
/// </summary>
public abstract class DatabaseToolContract : IAsyncLifetime
{
    /// <summary>
    /// The drivers' suites run one at a time and alone (<see cref="HugeValueTestGroup"/>): their huge-value tests bound
    /// what a call allocates by the process's count, which any test running meanwhile would share.
    /// </summary>
    public const string HugeValues = "database tool huge values";

    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    /// <summary>The tool's <c>driver</c> setting.</summary>
    protected abstract string Driver { get; }

    /// <summary>The tool's <c>connection_string</c> to the inventory.</summary>
    protected abstract string ConnectionString { get; }

    /// <summary>Item 7's price, 7.5, as the driver's type for it is written in JSON.</summary>
    protected abstract string PriceOfItem7 { get; }

    /// <summary>What the answer says when a call holds a second statement: the tool's words, or the server's.</summary>
    protected abstract string SecondStatementRefusal { get; }

    /// <summary>A statement that runs far past a second unless it is stopped.</summary>
    protected abstract string SlowQuery { get; }

    /// <summary>A statement answering one text column <c>big</c>: ten million <c>x</c>.</summary>
    protected abstract string HugeText { get; }

    public virtual async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("tool-executor");
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public virtual async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Select_BindsParametersAndAnswersJson()
    {
        var result = await Call("{\"sql\":\"SELECT id, name, price FROM items WHERE id = $1\",\"parameters\":[7]}");

        Assert.False(result.IsError, result.Content);
        Assert.Equal("{\"columns\":[\"id\",\"name\",\"price\"],\"rows\":[[7,\"item 7\"," + PriceOfItem7 + "]]}", result.Content);
    }

    [Fact]
    public async Task Parameters_AreValuesNeverSql()
    {
        var result = await Call("{\"sql\":\"SELECT count(*) AS n FROM items WHERE name = $1\",\"parameters\":[\"x' OR '1'='1\"]}");

        Assert.Equal("{\"columns\":[\"n\"],\"rows\":[[0]]}", result.Content);
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
    [InlineData("SELECT 1; DELETE FROM items")]
    [InlineData("COMMIT; DELETE FROM items")]
    public async Task Writes_AreRefusedByTheDatabaseWhenReadOnly_AndNothingChanges(string sql)
    {
        await AssertWriteIsRefusedAsync(sql);
    }

    [Fact]
    public async Task Writes_WorkWhenTheToolIsWritable()
    {
        var result = await Call("{\"sql\":\"INSERT INTO items (name, price) VALUES ($1, $2)\",\"parameters\":[\"new\",1.25]}", readOnly: false);

        Assert.Equal("{\"rows_affected\":1}", result.Content);
        Assert.Equal(151L, await CountAsync());
        Assert.Equal(1L, await ScalarAsync("SELECT count(*) FROM items WHERE name = 'new'"));
    }

    [Theory]
    [InlineData("INSERT INTO items (name) VALUES ('a'); DELETE FROM items")]
    [InlineData("SELECT 1; DELETE FROM items")]
    [InlineData("SELECT 1;DELETE FROM items;")]
    [InlineData("SELECT 1 /* a comment; */ ; -- note\n DELETE FROM items")]
    public async Task SecondStatements_AreRefusedAndUndone_EvenWhenWritable(string sql)
    {
        var result = await Call(Arguments(sql), readOnly: false);

        Assert.True(result.IsError, result.Content);
        Assert.Contains(SecondStatementRefusal, result.Content, StringComparison.Ordinal);
        Assert.Equal(150L, await CountAsync());
    }

    [Fact]
    public async Task TwoStatements_AreRefused_EvenWhenBothRead()
    {
        var result = await Call("{\"sql\":\"SELECT 1; SELECT 2\"}");

        Assert.True(result.IsError);
        Assert.Contains(SecondStatementRefusal, result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WhenWritable_OneStatementWrites_ButASecondOneUndoesTheCall()
    {
        var written = await Call("{\"sql\":\"UPDATE items SET name = $1 WHERE id = 150\",\"parameters\":[\"renamed\"]}", readOnly: false);
        var smuggled = await Call("{\"sql\":\"UPDATE items SET name = 'first' WHERE id = 149; DELETE FROM items\"}", readOnly: false);

        Assert.Equal("{\"rows_affected\":1}", written.Content);
        Assert.Equal("renamed", await ScalarAsync("SELECT name FROM items WHERE id = 150"));
        Assert.True(smuggled.IsError, smuggled.Content);
        Assert.Equal(150L, await CountAsync());
        Assert.Equal("item 149", await ScalarAsync("SELECT name FROM items WHERE id = 149"));
    }

    [Theory]
    [InlineData("SELECT count(*) FROM items;")]
    [InlineData("SELECT count(*) FROM items; -- trailing comment")]
    [InlineData("SELECT ';' || name FROM items WHERE id = 1")]
    public async Task OneStatement_WithTrailingSemicolonsOrComments_Runs(string sql)
    {
        var result = await Call(Arguments(sql));

        Assert.False(result.IsError, result.Content);
    }

    [Fact]
    public async Task ASlowQuery_IsStoppedAtTheTimeout()
    {
        var result = await Call(Arguments(SlowQuery), timeout: TimeSpan.FromSeconds(1));

        Assert.True(result.IsError);
        Assert.Contains("did not finish within 1 s", result.Content, StringComparison.Ordinal);
        await AssertTheSlowQueryStoppedAsync();
    }

    [Fact]
    public async Task AHugeValue_IsShownOnlyAsFarAsAllowed()
    {
        var result = await Call(Arguments(HugeText), timeout: TimeSpan.FromSeconds(60));

        Assert.False(result.IsError, result.Content);
        Assert.Equal("{\"columns\":[\"big\"],\"rows\":[[\"" + new string('x', 2000) + "...\"]]}", result.Content);
    }

    [Theory]
    [InlineData("COMMIT")]
    [InlineData("  -- first\n/* then */ BEGIN IMMEDIATE")]
    [InlineData("rollback")]
    [InlineData("SAVEPOINT a")]
    [InlineData("START TRANSACTION READ WRITE")]
    [InlineData("set transaction read write")]
    public async Task TransactionStatements_GetAClearError(string sql)
    {
        var result = await Call(Arguments(sql), readOnly: false);

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

    /// <summary>Reads one value straight from the database, around the tool.</summary>
    protected abstract Task<object?> ScalarAsync(string sql);

    /// <summary>Checks, after a write was refused, that nothing outside <c>items</c> changed either.</summary>
    protected abstract Task AssertNothingElseChangedAsync();

    /// <summary>Checks, once the call running <see cref="SlowQuery"/> has answered, that the statement no longer runs.</summary>
    protected abstract Task AssertTheSlowQueryStoppedAsync();

    /// <summary>A statement that would write, sent to the read-only tool: refused, and nothing changed.</summary>
    protected async Task AssertWriteIsRefusedAsync(string sql)
    {
        var result = await Call(Arguments(sql));

        Assert.True(result.IsError, result.Content);
        Assert.Equal(150L, await CountAsync());
        await AssertNothingElseChangedAsync();
    }

    protected static string Arguments(string sql) => JsonSerializer.Serialize(new { sql });

    protected async Task<ToolResult> Call(string arguments, bool readOnly = true, int maxRows = 100, TimeSpan? timeout = null, string? connectionString = null)
    {
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig
            {
                Name = "db",
                Type = ToolType.BuiltinDatabase,
                Timeout = Duration.FromTimeSpan(timeout ?? TimeSpan.FromSeconds(30)),
                Database = new DatabaseToolSettings { Driver = Driver, ConnectionString = connectionString ?? ConnectionString, ReadOnly = readOnly, MaxRows = maxRows },
            },
            Call = new ToolCall { Id = "call_1", Name = "db", ArgumentsJson = arguments },
        });
        return response.Result;
    }

    private async Task<long> CountAsync() => (long)(await ScalarAsync("SELECT count(*) FROM items"))!;
}
