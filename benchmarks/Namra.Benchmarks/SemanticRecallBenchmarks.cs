using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Benchmarks;

/// <summary>
/// How far the built-in semantic memory scales: one <c>Recall</c> (top 5) over a namespace of 10,000 and 100,000
/// memories, through the memory service over gRPC on loopback, on the in-memory and SQLite stores, with the scripted
/// provider's 256-number embeddings. The built-in search is exact: it reads the namespace's memories and compares each.
/// Floor: the same exact search over the same vectors held in an array in this process (no store, no call).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 10)]
public class SemanticRecallBenchmarks
{
    private const string Namespace = "agent:bench";
    private static readonly LlmConfig Embedder = new() { Provider = LlmProvider.Scripted, Model = "hashed-words" };

    private string? _folder;
    private NamraTestHost _host = null!;
    private MemoryService.MemoryServiceClient _client = null!;
    private float[][] _vectors = [];
    private float[] _query = [];

    [Params(10_000, 100_000)]
    public int Memories { get; set; }

    [Params("in_memory", "sqlite")]
    public string Store { get; set; } = "in_memory";

    [GlobalSetup]
    public async Task Setup()
    {
        var settings = new Dictionary<string, string?> { ["Namra:Memory:DefaultStore"] = Store };
        if (Store == "sqlite")
        {
            _folder = Directory.CreateTempSubdirectory("namra-bench-recall-").FullName;
            settings["Namra:Memory:SqlitePath"] = Path.Combine(_folder, "memory.db");
        }

        _host = await NamraTestHost.StartAsync("memory,llm-gateway", settings);
        _client = new MemoryService.MemoryServiceClient(_host.Channel);
        var gateway = new LlmGatewayService.LlmGatewayServiceClient(_host.Channel);
        _vectors = new float[Memories][];
        const int Batch = 256;
        for (var start = 0; start < Memories; start += Batch)
        {
            var texts = Enumerable.Range(start, Math.Min(Batch, Memories - start)).Select(Fact).ToList();
            var embedded = await gateway.EmbedAsync(new EmbedRequest { Llm = Embedder, Inputs = { texts } });
            await Task.WhenAll(texts.Select((text, i) =>
            {
                _vectors[start + i] = [.. embedded.Embeddings[i].Values];
                return _client.RememberAsync(new RememberRequest
                {
                    Namespace = Namespace, Text = text, Id = $"m{start + i}", EmbeddingModel = Embedder.Model, Embedding = { embedded.Embeddings[i].Values },
                }).ResponseAsync;
            }));
        }

        _query = [.. (await gateway.EmbedAsync(new EmbedRequest { Llm = Embedder, Inputs = { Query } })).Embeddings[0].Values];
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _host.DisposeAsync();
        if (_folder is not null)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Benchmark(Baseline = true, Description = "floor: exact top 5 over the vectors in this process")]
    public int Floor() => _vectors
        .Select((vector, index) => (Index: index, Score: Memory.Similarity.Cosine(_query, vector)))
        .OrderByDescending(p => p.Score)
        .Take(5)
        .Sum(p => p.Index);

    [Benchmark(Description = "Recall (top 5) through the memory service")]
    public async Task<int> Recall() => (await _client.RecallAsync(new RecallRequest
    {
        Namespace = Namespace, Query = Query, TopK = 5, EmbeddingModel = Embedder.Model, Embedder = Embedder,
    })).Memories.Count;

    private const string Query = "Which orders went to Lyon by express?";

    private static string Fact(int i) =>
        $"Order {i} went to {Cities[i % Cities.Length]} by {(i % 3 == 0 ? "express" : "standard")} post on day {i % 365} with {i % 7 + 1} parcels.";

    private static readonly string[] Cities = ["Lyon", "Porto", "Graz", "Tartu", "Cork", "Split", "Gent", "Turku", "Bergen", "Brno", "Malmo"];
}
