using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>A streamed run says, at an interval, which tool calls are still running: a long tool is not a stalled run.</summary>
public sealed class ToolProgressTests
{
    private const string SlowAgent = """
        name: slow_tool
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - tool_calls:
                - { name: shell, arguments: { command: sleep, args: ["1.5"] } }
            - text: "Done."
        tools:
          - name: shell
            type: builtin.shell
            config: { allowed_commands: [sleep] }
        """;

    [Fact]
    public async Task WhileAToolRuns_TheStreamReportsIt_UntilItsResult()
    {
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Orchestrator:TrustInlineAgents"] = "true",
            ["Namra:Orchestrator:ToolProgressInterval"] = "00:00:00.200",
        });
        var client = new AgentService.AgentServiceClient(host.Channel);

        var events = new List<RunEvent>();
        using (var call = client.ExecuteStream(new ExecuteStreamRequest
        {
            Agent = InlineAgents.Yaml(SlowAgent),
            Input = "Wait.",
        }))
        {
            await foreach (var item in call.ResponseStream.ReadAllAsync())
            {
                events.Add(item.Event);
            }
        }

        var toolCall = events.FindIndex(e => e.EventCase == RunEvent.EventOneofCase.ToolCall);
        var result = events.FindIndex(e => e.EventCase == RunEvent.EventOneofCase.ToolResult);
        var running = events.Select((e, i) => (e, i)).Where(x => x.e.EventCase == RunEvent.EventOneofCase.ToolRunning).ToList();
        Assert.NotEmpty(running);
        Assert.All(running, x => Assert.InRange(x.i, toolCall + 1, result - 1));
        Assert.All(running, x => Assert.Equal((events[toolCall].ToolCall.Id, "shell"), (x.e.ToolRunning.ToolCallId, x.e.ToolRunning.Name)));
        Assert.True(running[^1].e.ToolRunning.Elapsed.ToTimeSpan() > running[0].e.ToolRunning.Elapsed.ToTimeSpan() || running.Count == 1);
        Assert.Equal(RunEvent.EventOneofCase.RunCompleted, events[^1].EventCase);
    }
}
