using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>A service the run needs is down: the run ends promptly with <c>UNAVAILABLE</c> naming it, never a hang.</summary>
public sealed class DownstreamFailureTests
{
    private const string Agent = """
        name: calculator_agent
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - text: "Done."
        tools:
          - name: calculator
            type: builtin.calculator
        """;

    [Fact]
    public async Task AToolExecutorThatIsDown_EndsTheRunWithUnavailable_NamingIt()
    {
        await using var host = await NamraTestHost.StartAsync("config,llm-gateway,memory,orchestrator", new Dictionary<string, string?>
        {
            ["Namra:Services:ToolExecutor"] = "http://127.0.0.1:9",
        });
        var client = new AgentService.AgentServiceClient(host.Channel);

        var run = (await client.ExecuteAsync(new ExecuteRequest { Agent = Inline(), Input = "Hi" }, deadline: DateTime.UtcNow.AddSeconds(30))).Run;

        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal((int)StatusCode.Unavailable, run.Error.Code);
        Assert.StartsWith("The tool-executor service is unavailable", run.Error.Message, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Failed, (await client.GetRunAsync(new GetRunRequest { RunId = run.RunId })).Run.Status);
    }

    [Fact]
    public async Task AMemoryServiceThatIsDown_FailsTheCall_NamingIt()
    {
        await using var host = await NamraTestHost.StartAsync("config,llm-gateway,tool-executor,orchestrator", new Dictionary<string, string?>
        {
            ["Namra:Services:Memory"] = "http://127.0.0.1:9",
        });
        var client = new AgentService.AgentServiceClient(host.Channel);

        var error = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest { Agent = Inline(), Input = "Hi" }, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.StartsWith("The memory service is unavailable", error.Status.Detail, StringComparison.Ordinal);
    }

    private static AgentSource Inline() => new() { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } };
}
