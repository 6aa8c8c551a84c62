using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing.Providers;
using Namra.Testing;

namespace Namra.LlmGateway.Tests;

/// <summary>The gateway against a faithful local OpenAI Chat Completions API, and an OpenAI-compatible server.</summary>
public sealed class OpenAiProviderTests : IAsyncLifetime
{
    private const string Key = "sk-proj-test-0123456789";
    private FakeProviderServer _openai = null!;
    private NamraTestHost _host = null!;
    private LlmGatewayService.LlmGatewayServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _openai = await FakeProviderServer.StartAsync();
        var environment = new Dictionary<string, string>
        {
            ["OPENAI_API_KEY"] = Key,
            ["OPENAI_BASE_URL"] = new Uri(_openai.BaseUrl, "/v1").ToString(),
        };
        // Retries are tested on their own (ResilienceTests); here each error must surface as the provider sent it.
        _host = await TestGateway.StartAsync(environment, new Dictionary<string, string?> { ["Namra:LlmGateway:Retry:MaxRetries"] = "0" });
        _client = new LlmGatewayService.LlmGatewayServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _openai.DisposeAsync();
    }

    [Fact]
    public async Task StreamGenerate_StreamsTextAndPricesCachedTokensApart()
    {
        _openai.Enqueue(new SseReply([OpenAiWire.Role(), OpenAiWire.Text("Hello"), OpenAiWire.Text(" there"), OpenAiWire.Finish("stop"),
            OpenAiWire.Usage(promptTokens: 1000, completionTokens: 500, cachedTokens: 400), OpenAiWire.Done()]));

        var events = await StreamAsync(Request(LlmProvider.Openai, "Hi"));

        Assert.Equal(["Hello", " there"], events.Where(e => e.EventCase == StreamGenerateResponse.EventOneofCase.TextDelta).Select(e => e.TextDelta.Text));
        var completed = events[^1].Completed;
        Assert.Equal(("Hello there", StopReason.EndTurn), (completed.Message.Content.Single().Text, completed.StopReason));
        Assert.Equal((600L, 400L, 500L), (completed.Usage.InputTokens, completed.Usage.CacheReadInputTokens, completed.Usage.OutputTokens));
        // gpt-4o-mini: 600 × $0.15 + 400 × $0.075 + 500 × $0.60 per MTok.
        Assert.Equal(0.00042, completed.Cost.TotalUsd, 10);
        Assert.Equal((OpenAiWire.Id, OpenAiWire.Model), (completed.ResponseId, completed.Model));
    }

    [Fact]
    public async Task StreamGenerate_SendsTheChatCompletionsRequestExactly()
    {
        _openai.Enqueue(OpenAiWire.TextTurn(10, 2, "ok"));
        var request = Request(LlmProvider.Openai, "What is 2+2?");
        request.SystemPrompt = "Be brief.";
        request.ToolChoice = ToolChoice.Auto;
        request.Tools.Add(new ToolDefinition { Name = "calculator", Description = "Evaluates arithmetic.", InputSchemaJson = "{\"type\":\"object\",\"properties\":{\"expression\":{\"type\":\"string\"}}}" });
        request.Messages.Add(new Message { Role = Role.Assistant, Content = { new ContentBlock { ToolCall = new ToolCall { Id = "call_1", Name = "calculator", ArgumentsJson = "{\"expression\":\"2+2\"}" } } } });
        request.Messages.Add(new Message { Role = Role.Tool, Content = { new ContentBlock { ToolResult = new ToolResult { ToolCallId = "call_1", Content = "4" } } } });

        await StreamAsync(request);

        var sent = Assert.Single(_openai.Requests);
        Assert.Equal(("POST", "/v1/chat/completions"), (sent.Method, sent.Path));
        Assert.Equal($"Bearer {Key}", sent.Headers["authorization"]);
        Assert.Equal(
            """{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"calculator","arguments":"{\"expression\":\"2+2\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"4"}],"tools":[{"type":"function","function":{"name":"calculator","description":"Evaluates arithmetic.","parameters":{"type":"object","properties":{"expression":{"type":"string"}}}}}],"tool_choice":"auto","max_completion_tokens":256,"stream":true,"stream_options":{"include_usage":true}}""",
            sent.Body);
    }

    [Fact]
    public async Task StreamGenerate_AssemblesParallelToolCallsFromInterleavedPieces()
    {
        _openai.Enqueue(new SseReply([
            OpenAiWire.Role(),
            OpenAiWire.ToolCallStart(0, "call_A", "get_weather"),
            OpenAiWire.ToolCallArguments(0, "{\"loc"),
            OpenAiWire.ToolCallStart(1, "call_B", "get_time"),
            OpenAiWire.ToolCallArguments(1, "{\"tz\":"),
            OpenAiWire.ToolCallArguments(0, "ation\":\"Paris\"}"),
            OpenAiWire.ToolCallArguments(1, "\"CET\"}"),
            OpenAiWire.Finish("tool_calls"),
            OpenAiWire.Usage(50, 30),
            OpenAiWire.Done()]));

        var events = await StreamAsync(Request(LlmProvider.Openai, "Weather and time?"));

        var calls = events.Where(e => e.EventCase == StreamGenerateResponse.EventOneofCase.ToolCall).Select(e => e.ToolCall).ToList();
        Assert.Equal([("call_A", "get_weather", "{\"location\":\"Paris\"}"), ("call_B", "get_time", "{\"tz\":\"CET\"}")],
            calls.Select(c => (c.Id, c.Name, c.ArgumentsJson)));
        Assert.Equal(StopReason.ToolUse, events[^1].Completed.StopReason);
        Assert.Equal(2, events[^1].Completed.Message.Content.Count);
    }

    [Fact]
    public async Task StreamGenerate_ToolCallsCutOffByLength_AreNoToolCalls()
    {
        _openai.Enqueue(new SseReply([
            OpenAiWire.Role(),
            OpenAiWire.ToolCallStart(0, "call_A", "get_weather"),
            OpenAiWire.ToolCallArguments(0, "{\"loc"),
            OpenAiWire.Finish("length"),
            OpenAiWire.Usage(50, 64),
            OpenAiWire.Done()]));

        var events = await StreamAsync(Request(LlmProvider.Openai, "Weather?"));

        Assert.Equal(StopReason.MaxTokens, events[^1].Completed.StopReason);
        Assert.Empty(events[^1].Completed.Message.Content);
        Assert.DoesNotContain(events, e => e.EventCase == StreamGenerateResponse.EventOneofCase.ToolCall);
    }

    [Theory]
    [InlineData(400, "invalid_request_error", StatusCode.InvalidArgument)]
    [InlineData(401, "invalid_request_error", StatusCode.Unauthenticated)]
    [InlineData(404, "invalid_request_error", StatusCode.NotFound)]
    [InlineData(500, "server_error", StatusCode.Unavailable)]
    [InlineData(503, "server_error", StatusCode.Unavailable)]
    public async Task StreamGenerate_MapsErrors(int status, string type, StatusCode expected)
    {
        _openai.Enqueue(new ErrorReply(status, OpenAiWire.ErrorBody(type, "The model `gpt-4o-mini` does not exist or you do not have access to it.")));

        var error = await Assert.ThrowsAsync<RpcException>(() => StreamAsync(Request(LlmProvider.Openai, "hi")));

        Assert.Equal(expected, error.StatusCode);
        Assert.StartsWith("openai: The model", error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task StreamGenerate_WhenRateLimited_ReadsRetryAfterMs()
    {
        _openai.Enqueue(new ErrorReply(429, OpenAiWire.ErrorBody("requests", "Rate limit reached for gpt-4o-mini", "rate_limit_exceeded"),
            new Dictionary<string, string> { ["retry-after-ms"] = "1500", ["retry-after"] = "2" })); // the finer of the two, as the SDKs read it

        var error = await Assert.ThrowsAsync<RpcException>(() => StreamAsync(Request(LlmProvider.Openai, "hi")));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), Assert.Single(RpcDetails.Of<Google.Rpc.RetryInfo>(error)).RetryDelay.ToTimeSpan());
    }

    [Fact]
    public async Task StreamGenerate_WithoutMaxTokens_AsksForNoMoreThanTheReservationAssumes()
    {
        // An unbounded answer could cost more than the call's reserved worst case.
        _openai.Enqueue(OpenAiWire.TextTurn(10, 2, "ok"));
        var request = Request(LlmProvider.Openai, "hi");
        request.Llm.MaxTokens = 0;

        await StreamAsync(request);

        Assert.Contains("\"max_completion_tokens\":4096", Assert.Single(_openai.Requests).Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StreamGenerate_WhenTheStreamCarriesAnError_FailsWithIt()
    {
        _openai.Enqueue(new SseReply([OpenAiWire.Role(), OpenAiWire.Text("Hel"), OpenAiWire.StreamError("server_error", "The server had an error while processing your request.")]));

        var error = await Assert.ThrowsAsync<RpcException>(() => StreamAsync(Request(LlmProvider.Openai, "hi")));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task OpenAiCompatible_UsesTheAgentsBaseUrlWithoutAKey()
    {
        _openai.Enqueue(OpenAiWire.TextTurn(5, 1, "hi"));
        var request = Request(LlmProvider.OpenaiCompatible, "hello");
        request.Llm.Model = "llama3.1:8b";
        request.Llm.BaseUrl = new Uri(_openai.BaseUrl, "/ollama/v1").ToString();

        var events = await StreamAsync(request);

        var sent = Assert.Single(_openai.Requests);
        Assert.Equal("/ollama/v1/chat/completions", sent.Path);
        Assert.False(sent.Headers.ContainsKey("authorization"));
        Assert.Contains("\"max_tokens\":256", sent.Body, StringComparison.Ordinal);
        Assert.Null(events[^1].Completed.Cost); // a self-hosted model has no list price: unknown, not zero
    }

    [Fact]
    public async Task Embed_ReturnsOneVectorPerInputInOrder()
    {
        _openai.Enqueue(new JsonReply(OpenAiWire.Embeddings([0.1f, 0.2f], [0.3f, 0.4f])));

        var response = await _client.EmbedAsync(new EmbedRequest
        {
            Llm = new LlmConfig { Provider = LlmProvider.Openai, Model = "text-embedding-3-small" },
            Inputs = { "first", "second" },
        });

        Assert.Equal([[0.1f, 0.2f], [0.3f, 0.4f]], response.Embeddings.Select(e => e.Values.ToArray()));
        Assert.Equal(8, response.Usage.InputTokens);
        Assert.Equal("/v1/embeddings", _openai.Requests[0].Path);
        Assert.Equal("""{"model":"text-embedding-3-small","input":["first","second"],"encoding_format":"float"}""", _openai.Requests[0].Body);
    }

    [Fact]
    public async Task Embed_IsAProviderRequestOnTheCallersLedger_WithItsRequestIdUsageAndCost_WithinItsReservation()
    {
        _openai.Enqueue(new JsonReply(OpenAiWire.Embeddings(120, [0.1f, 0.2f]), new Dictionary<string, string> { ["x-request-id"] = "req_emb_7f3a" }));

        var response = await _client.EmbedAsync(new EmbedRequest
        {
            Llm = new LlmConfig { Provider = LlmProvider.Openai, Model = "text-embedding-3-small" },
            Inputs = { "The parcel left on Tuesday." },
            Budget = new CallBudget { MaxTokens = 1_000, MaxCostUsd = 0.01 },
        });

        var attempt = Assert.Single(response.Attempts);
        Assert.Equal((AttemptOutcome.Completed, "text-embedding-3-small", "req_emb_7f3a", 120L), (attempt.Outcome, attempt.Model, attempt.RequestId, attempt.Usage.InputTokens));
        // text-embedding-3-small: $0.02 per MTok of input.
        Assert.Equal(120 * 0.02 / 1_000_000, attempt.Cost.TotalUsd, 12);
        Assert.Equal(attempt.Cost, response.Cost);
        // The bound: every byte of the text and the model's name a token, with the framing of the input and the request.
        var bound = 256 + "text-embedding-3-small".Length + 32 + "The parcel left on Tuesday.".Length;
        Assert.Equal(bound, response.Reservation.Tokens);
        Assert.Equal(bound * 0.02 / 1_000_000, response.Reservation.Cost.TotalUsd, 12);
    }

    [Fact]
    public async Task Embed_WhoseWorstCaseDoesNotFitTheBudget_IsRefusedBeforeTheProviderIsCalled()
    {
        _openai.Enqueue(new JsonReply(OpenAiWire.Embeddings([0.1f, 0.2f])));
        var llm = new LlmConfig { Provider = LlmProvider.Openai, Model = "text-embedding-3-small" };

        var tokens = await Assert.ThrowsAsync<RpcException>(() => _client.EmbedAsync(new EmbedRequest { Llm = llm, Inputs = { "hello" }, Budget = new CallBudget { MaxTokens = 100 } }).ResponseAsync);
        var dollars = await Assert.ThrowsAsync<RpcException>(() => _client.EmbedAsync(new EmbedRequest { Llm = llm, Inputs = { "hello" }, Budget = new CallBudget { MaxCostUsd = 1e-9 } }).ResponseAsync);
        var unpriced = await Assert.ThrowsAsync<RpcException>(() => _client.EmbedAsync(new EmbedRequest
        {
            Llm = new LlmConfig { Provider = LlmProvider.OpenaiCompatible, Model = "nomic-embed-text", BaseUrl = new Uri(_openai.BaseUrl, "/v1").ToString() },
            Inputs = { "hello" }, Budget = new CallBudget { MaxCostUsd = 1 },
        }).ResponseAsync);

        Assert.Equal((StatusCode.ResourceExhausted, "execution.budget.max_tokens"), (tokens.StatusCode, Assert.Single(Assert.Single(RpcDetails.Of<Google.Rpc.QuotaFailure>(tokens)).Violations).Subject));
        Assert.StartsWith("The embedding call could use up to 315 tokens; the run's budget has 100 left.", tokens.Status.Detail, StringComparison.Ordinal);
        Assert.Equal((StatusCode.ResourceExhausted, "execution.budget.max_cost_usd"), (dollars.StatusCode, Assert.Single(Assert.Single(RpcDetails.Of<Google.Rpc.QuotaFailure>(dollars)).Violations).Subject));
        Assert.Equal(StatusCode.FailedPrecondition, unpriced.StatusCode);
        Assert.Contains("nomic-embed-text", unpriced.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(_openai.Requests);
    }

    [Fact]
    public async Task Embed_ThatTheProviderRefuses_HasItsRequestInTheErrorsDetails_AndOneWithoutUsage_IsChargedItsWorstCase()
    {
        _openai.Enqueue(new ErrorReply(429, OpenAiWire.ErrorBody("insufficient_quota", "You exceeded your current quota."), new Dictionary<string, string> { ["x-request-id"] = "req_quota" }));
        _openai.Enqueue(new JsonReply(OpenAiWire.Embeddings(promptTokens: null, [0.1f, 0.2f])));
        var request = new EmbedRequest { Llm = new LlmConfig { Provider = LlmProvider.Openai, Model = "text-embedding-3-small" }, Inputs = { "hello" } };

        var refused = await Assert.ThrowsAsync<RpcException>(() => _client.EmbedAsync(request).ResponseAsync);
        var unreported = await _client.EmbedAsync(request);

        var failed = Assert.Single(Assert.Single(RpcDetails.Of<ProviderAttempts>(refused)).Attempts);
        Assert.Equal((AttemptOutcome.Failed, "req_quota", 0L), (failed.Outcome, failed.RequestId, failed.ChargedTokens));
        var answered = Assert.Single(unreported.Attempts);
        Assert.Equal((AttemptOutcome.Completed, (TokenUsage?)null), (answered.Outcome, answered.Usage));
        Assert.Equal((unreported.Reservation.Tokens, unreported.Reservation.Cost), (answered.ChargedTokens, answered.ChargedCost));
        Assert.Null(unreported.Cost); // not known, never $0
    }

    [Fact]
    public async Task AProviderThatCountsBelowZero_IsTakenAsReportingNoUsage_AndChargedItsWorstCase_ForTurnsAndEmbeddings()
    {
        // A broken count below zero would give spending back to the run's budget and the tenant's quota.
        _openai.Enqueue(OpenAiWire.TextTurn(-1_000_000, 5, "Hi."), new JsonReply(OpenAiWire.Embeddings(-1_000_000, [0.1f, 0.2f])));

        var turn = (await StreamAsync(Request(LlmProvider.Openai, "Hi"))).Single(e => e.EventCase == StreamGenerateResponse.EventOneofCase.Completed).Completed;
        var embedded = await _client.EmbedAsync(new EmbedRequest { Llm = new LlmConfig { Provider = LlmProvider.Openai, Model = "text-embedding-3-small" }, Inputs = { "hello" } });

        foreach (var (usage, cost, attempt, reservation) in new[] { (turn.Usage, turn.Cost, turn.Attempts[^1], turn.Reservation), (embedded.Usage, embedded.Cost, embedded.Attempts[^1], embedded.Reservation) })
        {
            Assert.Null(usage);
            Assert.Null(cost);
            Assert.Equal((AttemptOutcome.Completed, (TokenUsage?)null), (attempt.Outcome, attempt.Usage));
            Assert.Equal((reservation.Tokens, reservation.Cost), (attempt.ChargedTokens, attempt.ChargedCost));
        }
    }

    private async Task<List<StreamGenerateResponse>> StreamAsync(StreamGenerateRequest request)
    {
        using var call = _client.StreamGenerate(request);
        var events = new List<StreamGenerateResponse>();
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            events.Add(item);
        }

        return events;
    }

    private static StreamGenerateRequest Request(LlmProvider provider, string text) => new()
    {
        Llm = new LlmConfig { Provider = provider, Model = "gpt-4o-mini", MaxTokens = 256 },
        Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = text } } } },
    };
}
