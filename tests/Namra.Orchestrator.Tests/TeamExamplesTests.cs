using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// The team examples of <c>examples/agents</c> (agents as tools, a handoff, memory across conversations), run by
/// reference from the agents folder across processes: the orchestrator with config and memory in one, the LLM gateway
/// and the tool executor each in a process of their own.
/// </summary>
public sealed class TeamExamplesTests : IAsyncLifetime
{
    private readonly string _data = Directory.CreateTempSubdirectory("namra-team-examples-").FullName;
    private ServerProcess _gateway = null!;
    private ServerProcess _tools = null!;
    private NamraTestHost _host = null!;
    private AgentService.AgentServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _gateway = ServerProcess.Start("llm-gateway", out var gateway);
        _tools = ServerProcess.Start("tool-executor", out var tools);
        _host = await NamraTestHost.StartAsync("config,memory,orchestrator", new Dictionary<string, string?>
        {
            ["Namra:Config:AgentsPath"] = RepositoryPaths.Combine("examples", "agents"),
            ["Namra:Services:LlmGateway"] = gateway,
            ["Namra:Services:ToolExecutor"] = tools,
            ["Namra:Memory:SqlitePath"] = Path.Combine(_data, "memory.db"),
        });
        _client = new AgentService.AgentServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        _gateway.Dispose();
        _tools.Dispose();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task TheCoordinator_AsksTheResearcherAndTheWriter()
    {
        var run = await ExecuteAsync("coordinator@1.0.0", "How far does light go in 2.5 s?", "");
        var researcher = (await _client.GetRunAsync(new GetRunRequest { RunId = run.RunId + ".call_1_1" })).Run;

        Assert.Equal((RunStatus.Completed, "In two and a half seconds, light could go around the Earth more than eighteen times: about 749,481 km."), (run.Status, run.Answer));
        Assert.Equal((RunStatus.Completed, "researcher", 1), (researcher.Status, researcher.Agent.Name, researcher.EventsSummary.ToolCalls));
        Assert.True(run.Usage.InputTokens > researcher.Usage.InputTokens);
    }

    [Fact]
    public async Task Triage_HandsTheRefundToTheRefundsAgent()
    {
        var run = await ExecuteAsync("triage@1.0.0", "I was charged twice for my order.", "");

        Assert.Equal((RunStatus.Completed, "refunds"), (run.Status, run.AnsweredBy.Name));
        Assert.Equal("I refunded the duplicate charge of $49.90; it reaches your card in 3 to 5 days.", run.Answer);
    }

    [Fact]
    public async Task TheMemoryKeeper_RecallsInOneConversationWhatItWasToldInAnother()
    {
        await ExecuteAsync("memory_keeper@1.0.0", "Remember: my favourite colour is teal.", "monday");
        var events = await _client.EventsAsync(new ExecuteStreamRequest
        {
            Agent = new AgentSource { Reference = "memory_keeper@1.0.0" }, Input = "What is my favourite colour?", SessionId = "tuesday",
        });

        Assert.Equal("The user's favourite colour is teal.", events.First(e => e.EventCase == RunEvent.EventOneofCase.MemoryRecall).MemoryRecall.Memories[0].Text);
        Assert.Equal("Your favourite colour is teal, as you told me before.", events[^1].RunCompleted.Answer);
    }

    private async Task<Run> ExecuteAsync(string agent, string input, string session) =>
        (await _client.ExecuteAsync(new ExecuteRequest { Agent = new AgentSource { Reference = agent }, Input = input, SessionId = session })).Run;
}
