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
    public async Task TheEmbeddingsPaidFor_ComeBackWithTheirProviderRequests_AndTheCallersBudgetHoldsThem()
    {
        _openai.Enqueue(new JsonReply(OpenAiWire.Embeddings(31, [0f, 1f]), new Dictionary<string, string> { ["x-request-id"] = "req_remember" }),
            new JsonReply(OpenAiWire.Embeddings(7, [0f, 1f]), new Dictionary<string, string> { ["x-request-id"] = "req_recall" }),
            new ErrorReply(503, OpenAiWire.ErrorBody("server_error", "The server is overloaded."), new Dictionary<string, string> { ["x-request-id"] = "req_busy" }));

        var remembered = await _client.RememberAsync(new RememberRequest { Namespace = "user-4", Text = "Takes the 8:10 train.", Embedder = Embedder });
        var sent = await _client.RememberAsync(new RememberRequest { Namespace = "user-4", Text = "Lives in Ghent.", Embedding = { 1f, 0f }, EmbeddingModel = Embedder.Model });
        var recalled = await _client.RecallAsync(new RecallRequest { Namespace = "user-4", Query = "train", Embedder = Embedder, Budget = new CallBudget { MaxTokens = 10_000 } });
        var refused = await Assert.ThrowsAsync<RpcException>(() => _client.RecallAsync(new RecallRequest { Namespace = "user-4", Query = "train", Embedder = Embedder, Budget = new CallBudget { MaxTokens = 10 } }).ResponseAsync);
        var failed = await Assert.ThrowsAsync<RpcException>(() => _client.RecallAsync(new RecallRequest { Namespace = "user-4", Query = "train", Embedder = Embedder }).ResponseAsync);

        Assert.Equal(("req_remember", 31L), (Assert.Single(remembered.Attempts).RequestId, remembered.Attempts[0].Usage.InputTokens));
        Assert.True(remembered.Reservation.Tokens >= 31);
        Assert.Empty(sent.Attempts); // the caller sent the vector: no provider request
        Assert.Equal(("req_recall", 7L, AttemptOutcome.Completed), (Assert.Single(recalled.Attempts).RequestId, recalled.Attempts[0].Usage.InputTokens, recalled.Attempts[0].Outcome));
        Assert.Equal((StatusCode.ResourceExhausted, "execution.budget.max_tokens"), (refused.StatusCode, RpcDetails.Of<Google.Rpc.QuotaFailure>(refused)[0].Violations[0].Subject));
        Assert.Equal(3, _openai.Requests.Count); // the refused call never reached the provider
        Assert.Equal(("req_busy", AttemptOutcome.Failed), (Assert.Single(Assert.Single(RpcDetails.Of<ProviderAttempts>(failed)).Attempts).RequestId, RpcDetails.Of<ProviderAttempts>(failed)[0].Attempts[0].Outcome));
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
