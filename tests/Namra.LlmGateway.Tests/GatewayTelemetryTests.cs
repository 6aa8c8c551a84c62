using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.LlmGateway.Tests;

/// <summary>The <c>chat {model}</c> span with GenAI attributes; content only when opted in; calls only to allowed addresses when restricted.</summary>
public sealed class GatewayTelemetryTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Chat_RecordsAGenAiSpan_WithContentOnlyWhenOptedIn(bool capture)
    {
        var runId = Guid.NewGuid().ToString("N");
        var spans = new ConcurrentQueue<Activity>();
        using var listener = ListenToGatewaySpans(spans);
        await using var host = await NamraTestHost.StartAsync("llm-gateway", new Dictionary<string, string?> { ["Namra:LlmGateway:CaptureContent"] = capture ? "true" : "false" });

        await new LlmGatewayService.LlmGatewayServiceClient(host.Channel).GenerateAsync(new GenerateRequest
        {
            Llm = new LlmConfig { Provider = LlmProvider.Scripted, Model = "scripted", MaxTokens = 100, Script = { new ScriptedTurn { Text = "secret answer" } } },
            Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "private question" } } } },
            Context = new CallContext { RunId = runId, AgentName = "telemetry_agent" },
        });

        var span = Assert.Single(spans, s => (string?)s.GetTagItem("namra.run.id") == runId);
        Assert.Equal("chat scripted", span.DisplayName);
        Assert.Equal(ActivityKind.Client, span.Kind);
        Assert.Equal(("chat", "scripted", "scripted", "scripted"), ((string?)span.GetTagItem("gen_ai.operation.name"), (string?)span.GetTagItem("gen_ai.provider.name"),
            (string?)span.GetTagItem("gen_ai.request.model"), (string?)span.GetTagItem("gen_ai.response.model")));
        Assert.True((long)span.GetTagItem("gen_ai.usage.input_tokens")! > 0);
        Assert.Equal(["stop"], (string[])span.GetTagItem("gen_ai.response.finish_reasons")!);
        var recorded = string.Join(" ", span.TagObjects.Select(t => t.Value?.ToString()));
        Assert.Equal(capture, recorded.Contains("private question", StringComparison.Ordinal));
        Assert.Equal(capture, recorded.Contains("secret answer", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Chat_NamesTheProvidersRequestOnItsSpan_AnsweredOrFailed()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = ListenToGatewaySpans(spans);
        await using var anthropic = await FakeProviderServer.StartAsync();
        await using var host = await TestGateway.StartAsync(new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = "sk-ant-test",
            ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString(),
        });
        var client = new LlmGatewayService.LlmGatewayServiceClient(host.Channel);
        anthropic.Enqueue(AnthropicWire.TextTurn(10, 2, "ok"),
            new ErrorReply(400, AnthropicWire.ErrorBody("invalid_request_error", "messages: too long"), new Dictionary<string, string> { ["request-id"] = "req_011Bad" }));

        var answered = Guid.NewGuid().ToString("N");
        var refused = Guid.NewGuid().ToString("N");
        await client.GenerateAsync(Request(answered));
        await Assert.ThrowsAsync<RpcException>(() => client.GenerateAsync(Request(refused)).ResponseAsync);

        Assert.Equal(FakeProviderServer.RequestIdOf(1), RequestIdOf(answered));
        Assert.Equal("req_011Bad", RequestIdOf(refused));

        string? RequestIdOf(string runId) => (string?)Assert.Single(spans, s => (string?)s.GetTagItem("namra.run.id") == runId).GetTagItem("namra.provider.request_id");
        static GenerateRequest Request(string runId) => new()
        {
            Llm = new LlmConfig { Provider = LlmProvider.Anthropic, Model = AnthropicWire.Model, MaxTokens = 64 },
            Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "hi" } } } },
            Context = new CallContext { RunId = runId },
        };
    }

    [Fact]
    public async Task RestrictedGateway_RefusesAddressesTheOperatorDidNotAllow()
    {
        await using var host = await NamraTestHost.StartAsync("llm-gateway", new Dictionary<string, string?>
        {
            ["Namra:LlmGateway:RestrictBaseUrls"] = "true",
            ["Namra:LlmGateway:AllowedBaseUrls:0"] = "http://127.0.0.1:9/v1",
        });
        var client = new LlmGatewayService.LlmGatewayServiceClient(host.Channel);
        var request = new GenerateRequest
        {
            Llm = new LlmConfig { Provider = LlmProvider.OpenaiCompatible, Model = "llama3", BaseUrl = "http://169.254.169.254/latest" },
            Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "hi" } } } },
        };

        var refused = await Assert.ThrowsAsync<RpcException>(() => client.GenerateAsync(request).ResponseAsync);
        request.Llm.BaseUrl = "http://127.0.0.1:9/v1";
        var allowed = await Assert.ThrowsAsync<RpcException>(() => client.GenerateAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Equal(StatusCode.Unavailable, allowed.StatusCode); // allowed, so tried: nothing listens on port 9
    }

    // Every span of the gateway's source, recorded, into spans as each ends.
    private static ActivityListener ListenToGatewaySpans(ConcurrentQueue<Activity> spans)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Namra.LlmGateway",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }
}
