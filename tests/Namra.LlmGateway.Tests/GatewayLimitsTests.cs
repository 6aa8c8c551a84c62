using Grpc.Core;
using Microsoft.Extensions.Logging;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing.Providers;
using Namra.Testing.Telemetry;
using Namra.Testing;

namespace Namra.LlmGateway.Tests;

/// <summary>Rate limits, deadlines, and what never reaches the logs.</summary>
public sealed class GatewayLimitsTests : IAsyncLifetime
{
    private const string Key = "sk-ant-secret-do-not-log-42";
    private readonly CapturedLogs _logs = new();
    private FakeProviderServer _anthropic = null!;
    private NamraTestHost _host = null!;
    private LlmGatewayService.LlmGatewayServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _anthropic = await FakeProviderServer.StartAsync();
        var environment = new Dictionary<string, string> { ["ANTHROPIC_API_KEY"] = Key, ["ANTHROPIC_BASE_URL"] = _anthropic.BaseUrl.ToString() };
        _host = await TestGateway.StartAsync(environment, new Dictionary<string, string?>
        {
            ["Namra:LlmGateway:Retry:MaxRetries"] = "0",
            ["Namra:LlmGateway:RateLimits:anthropic:RequestsPerMinute"] = "2",
            ["Namra:LlmGateway:RateLimits:anthropic:TokensPerMinute"] = "5000",
        }, configure: builder =>
        {
            builder.Logging.AddProvider(_logs);
            builder.Logging.SetMinimumLevel(LogLevel.Trace);
        });
        _client = new LlmGatewayService.LlmGatewayServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _anthropic.DisposeAsync();
    }

    [Fact]
    public async Task Generate_OverTheRequestsPerMinute_IsRefusedBeforeReachingTheProvider()
    {
        _anthropic.Enqueue(AnthropicWire.TextTurn(10, 2, "one"), AnthropicWire.TextTurn(10, 2, "two"));

        await _client.GenerateAsync(Request(maxTokens: 100));
        await _client.GenerateAsync(Request(maxTokens: 100));
        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Request(maxTokens: 100)).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal("requests per minute", Assert.Single(Assert.Single(RpcDetails.Of<Google.Rpc.QuotaFailure>(error)).Violations).Description);
        Assert.Single(RpcDetails.Of<Google.Rpc.RetryInfo>(error));
        Assert.Equal(2, _anthropic.Requests.Count);
    }

    [Fact]
    public async Task Generate_NeedingMoreTokensThanTheMinuteAllows_IsRefused()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Request(maxTokens: 8000)).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal("tokens per minute", Assert.Single(Assert.Single(RpcDetails.Of<Google.Rpc.QuotaFailure>(error)).Violations).Description);
        Assert.Empty(_anthropic.Requests);
    }

    [Fact]
    public async Task StreamGenerate_WhenTheCallersDeadlinePasses_EndsWithDeadlineExceededAndAbandonsTheProvider()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Hel", "lo")], HoldAfter: 2));
        using var call = _client.StreamGenerate(new StreamGenerateRequest { Llm = Request(100).Llm, Messages = { Request(100).Messages } },
            deadline: DateTime.UtcNow.AddSeconds(1));

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }
        });

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        await _anthropic.ClientAborted.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Keys_NeverReachTheLogs_EvenWhenCallsFail()
    {
        _anthropic.Enqueue(AnthropicWire.TextTurn(10, 2, "ok"), new ErrorReply(401, AnthropicWire.ErrorBody("authentication_error", "invalid x-api-key")));

        await _client.GenerateAsync(Request(100));
        await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Request(100)).ResponseAsync);

        Assert.NotEmpty(_logs.Lines);
        Assert.DoesNotContain(_logs.Lines, line => line.Contains(Key, StringComparison.Ordinal));
        Assert.Equal(Key, _anthropic.Requests[0].Headers["x-api-key"]); // it was sent, just never written down
    }

    private static GenerateRequest Request(int maxTokens) => new()
    {
        Llm = new LlmConfig { Provider = LlmProvider.Anthropic, Model = AnthropicWire.Model, MaxTokens = maxTokens },
        Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "hi" } } } },
    };
}
