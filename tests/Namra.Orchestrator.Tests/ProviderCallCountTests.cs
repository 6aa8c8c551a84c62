using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Each billed provider request is made by one retry layer, the gateway's: with the gateway a process of its own, an
/// overloaded provider gets the gateway's attempts for a model turn, never the orchestrator's retries on top.
/// </summary>
public sealed class ProviderCallCountTests
{
    [Fact]
    public async Task AnOverloadedProvider_GetsTheGatewaysAttemptsOnly_UnaryAndStreamed()
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.DefaultReply = new ErrorReply(529, AnthropicWire.ErrorBody("overloaded_error", "Overloaded"));
        using var gateway = ServerProcess.Start("llm-gateway", out var gatewayAddress, new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = "sk-ant-test",
            ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString(),
            ["Namra__LlmGateway__Retry__MaxRetries"] = "2",
            ["Namra__LlmGateway__Retry__BaseDelay"] = "00:00:00.010",
            ["Namra__LlmGateway__Retry__MaxDelay"] = "00:00:00.050",
            ["Namra__LlmGateway__CircuitBreaker__MinimumThroughput"] = "1000",
        });
        await using var host = await NamraTestHost.StartAsync("config,tool-executor,memory,orchestrator",
            new Dictionary<string, string?> { ["Namra:Services:LlmGateway"] = gatewayAddress });
        var client = new AgentService.AgentServiceClient(host.Channel);
        var agent = InlineAgents.Yaml($"name: counted\nversion: 1.0.0\nllm: {{ provider: anthropic, model: {AnthropicWire.Model}, max_tokens: 64 }}\n");

        var unary = (await client.ExecuteAsync(new ExecuteRequest { Agent = agent, Input = "Hello." })).Run;
        var afterUnary = anthropic.Requests.Count;
        using (var stream = client.ExecuteStream(new ExecuteStreamRequest { Agent = agent, Input = "Hello." }))
        {
            await foreach (var _ in stream.ResponseStream.ReadAllAsync())
            {
            }
        }

        Assert.Equal((RunStatus.Failed, (int)StatusCode.Unavailable), (unary.Status, unary.Error.Code));
        Assert.Equal(3, afterUnary); // the first attempt and the gateway's two retries
        Assert.Equal(6, anthropic.Requests.Count);
    }

    [Fact]
    public async Task AGatewayLostMidTurn_EndsTheRun_WithAnAttemptOfUnknownOutcomeChargedAllItWasAllowed()
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Thinking about it")], HoldAfter: 2));
        using var gateway = ServerProcess.Start("llm-gateway", out var gatewayAddress, new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = "sk-ant-test",
            ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString(),
        });
        await using var host = await NamraTestHost.StartAsync("config,tool-executor,memory,orchestrator",
            new Dictionary<string, string?> { ["Namra:Services:LlmGateway"] = gatewayAddress });
        var client = new AgentService.AgentServiceClient(host.Channel);
        var agent = InlineAgents.Yaml($"name: lost\nversion: 1.0.0\nllm: {{ provider: anthropic, model: {AnthropicWire.Model}, max_tokens: 64 }}\nexecution: {{ budget: {{ max_tokens: 50000 }} }}\n");

        var running = client.ExecuteAsync(new ExecuteRequest { Agent = agent, Input = "Hello." }).ResponseAsync;
        await anthropic.WaitForRequestsAsync(1, TimeSpan.FromSeconds(30));
        gateway.Kill();
        var run = (await running.WaitAsync(TimeSpan.FromSeconds(30))).Run;

        Assert.Equal((RunStatus.Failed, (int)StatusCode.Unavailable), (run.Status, run.Error.Code));
        var lost = Assert.Single(run.Ledger);
        Assert.Equal((AttemptOutcome.Unknown, 50_000L), (lost.Outcome, lost.ChargedTokens));
        Assert.Contains("lost mid-call", lost.Error, StringComparison.Ordinal);
        Assert.Null(run.Cost);
        Assert.Single(anthropic.Requests);
    }

    [Fact]
    public async Task WithTwoGatewayReplicas_KillingTheOneServingATurn_DoesNotSendTheTurnToTheOther()
    {
        // Two replicas behind one name, as a headless Service gives them: localhost is 127.0.0.1 and ::1, on one port.
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Thinking about it")], HoldAfter: 2));
        anthropic.DefaultReply = AnthropicWire.TextTurn(10, 2, "Sent twice.");
        var port = LocalPorts.Free();
        ServerProcess Replica(System.Net.IPAddress address, string key) => ServerProcess.Start("llm-gateway", address, port, new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = key, // tells the provider which replica called it
            ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString(),
        });
        using var first = Replica(System.Net.IPAddress.Loopback, "sk-ant-first");
        using var second = Replica(System.Net.IPAddress.IPv6Loopback, "sk-ant-second");
        await using var host = await NamraTestHost.StartAsync("config,tool-executor,memory,orchestrator",
            new Dictionary<string, string?> { ["Namra:Services:LlmGateway"] = $"dns:///localhost:{port}" });
        var client = new AgentService.AgentServiceClient(host.Channel);
        var agent = InlineAgents.Yaml($"name: replicated\nversion: 1.0.0\nllm: {{ provider: anthropic, model: {AnthropicWire.Model}, max_tokens: 64 }}\n");

        var running = client.ExecuteAsync(new ExecuteRequest { Agent = agent, Input = "Hello." }).ResponseAsync;
        await anthropic.WaitForRequestsAsync(1, TimeSpan.FromSeconds(30));
        (anthropic.Requests[0].Headers["x-api-key"] == "sk-ant-first" ? first : second).Kill();
        var run = (await running.WaitAsync(TimeSpan.FromSeconds(30))).Run;

        Assert.Equal((RunStatus.Failed, (int)StatusCode.Unavailable), (run.Status, run.Error.Code));
        Assert.Single(anthropic.Requests); // the turn was billed once, whatever the other replica could have done
        Assert.Equal(AttemptOutcome.Unknown, Assert.Single(run.Ledger).Outcome);
    }
}
