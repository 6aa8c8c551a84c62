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

/// <summary>The tool executor, a process of its own, is killed while a tool runs: the run ends with <c>UNAVAILABLE</c> naming it.</summary>
public sealed class ToolExecutorCrashTests
{
    [Fact]
    public async Task AToolExecutorKilledMidRun_EndsTheRunWithUnavailable()
    {
        await using var anthropic = await Testing.Providers.FakeProviderServer.StartAsync();
        using var executor = ServerProcess.Start("tool-executor", out var executorAddress);
        var environment = new Dictionary<string, string> { ["ANTHROPIC_API_KEY"] = "sk-ant-test", ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString() };
        await using var host = await NamraTestHost.StartAsync("config,llm-gateway,memory,orchestrator",
            new Dictionary<string, string?>
            {
                ["Namra:Services:ToolExecutor"] = executorAddress, ["Namra:Orchestrator:TrustInlineAgents"] = "true",
                ["Namra:Orchestrator:ToolProgressInterval"] = "00:00:00.100", // tool_running events say when the tool runs
            },
            builder => Testing.Providers.ProviderEnvironment.Use(builder, environment));
        var client = new AgentService.AgentServiceClient(host.Channel);
        anthropic.Enqueue(new Testing.Providers.SseReply([
            Testing.Providers.AnthropicWire.MessageStart(),
            .. Testing.Providers.AnthropicWire.ToolUseBlock(0, "t1", "shell", "{\"command\":\"sleep\",\"args\":[\"30\"]}"),
            Testing.Providers.AnthropicWire.MessageDelta("tool_use", 20),
            Testing.Providers.AnthropicWire.MessageStop()]));
        var agent = $"""
            name: sleeper
            version: 1.0.0
            llm: {"{"} provider: anthropic, model: {Testing.Providers.AnthropicWire.Model}, max_tokens: 256 {"}"}
            tools:
              - name: shell
                type: builtin.shell
                timeout: 60s
                config: {"{"} allowed_commands: [sleep] {"}"}
            execution: {"{"} timeout: 90s {"}"}
            """;

        using var call = client.ExecuteStream(new ExecuteStreamRequest { Agent = new AgentSource { Inline = new InlineAgent { Content = agent, Format = AgentFormat.Yaml } }, Input = "Sleep." },
            deadline: DateTime.UtcNow.AddSeconds(60));
        RunFailed? failed = null;
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            if (item.Event.EventCase == RunEvent.EventOneofCase.ToolRunning && executor.IsRunning)
            {
                executor.Kill(); // the tool is running
            }

            failed = item.Event.RunFailed ?? failed;
        }

        var run = Assert.IsType<RunFailed>(failed);
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal((int)StatusCode.Unavailable, run.Error.Code);
        Assert.StartsWith("The tool-executor service is unavailable", run.Error.Message, StringComparison.Ordinal);
        var atFault = Assert.Single(run.Error.Details.Where(d => d.Is(Google.Rpc.ResourceInfo.Descriptor)).Select(d => d.Unpack<Google.Rpc.ResourceInfo>()));
        Assert.Equal(("namra.v1.ToolExecutorService", "tool-executor"), (atFault.ResourceType, atFault.ResourceName));
    }
}

/// <summary>The memory service hangs (a paused process): a run's deadline is a deadline naming it, not a client cancel.</summary>
public sealed class HungMemoryTests
{
    [Fact]
    public async Task AMemoryServiceThatDoesNotAnswer_EndsTheCallAtTheRunsDeadline_NamingIt()
    {
        using var memory = ServerProcess.Start("memory", out var memoryAddress);
        await using var host = await NamraTestHost.StartAsync("config,llm-gateway,tool-executor,orchestrator",
            new Dictionary<string, string?> { ["Namra:Services:Memory"] = memoryAddress });
        var client = new AgentService.AgentServiceClient(host.Channel);
        await client.ValidateAgentAsync(new ValidateAgentRequest { Agent = new InlineAgent { Content = Agent } }); // warm
        memory.Pause();
        try
        {
            var started = System.Diagnostics.Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest
            {
                Agent = InlineAgents.Yaml(Agent),
                Input = "Hello.",
            }).ResponseAsync);

            Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
            Assert.Contains("memory service did not answer before the run's deadline (2 s)", error.Status.Detail, StringComparison.Ordinal);
            Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(15));
        }
        finally
        {
            memory.Resume();
        }
    }

    private const string Agent = "name: waits\nversion: 1.0.0\nllm: { provider: scripted, model: scripted, script: [ { text: \"Hi.\" } ] }\nexecution: { timeout: 2s }\n";
}
