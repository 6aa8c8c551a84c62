using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing.Providers;
using Namra.Testing;

namespace Namra.LlmGateway.Tests;

/// <summary>The gateway against a faithful local Anthropic Messages API, over real sockets end to end.</summary>
public sealed class AnthropicProviderTests : IAsyncLifetime
{
    private const string Key = "sk-ant-test-0123456789";
    private FakeProviderServer _anthropic = null!;
    private NamraTestHost _host = null!;
    private LlmGatewayService.LlmGatewayServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _anthropic = await FakeProviderServer.StartAsync();
        var environment = new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = Key,
            ["ANTHROPIC_BASE_URL"] = _anthropic.BaseUrl.ToString(),
            ["TEAM_ANTHROPIC_KEY"] = "sk-ant-team",
        };
        // Retries are tested on their own (ResilienceTests); here each error must surface as the provider sent it.
        _host = await TestGateway.StartAsync(environment, new Dictionary<string, string?> { ["Namra:LlmGateway:Retry:MaxRetries"] = "0" });
        _client = new LlmGatewayService.LlmGatewayServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _anthropic.DisposeAsync();
    }

    [Fact]
    public async Task StreamGenerate_StreamsTextAndPricesTheTurn()
    {
        _anthropic.Enqueue(new SseReply([
            AnthropicWire.MessageStart(inputTokens: 1000, cacheCreation: 200, cacheRead: 300),
            AnthropicWire.Ping(),
            .. AnthropicWire.TextBlock(0, "Hello", ", world", "!"),
            AnthropicWire.MessageDelta("end_turn", 500),
            AnthropicWire.MessageStop()]));

        var events = await StreamAsync(Request("Say hello"));

        Assert.Equal(["Hello", ", world", "!"], events.Where(e => e.EventCase == StreamGenerateResponse.EventOneofCase.TextDelta).Select(e => e.TextDelta.Text));
        var completed = events[^1].Completed;
        Assert.Equal("Hello, world!", completed.Message.Content.Single().Text);
        Assert.Equal(StopReason.EndTurn, completed.StopReason);
        Assert.Equal((1000L, 500L, 200L, 300L), (completed.Usage.InputTokens, completed.Usage.OutputTokens, completed.Usage.CacheCreationInputTokens, completed.Usage.CacheReadInputTokens));
        Assert.Equal(("msg_01XFDUDYJgAACzvnptvVoYEL", AnthropicWire.Model), (completed.ResponseId, completed.Model));
        // $3 + $15 per MTok, cache writes $3.75, reads $0.30: 0.003 + 0.0075 + 0.00075 + 0.00009.
        Assert.Equal(0.01134, completed.Cost.TotalUsd, 10);
    }

    [Fact]
    public async Task StreamGenerate_ReadsStreamsWithFieldsAndEventsItDoesNotKnow()
    {
        // Real streams grow: new usage fields, new block and event types, metadata on every object.
        _anthropic.Enqueue(new SseReply([
            new SseFrame("message_start", """{"type":"message_start","message":{"id":"msg_9","type":"message","role":"assistant","content":[],"model":"claude-sonnet-5-5","container":null,"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":30,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard","server_tool_use":{"web_search_requests":0}}}}"""),
            new SseFrame("content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"","citations":[]}}"""),
            new SseFrame("content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"""),
            new SseFrame("content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}"""),
            new SseFrame("content_block_stop", """{"type":"content_block_stop","index":0}"""),
            new SseFrame("content_block_start", """{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"""),
            new SseFrame("content_block_stop", """{"type":"content_block_stop","index":1}"""),
            new SseFrame("message_annotation", """{"type":"message_annotation","note":"an event type added later"}"""),
            new SseFrame("message_delta", """{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null,"stop_details":{}},"usage":{"output_tokens":7,"server_tool_use":{"web_search_requests":1}}}"""),
            AnthropicWire.MessageStop()]));

        var events = await StreamAsync(Request("Hi"));

        var completed = events[^1].Completed;
        Assert.Equal("Hi", completed.Message.Content.Single().Text);
        Assert.Equal((StopReason.EndTurn, 30L, 7L), (completed.StopReason, completed.Usage.InputTokens, completed.Usage.OutputTokens));
    }

    [Fact]
    public async Task StreamGenerate_AToolBlockCutOffByMaxTokens_IsNoToolCall()
    {
        _anthropic.Enqueue(new SseReply([
            AnthropicWire.MessageStart(inputTokens: 40),
            .. AnthropicWire.TextBlock(0, "Let me write the file."),
            .. AnthropicWire.ToolUseBlockCutOff(1, "toolu_cut", "write_file", "{\"path\":\"a.txt\",\"content\":\"half of"),
            AnthropicWire.MessageDelta("max_tokens", 1024),
            AnthropicWire.MessageStop()]));

        var events = await StreamAsync(Request("Write it"));

        var completed = events[^1].Completed;
        Assert.Equal(StopReason.MaxTokens, completed.StopReason);
        Assert.Equal("Let me write the file.", completed.Message.Content.Single().Text);
        Assert.DoesNotContain(events, e => e.EventCase == StreamGenerateResponse.EventOneofCase.ToolCall);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TraceContext_GoesToTheProvider_OnlyWhenTheOperatorSaysSo(bool propagate)
    {
        await using var host = await TestGateway.StartAsync(
            new Dictionary<string, string> { ["ANTHROPIC_API_KEY"] = Key, ["ANTHROPIC_BASE_URL"] = _anthropic.BaseUrl.ToString() },
            new Dictionary<string, string?> { ["Namra:LlmGateway:PropagateTraceContext"] = propagate ? "true" : "false" });
        _anthropic.Enqueue(AnthropicWire.TextTurn(10, 2, "ok"));
        using var run = new System.Diagnostics.Activity("invoke_agent").SetIdFormat(System.Diagnostics.ActivityIdFormat.W3C).Start();

        await new LlmGatewayService.LlmGatewayServiceClient(host.Channel).GenerateAsync(new GenerateRequest { Llm = Request("hi").Llm, Messages = { User("hi") } });

        Assert.Equal(propagate, _anthropic.Requests.Single().Headers.ContainsKey("traceparent"));
    }

    [Fact]
    public async Task StreamGenerate_SendsTheMessagesApiRequestExactly()
    {
        _anthropic.Enqueue(AnthropicWire.TextTurn(10, 2, "ok"));
        var request = Request("What is 2+2?");
        request.SystemPrompt = "Be brief.";
        request.Llm.Temperature = 0.5;
        request.Llm.StopSequences.Add("END");
        request.Tools.Add(new ToolDefinition { Name = "calculator", Description = "Evaluates arithmetic.", InputSchemaJson = "{\"type\":\"object\",\"properties\":{\"expression\":{\"type\":\"string\"}},\"required\":[\"expression\"]}" });
        request.Messages.Add(new Message { Role = Role.Assistant, Content = { new ContentBlock { ToolCall = new ToolCall { Id = "toolu_1", Name = "calculator", ArgumentsJson = "{\"expression\":\"2+2\"}" } } } });
        request.Messages.Add(new Message { Role = Role.Tool, Content = { new ContentBlock { ToolResult = new ToolResult { ToolCallId = "toolu_1", Content = "4" } } } });
        request.Messages.Add(new Message { Role = Role.Tool, Content = { new ContentBlock { ToolResult = new ToolResult { ToolCallId = "toolu_2", Content = "boom", IsError = true } } } });

        await StreamAsync(request);

        var sent = Assert.Single(_anthropic.Requests);
        Assert.Equal(("POST", "/v1/messages"), (sent.Method, sent.Path));
        Assert.Equal(Key, sent.Headers["x-api-key"]);
        Assert.Equal("2023-06-01", sent.Headers["anthropic-version"]);
        Assert.StartsWith("application/json", sent.Headers["content-type"], StringComparison.Ordinal);
        Assert.Equal(
            """{"model":"claude-sonnet-4-5-20250929","max_tokens":1024,"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"What is 2+2?"}]},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"calculator","input":{"expression":"2+2"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"4"},{"type":"tool_result","tool_use_id":"toolu_2","content":"boom","is_error":true}]}],"tools":[{"name":"calculator","description":"Evaluates arithmetic.","input_schema":{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"]}}],"temperature":0.5,"stop_sequences":["END"],"stream":true}""",
            sent.Body);
    }

    [Fact]
    public async Task StreamGenerate_StreamsParallelToolCallsWithArgumentsInPieces()
    {
        _anthropic.Enqueue(new SseReply([
            AnthropicWire.MessageStart(),
            .. AnthropicWire.TextBlock(0, "Let me check."),
            .. AnthropicWire.ToolUseBlock(1, "toolu_01A", "get_weather", "", "{\"locat", "ion\": \"San Fra", "ncisco, CA\"}"),
            .. AnthropicWire.ToolUseBlock(2, "toolu_01B", "get_time", "{\"tz\":", "\"PST\"}"),
            AnthropicWire.MessageDelta("tool_use", 89),
            AnthropicWire.MessageStop()]));

        var events = await StreamAsync(Request("Weather and time in SF?"));

        var deltas = events.Where(e => e.EventCase == StreamGenerateResponse.EventOneofCase.ToolCallDelta).Select(e => e.ToolCallDelta).ToList();
        Assert.Equal("{\"location\": \"San Francisco, CA\"}", string.Concat(deltas.Where(d => d.Index == 0).Select(d => d.ArgumentsJsonDelta)));
        Assert.Equal("{\"tz\":\"PST\"}", string.Concat(deltas.Where(d => d.Index == 1).Select(d => d.ArgumentsJsonDelta)));
        Assert.Equal(["toolu_01A", "toolu_01B"], events.Where(e => e.EventCase == StreamGenerateResponse.EventOneofCase.ToolCall).Select(e => e.ToolCall.Id));
        var completed = events[^1].Completed;
        Assert.Equal(StopReason.ToolUse, completed.StopReason);
        Assert.Equal(3, completed.Message.Content.Count);
        Assert.Equal("get_time", completed.Message.Content[2].ToolCall.Name);
    }

    [Fact]
    public async Task Generate_KeepsThinkingWithItsSignature()
    {
        _anthropic.Enqueue(new SseReply([
            AnthropicWire.MessageStart(),
            .. AnthropicWire.ThinkingBlock(0, "The user wants a number.", "EqQBCgIYAhIM"),
            .. AnthropicWire.TextBlock(1, "42"),
            AnthropicWire.MessageDelta("end_turn", 12),
            AnthropicWire.MessageStop()]));

        var response = await _client.GenerateAsync(new GenerateRequest { Llm = Request("").Llm, Messages = { User("Answer?") } });

        Assert.Equal(("The user wants a number.", "EqQBCgIYAhIM"), (response.Message.Content[0].Thinking.Text, response.Message.Content[0].Thinking.Signature));
        Assert.Equal("42", response.Message.Content[1].Text);
    }

    [Theory]
    [InlineData(400, "invalid_request_error", StatusCode.InvalidArgument)]
    [InlineData(401, "authentication_error", StatusCode.Unauthenticated)]
    [InlineData(403, "permission_error", StatusCode.PermissionDenied)]
    [InlineData(404, "not_found_error", StatusCode.NotFound)]
    [InlineData(413, "request_too_large", StatusCode.InvalidArgument)]
    [InlineData(500, "api_error", StatusCode.Unavailable)]
    [InlineData(529, "overloaded_error", StatusCode.Unavailable)]
    public async Task StreamGenerate_MapsProviderErrorsToStatusCodesWithTheProvidersMessage(int status, string type, StatusCode expected)
    {
        _anthropic.Enqueue(new ErrorReply(status, AnthropicWire.ErrorBody(type, $"message for {type}")));

        var error = await Assert.ThrowsAsync<RpcException>(() => StreamAsync(Request("hi")));

        Assert.Equal(expected, error.StatusCode);
        Assert.Equal($"anthropic: message for {type} (request {FakeProviderServer.RequestIdOf(1)})", error.Status.Detail); // the request id real answers carry
        Assert.Equal($"{status}_{type}".ToUpperInvariant(), Assert.Single(RpcDetails.Of<Google.Rpc.ErrorInfo>(error)).Reason);
        Assert.DoesNotContain(Key, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task StreamGenerate_WhenRateLimited_CarriesTheRetryDelay()
    {
        _anthropic.Enqueue(new ErrorReply(429, AnthropicWire.ErrorBody("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
            new Dictionary<string, string> { ["retry-after"] = "17" }));

        var error = await Assert.ThrowsAsync<RpcException>(() => StreamAsync(Request("hi")));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(17), Assert.Single(RpcDetails.Of<Google.Rpc.RetryInfo>(error)).RetryDelay.ToTimeSpan());
    }

    [Fact]
    public async Task StreamGenerate_WhenTheStreamCarriesAnError_FailsUnavailableAfterTheDeltasSent()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Hel"), AnthropicWire.Error("overloaded_error", "Overloaded")]));
        using var call = _client.StreamGenerate(Request("hi"));

        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal("Hel", call.ResponseStream.Current.TextDelta.Text);
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal((StatusCode.Unavailable, "anthropic: Overloaded"), (error.StatusCode, error.Status.Detail));
    }

    [Fact]
    public async Task StreamGenerate_WhenTheConnectionDrops_FailsUnavailable()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Hel", "lo")], DropAfter: 3));

        var error = await Assert.ThrowsAsync<RpcException>(() => StreamAsync(Request("hi")));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task StreamGenerate_WhenTheCallerCancels_AbandonsTheUpstreamRequest()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Hel", "lo")], HoldAfter: 3));
        using var cancel = new CancellationTokenSource();
        using var call = _client.StreamGenerate(Request("hi"), cancellationToken: cancel.Token);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));

        await cancel.CancelAsync();

        await _anthropic.ClientAborted.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task StreamGenerate_SendsNoKeyToAnAddressTheOperatorDidNotAllow()
    {
        var request = Request("hi");
        request.Llm.BaseUrl = "http://127.0.0.2:9/";

        var error = await Assert.ThrowsAsync<RpcException>(() => StreamAsync(request));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains("AllowedBaseUrls", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(_anthropic.Requests);
    }

    [Fact]
    public async Task StreamGenerate_ReadsOnlyKeyVariablesTheOperatorAllows()
    {
        var request = Request("hi");
        request.Llm.ApiKeyEnv = "TEAM_ANTHROPIC_KEY";

        var error = await Assert.ThrowsAsync<RpcException>(() => StreamAsync(request));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains("AllowedKeyVariables", error.Status.Detail, StringComparison.Ordinal);
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

    private static StreamGenerateRequest Request(string text)
    {
        var request = new StreamGenerateRequest
        {
            Llm = new LlmConfig { Provider = LlmProvider.Anthropic, Model = AnthropicWire.Model, MaxTokens = 1024 },
        };
        if (text.Length > 0)
        {
            request.Messages.Add(User(text));
        }

        return request;
    }

    private static Message User(string text) => new() { Role = Role.User, Content = { new ContentBlock { Text = text } } };
}
