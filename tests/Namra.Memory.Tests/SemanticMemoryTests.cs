using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing.Providers;
using Namra.Testing;

namespace Namra.Memory.Tests;

/// <summary>
/// Remember and Recall: texts embedded through the LLM gateway (hosted beside the memory service, calling the
/// local OpenAI-compatible server), ranked by cosine similarity, filtered by metadata and model.
/// </summary>
public sealed class SemanticMemoryTests : IAsyncLifetime
{
    private static readonly LlmConfig Embedder = new() { Provider = LlmProvider.Openai, Model = "text-embedding-3-small" };
    private FakeProviderServer _openai = null!;
    private NamraTestHost _host = null!;
    private MemoryService.MemoryServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _openai = await FakeProviderServer.StartAsync();
        var environment = new Dictionary<string, string> { ["OPENAI_API_KEY"] = "sk-test", ["OPENAI_BASE_URL"] = new Uri(_openai.BaseUrl, "/v1").ToString() };
        _host = await NamraTestHost.StartAsync("memory,llm-gateway", configure: builder => ProviderEnvironment.Use(builder, environment));
        _client = new MemoryService.MemoryServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _openai.DisposeAsync();
    }

    [Fact]
    public async Task Recall_RanksByCosineSimilarity_AndFiltersByMetadata()
    {
        await Remember("cats", "Cats sleep most of the day.", [1f, 0f, 0f], ("topic", "pets"));
        await Remember("dogs", "Dogs like long walks.", [0.8f, 0.6f, 0f], ("topic", "pets"));
        await Remember("tax", "The tax return is due in April.", [0f, 0f, 1f], ("topic", "money"));
        _openai.Enqueue(new JsonReply(OpenAiWire.Embeddings([0.9f, 0.1f, 0f])), new JsonReply(OpenAiWire.Embeddings([0.9f, 0.1f, 0f])));

        var all = await _client.RecallAsync(new RecallRequest { Namespace = "user-1", Query = "pets that nap", TopK = 2, Embedder = Embedder });
        var money = await _client.RecallAsync(new RecallRequest { Namespace = "user-1", Query = "pets that nap", Filter = { ["topic"] = "money" }, Embedder = Embedder });

        Assert.Equal(["cats", "dogs"], all.Memories.Select(m => m.Id));
        Assert.True(all.Memories[0].Score > all.Memories[1].Score);
        Assert.Equal("Cats sleep most of the day.", all.Memories[0].Text);
        Assert.Equal(["tax"], money.Memories.Select(m => m.Id));
        Assert.Contains("\"input\":[\"pets that nap\"]", _openai.Requests[0].Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Remember_EmbedsTheTextThroughTheGateway_WhenNoVectorIsSent()
    {
        _openai.Enqueue(new JsonReply(OpenAiWire.Embeddings([0f, 1f])), new JsonReply(OpenAiWire.Embeddings([0f, 1f])));

        var remembered = await _client.RememberAsync(new RememberRequest { Namespace = "user-2", Text = "Prefers tea to coffee.", Embedder = Embedder });
        var recalled = await _client.RecallAsync(new RecallRequest { Namespace = "user-2", Query = "drinks", Embedder = Embedder, MinScore = 0.99 });

        Assert.Equal(remembered.Id, Assert.Single(recalled.Memories).Id);
        Assert.Contains("Prefers tea to coffee.", _openai.Requests[0].Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Recall_WithoutAnEmbedder_SaysWhatIsMissing()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _client.RecallAsync(new RecallRequest { Namespace = "user-3", Query = "x" }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("embedder", RpcDetails.Of<Google.Rpc.BadRequest>(error)[0].FieldViolations[0].Field);
    }

    private Task<RememberResponse> Remember(string id, string text, float[] vector, (string Key, string Value) label) =>
        _client.RememberAsync(new RememberRequest
        {
            Namespace = "user-1", Id = id, Text = text, Embedding = { vector }, EmbeddingModel = Embedder.Model, Metadata = { [label.Key] = label.Value },
        }).ResponseAsync;
}
