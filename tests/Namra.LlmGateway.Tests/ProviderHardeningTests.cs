using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.LlmGateway.Tests;

/// <summary>Providers that misbehave: malformed events, silence, missing usage, pages that are not errors, metadata addresses.</summary>
public sealed class ProviderHardeningTests : IAsyncLifetime
{
    private FakeProviderServer _server = null!;
    private NamraTestHost _host = null!;
    private LlmGatewayService.LlmGatewayServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await FakeProviderServer.StartAsync();
        var environment = new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = "sk-ant-test",
            ["ANTHROPIC_BASE_URL"] = _server.BaseUrl.ToString(),
            ["OPENAI_API_KEY"] = "sk-openai-test",
            ["OPENAI_BASE_URL"] = new Uri(_server.BaseUrl, "/v1").ToString(),
        };
        _host = await TestGateway.StartAsync(environment, new Dictionary<string, string?>
        {
            ["Namra:LlmGateway:Retry:MaxRetries"] = "0",
            ["Namra:LlmGateway:StreamIdleTimeout"] = "00:00:01",
            ["Namra:LlmGateway:MaxResponseBytes"] = "1048576",
        });
        _client = new LlmGatewayService.LlmGatewayServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Anthropic_WhenAnEventLacksItsFields_FailsUnavailableNotInternal()
    {
        _server.Enqueue(new SseReply([AnthropicWire.MessageStart(), new SseFrame("content_block_start", "{\"type\":\"content_block_start\"}")]));

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Anthropic()).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("cannot read", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Anthropic_WhenTheProviderFallsSilent_EndsWithDeadlineExceeded()
    {
        _server.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Hel")], HoldAfter: 2));

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Anthropic()).ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains("sent nothing for 1 s", error.Status.Detail, StringComparison.Ordinal);
        await _server.ClientAborted.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task AProvidersRedirect_IsNotFollowed_SoTheKeyGoesNowhereElse()
    {
        await using var elsewhere = await FakeProviderServer.StartAsync();
        _server.Enqueue(new ErrorReply(307, "", new Dictionary<string, string> { ["Location"] = new Uri(elsewhere.BaseUrl, "/v1/messages").ToString() }));

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Anthropic()).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("answered 307, a redirect, which the gateway does not follow", error.Status.Detail, StringComparison.Ordinal);
        Assert.Single(_server.Requests);
        Assert.Empty(elsewhere.Requests);
    }

    [Fact]
    public async Task Errors_WhoseBodyIsNotAProviderError_AreNotEchoed()
    {
        _server.Enqueue(new ErrorReply(502, "<html><body>internal admin page: db-password=hunter2</body></html>"));

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Anthropic()).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.DoesNotContain("hunter2", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenAi_WithoutAUsageChunk_ReportsUsageAndCostAsUnknown()
    {
        _server.Enqueue(new SseReply([OpenAiWire.Role(), OpenAiWire.Text("hi"), OpenAiWire.Finish("stop"), OpenAiWire.Done()]));

        var response = await _client.GenerateAsync(OpenAi());

        Assert.Equal("hi", response.Message.Content.Single().Text);
        Assert.Null(response.Usage);
        Assert.Null(response.Cost);
    }

    [Fact]
    public async Task OpenAiCompatible_ToolCallsWithoutIndexAndAStopReason_AreStillToolCalls()
    {
        _server.Enqueue(new SseReply([
            new SseFrame(null, """{"id":"c1","object":"chat.completion.chunk","model":"llama3","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"id":"call_x","type":"function","function":{"name":"calculator","arguments":"{\"expression\":\"1+1\"}"}}]},"finish_reason":null}]}"""),
            new SseFrame(null, """{"id":"c1","object":"chat.completion.chunk","model":"llama3","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"""),
            new SseFrame(null, """{"id":"c1","object":"chat.completion.chunk","model":"llama3","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"""),
            OpenAiWire.Done()]));
        var request = OpenAi();
        request.Llm.Provider = LlmProvider.OpenaiCompatible;
        request.Llm.BaseUrl = new Uri(_server.BaseUrl, "/v1").ToString();

        using var call = _client.StreamGenerate(new StreamGenerateRequest { Llm = request.Llm, Messages = { request.Messages } });
        var events = new List<StreamGenerateResponse>();
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            events.Add(item);
        }

        Assert.Equal("{\"expression\":\"1+1\"}", Assert.Single(events, e => e.EventCase == StreamGenerateResponse.EventOneofCase.ToolCall).ToolCall.ArgumentsJson);
        Assert.Equal(StopReason.ToolUse, events[^1].Completed.StopReason);
    }

    [Fact]
    public async Task AResponsePastItsLimit_IsAbandoned_NotHeldInMemory()
    {
        // A server that never ends a tool call's arguments: 60 MiB of them held a gigabyte across the services.
        var piece = new string('a', 64 * 1024);
        _server.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.ToolUseBlock(0, "toolu_1", "calculator", ["{\"expression\":\"", .. Enumerable.Repeat(piece, 40), "\"}"]),
            AnthropicWire.MessageDelta("tool_use", 10), AnthropicWire.MessageStop()]));

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Anthropic()).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("sent a response larger than 1 MiB", error.Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://169.254.169.254/latest")]
    [InlineData("http://0xA9FEA9FE/latest")]
    [InlineData("http://[fe80::1]/v1")]
    public async Task MetadataAndLinkLocalAddresses_AreNeverCalled(string baseUrl)
    {
        var request = OpenAi();
        request.Llm.Provider = LlmProvider.OpenaiCompatible;
        request.Llm.BaseUrl = baseUrl;

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("link-local", error.Status.Detail, StringComparison.Ordinal);
    }

    private static GenerateRequest Anthropic() => new()
    {
        Llm = new LlmConfig { Provider = LlmProvider.Anthropic, Model = AnthropicWire.Model, MaxTokens = 64 },
        Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "hi" } } } },
    };

    private static GenerateRequest OpenAi() => new()
    {
        Llm = new LlmConfig { Provider = LlmProvider.Openai, Model = "gpt-4o-mini", MaxTokens = 64 },
        Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "hi" } } } },
    };
}
