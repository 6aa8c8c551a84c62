using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing.Containers;

namespace Namra.Memory.Tests;

/// <summary>The contract on the in-process store.</summary>
public sealed class InMemoryStoreContract : MemoryContract
{
    protected override MemoryType Store => MemoryType.InMemory;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>();
}

/// <summary>The contract on a SQLite file.</summary>
public sealed class SqliteStoreContract : MemoryContract
{
    private readonly string _folder = Directory.CreateTempSubdirectory("namra-memory-").FullName;

    protected override MemoryType Store => MemoryType.Sqlite;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Namra:Memory:SqlitePath"] = Path.Combine(_folder, "memory.db"),
        ["Namra:Memory:DefaultStore"] = "sqlite",
    };

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}

/// <summary>Redis in a container, shared by the tests of a class.</summary>
public sealed class RedisServer : IAsyncLifetime
{
    public LocalServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await LocalContainers.StartRedisAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>PostgreSQL in a container, shared by the tests of a class.</summary>
public sealed class PostgresServer : IAsyncLifetime
{
    public LocalServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await LocalContainers.StartPostgresAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The contract on Redis.</summary>
public sealed class RedisStoreContract(RedisServer redis) : MemoryContract, IClassFixture<RedisServer>
{
    protected override MemoryType Store => MemoryType.Redis;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Namra:Memory:RedisConnectionString"] = redis.Server.ConnectionString,
        ["Namra:Memory:DefaultStore"] = "redis",
    };
}

/// <summary>The contract on PostgreSQL.</summary>
public sealed class PostgresStoreContract(PostgresServer postgres) : MemoryContract, IClassFixture<PostgresServer>
{
    protected override MemoryType Store => MemoryType.Postgres;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Namra:Memory:PostgresConnectionString"] = postgres.Server.ConnectionString,
        ["Namra:Memory:DefaultStore"] = "postgres",
    };
}

/// <summary>The in-process store's bound on run records.</summary>
public sealed class InMemoryRunRecordLimitTests
{
    [Fact]
    public async Task PastTheLimit_TheOldestFinishedRunsAreForgotten_AndARunStillGoingIsKept()
    {
        await using var host = await Namra.Testing.NamraTestHost.StartAsync("memory", new Dictionary<string, string?> { ["Namra:Memory:MaxInMemoryRuns"] = "3" });
        var client = new MemoryService.MemoryServiceClient(host.Channel);
        Task<CreateRunRecordResponse> Create(string id, RunStatus status) => client.CreateRunRecordAsync(new CreateRunRecordRequest
        {
            Run = new Run { RunId = id, Agent = new AgentRef { Name = "limited", Version = "1.0.0" }, Status = status, Input = "x" },
        }).ResponseAsync;

        await Create("oldest-running", RunStatus.Running);
        await Create("old-done", RunStatus.Completed);
        await Create("done", RunStatus.Failed);
        await Create("newest", RunStatus.Completed);
        async Task<StatusCode> Read(string id)
        {
            try
            {
                await client.GetRunRecordAsync(new GetRunRecordRequest { RunId = id });
                return StatusCode.OK;
            }
            catch (RpcException e)
            {
                return e.StatusCode;
            }
        }

        Assert.Equal(
            [StatusCode.OK, StatusCode.NotFound, StatusCode.OK, StatusCode.OK],
            [await Read("oldest-running"), await Read("old-done"), await Read("done"), await Read("newest")]);
        var finished = await client.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = new Run { RunId = "oldest-running", Status = RunStatus.Completed },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "status" } },
        });
        Assert.Equal(RunStatus.Completed, finished.Run.Status);
    }
}
