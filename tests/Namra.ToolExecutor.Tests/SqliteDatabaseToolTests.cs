using Microsoft.Data.Sqlite;

namespace Namra.ToolExecutor.Tests;

/// <summary>
/// The database tool on SQLite, a fresh inventory file per test: the contract, and what only SQLite needs (no other
/// database file attached, no huge value built).
/// </summary>
[Collection(DatabaseToolContract.HugeValues)]
public sealed class SqliteDatabaseToolTests : DatabaseToolContract
{
    private const string EvilFile = "/tmp/namra-evil.db";

    private readonly string _folder = Directory.CreateTempSubdirectory("namra-db-").FullName;
    private string _database = "";

    protected override string Driver => "sqlite";

    protected override string ConnectionString => $"Data Source={_database}";

    // A REAL.
    protected override string PriceOfItem7 => "7.5";

    // The tool's words: SQLite's parser finds the second statement before anything runs.
    protected override string SecondStatementRefusal => "one SQL statement";

    // Runaway: SQLite ran it on past the tool's and the run's timeouts, at full CPU.
    protected override string SlowQuery => "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

    // Ten megabytes: under SQLite's bound on a value (16 MiB), so it is built, and shown cut.
    protected override string HugeText => "SELECT printf('%.*c', 10000000, 'x') AS big";

    public override async ValueTask InitializeAsync()
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

        await base.InitializeAsync();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    [Theory]
    [InlineData("ATTACH DATABASE '" + EvilFile + "' AS evil")]
    public async Task SqliteWrites_AreRefusedByTheDatabaseWhenReadOnly_AndNothingChanges(string sql)
    {
        await AssertWriteIsRefusedAsync(sql);
    }

    [Theory]
    [InlineData("SELECT zeroblob(1000000000)", "too big")]
    [InlineData("SELECT length(replace(hex(zeroblob(100000000)), '0', 'xx'))", "too big")]
    [InlineData("SELECT printf('%.*c', 1000000000, 'x') AS text", "{\"columns\":[\"text\"],\"rows\":[[null]]}")] // printf gives up past the limit
    public async Task HugeValues_AreNotBuiltInMemory(string sql, string answer)
    {
        var result = await Call(Arguments(sql));

        Assert.Contains(answer, result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OtherDatabaseFiles_CannotBeAttached_EvenWhenWritable()
    {
        var other = Path.Combine(_folder, "other.db");

        var result = await Call(Arguments($"ATTACH DATABASE '{other}' AS other"), readOnly: false);

        Assert.True(result.IsError, result.Content);
        Assert.False(File.Exists(other));
    }

    protected override async Task<object?> ScalarAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={_database};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync();
    }

    protected override Task AssertNothingElseChangedAsync()
    {
        Assert.False(File.Exists(EvilFile));
        return Task.CompletedTask;
    }

    // Nothing left to look at: SQLite runs the statement on the call's thread, in the executor's process, and the tool
    // answers only once it has ended, so an answer at the timeout is a statement interrupted.
    protected override Task AssertTheSlowQueryStoppedAsync() => Task.CompletedTask;
}
