using BenchmarkDotNet.Attributes;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Containers;

namespace Namra.Benchmarks;

/// <summary>
/// The memory service over gRPC on a loopback socket, per store: one append of one message, and one
/// <c>GetHistory</c> of the newest 20 of a 200-message session, with 1 and 16 callers at once (each caller its own
/// session). The in-memory store is the baseline: the rest of the ratio is the store's own work. Redis and
/// PostgreSQL run in local containers (Redis fsyncs every write; PostgreSQL here with <c>fsync=off</c>).
/// </summary>
[MemoryDiagnoser]
public class MemoryStoreBenchmarks
{
    private LocalServer? _server;
    private string? _folder;
    private NamraTestHost _host = null!;
    private MemoryService.MemoryServiceClient _client = null!;
    private long _next;

    [Params("in_memory", "sqlite", "redis", "postgres")]
    public string Store { get; set; } = "in_memory";

    [Params(1, 16)]
    public int Callers { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        var settings = new Dictionary<string, string?> { ["Namra:Memory:DefaultStore"] = Store };
        switch (Store)
        {
            case "sqlite":
                _folder = Directory.CreateTempSubdirectory("namra-bench-").FullName;
                settings["Namra:Memory:SqlitePath"] = Path.Combine(_folder, "memory.db");
                break;
            case "redis":
                _server = await LocalContainers.StartRedisAsync();
                settings["Namra:Memory:RedisConnectionString"] = _server.ConnectionString;
                break;
            case "postgres":
                _server = await LocalContainers.StartPostgresAsync();
                settings["Namra:Memory:PostgresConnectionString"] = _server.ConnectionString;
                break;
        }

        _host = await NamraTestHost.StartAsync("memory", settings);
        _client = new MemoryService.MemoryServiceClient(_host.Channel);
        for (var caller = 0; caller < Callers; caller++)
        {
            var request = new AppendMessagesRequest { SessionId = $"history-{caller}" };
            request.Messages.AddRange(Enumerable.Range(0, 200).Select(i => Message($"h{i}")));
            await _client.AppendMessagesAsync(request);
        }
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _host.DisposeAsync();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (_folder is not null)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Benchmark(Description = "AppendMessages (one message)")]
    public Task Append() => Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => _client.AppendMessagesAsync(new AppendMessagesRequest
    {
        SessionId = $"append-{caller}",
        Messages = { Message($"m{Interlocked.Increment(ref _next)}") },
    }).ResponseAsync));

    [Benchmark(Description = "GetHistory (newest 20 of 200)")]
    public Task History() => Task.WhenAll(Enumerable.Range(0, Callers).Select(caller =>
        _client.GetHistoryAsync(new GetHistoryRequest { SessionId = $"history-{caller}", MaxMessages = 20 }).ResponseAsync));

    private static Message Message(string id) => new()
    {
        Id = id,
        Role = Role.User,
        Content = { new ContentBlock { Text = "What is the capital of France, and how many people live there?" } },
    };
}
