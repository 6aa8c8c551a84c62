using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>CancelRun sent to one orchestrator stops a run another orchestrator is executing (they share the memory service).</summary>
public sealed class CrossReplicaCancelTests
{
    [Fact]
    public async Task CancelRun_OnAnotherReplica_StopsTheRunBetweenTurns()
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        var environment = new Dictionary<string, string> { ["ANTHROPIC_API_KEY"] = "sk-ant-test", ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString() };
        await using var first = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Orchestrator:TrustInlineAgents"] = "true" },
            builder => ProviderEnvironment.Use(builder, environment));
        var services = first.Channel.Target;
        await using var second = await NamraTestHost.StartAsync("orchestrator", new Dictionary<string, string?>
        {
            ["Namra:Services:Config"] = $"http://{services}",
            ["Namra:Services:LlmGateway"] = $"http://{services}",
            ["Namra:Services:ToolExecutor"] = $"http://{services}",
            ["Namra:Services:Memory"] = $"http://{services}",
        });
        anthropic.Enqueue(
            new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.ToolUseBlock(0, "t1", "shell", "{\"command\":\"sleep\",\"args\":[\"2\"]}"), AnthropicWire.MessageDelta("tool_use", 20), AnthropicWire.MessageStop()]),
            AnthropicWire.TextTurn(40, 5, "Slept."));
        var agent = $$"""
            name: sleeper
            version: 1.0.0
            llm: { provider: anthropic, model: {{AnthropicWire.Model}}, max_tokens: 256 }
            tools:
              - name: shell
                type: builtin.shell
                config: { allowed_commands: [sleep] }
            """;

        using var call = new AgentService.AgentServiceClient(first.Channel).ExecuteStream(new ExecuteStreamRequest
        {
            Agent = new AgentSource { Inline = new InlineAgent { Content = agent, Format = AgentFormat.Yaml } },
            Input = "Sleep, then answer.",
        });
        var events = new List<RunEvent>();
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            events.Add(item.Event);
            if (item.Event.EventCase == RunEvent.EventOneofCase.ToolCall)
            {
                var cancelled = await new AgentService.AgentServiceClient(second.Channel).CancelRunAsync(new CancelRunRequest { RunId = item.Event.RunId });
                Assert.True(cancelled.Run.CancelRequested);
            }
        }

        Assert.Equal(RunStatus.Cancelled, events[^1].RunFailed.Status);
        Assert.Single(anthropic.Requests); // the second turn never went to the model
    }
}
