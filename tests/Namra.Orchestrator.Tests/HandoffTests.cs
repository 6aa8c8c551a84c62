using System.Text.Json;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Handoffs (<c>handoffs: [...]</c>): the model hands the conversation to another agent, which answers from the next
/// turn with its own model, prompt and tools and the conversation so far; the record says who answered; handoffs are
/// bounded, and their targets checked.
/// </summary>
public sealed class HandoffTests : IAsyncDisposable
{
    private const string Triage = """
        name: triage
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - text: "Billing question."
              tool_calls: [ { name: transfer_to_billing, id: call_h, arguments: { reason: "It is about an invoice." } } ]
        handoffs: [billing@1.0.0]
        """;

    private readonly string _agents = Directory.CreateTempSubdirectory("namra-handoff-").FullName;

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_agents, recursive: true);
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task TheAgentHandedTo_AnswersWithItsOwnModelPromptAndTools_SeeingTheConversation_AndTheRecordSaysSo()
    {
        await File.WriteAllTextAsync(Path.Combine(_agents, "billing.yaml"), $$"""
            name: billing
            version: 1.0.0
            llm: { provider: anthropic, model: {{AnthropicWire.Model}} }
            system_prompt: "You explain invoices."
            tools:
              - { name: calculator, type: builtin.calculator }
            """);
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Responder = _ => AnthropicWire.TextTurn(100, 10, "Your invoice is due on the 1st.");
        var environment = new Dictionary<string, string> { ["ANTHROPIC_API_KEY"] = "sk-ant-test", ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString() };
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Config:AgentsPath"] = _agents },
            builder => ProviderEnvironment.Use(builder, environment));
        var client = new AgentService.AgentServiceClient(host.Channel);

        var events = await client.EventsAsync(new ExecuteStreamRequest { Agent = InlineAgents.Yaml(Triage), Input = "When is my invoice due?", RunId = "handed" });

        var run = (await client.GetRunAsync(new GetRunRequest { RunId = "handed" })).Run;
        Assert.Equal((RunStatus.Completed, "Your invoice is due on the 1st."), (run.Status, run.Answer));
        Assert.Equal(("triage", "billing"), (run.Agent.Name, run.AnsweredBy.Name));
        var handoff = Assert.Single(events, e => e.EventCase == RunEvent.EventOneofCase.Handoff).Handoff;
        Assert.Equal(("triage", "billing", "It is about an invoice."), (handoff.From.Name, handoff.To.Name, handoff.Reason));

        // The billing agent's model got its own prompt and tools, and the conversation so far.
        using var request = JsonDocument.Parse(Assert.Single(anthropic.Requests).Body);
        var body = request.RootElement;
        Assert.Contains("You explain invoices.", body.GetProperty("system").ToString(), StringComparison.Ordinal);
        Assert.Equal(["calculator"], body.GetProperty("tools").EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        var conversation = body.GetProperty("messages").ToString();
        Assert.Contains("When is my invoice due?", conversation, StringComparison.Ordinal);
        Assert.Contains("transfer_to_billing", conversation, StringComparison.Ordinal);
        Assert.Contains("Handed to billing, which answers from the next turn.", conversation, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithUserMessagesHistory_TheAgentHandedTo_SeesOnlyWhatTheUserSaid()
    {
        await File.WriteAllTextAsync(Path.Combine(_agents, "billing.yaml"), $$"""
            name: billing
            version: 1.0.0
            llm: { provider: anthropic, model: {{AnthropicWire.Model}} }
            """);
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Responder = _ => AnthropicWire.TextTurn(100, 10, "Due on the 1st.");
        await using var services = await ProviderServices.StartAsync(anthropic, split: false, new Dictionary<string, string?> { ["Namra:Config:AgentsPath"] = _agents });
        var filtering = Triage.Replace("handoffs: [billing@1.0.0]", "handoffs: [billing@1.0.0]\nhandoff_history: user_messages", StringComparison.Ordinal);

        var run = (await services.Client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(filtering), Input = "When is my invoice due?" })).Run;

        Assert.Equal((RunStatus.Completed, "billing"), (run.Status, run.AnsweredBy.Name));
        using var request = JsonDocument.Parse(Assert.Single(anthropic.Requests).Body);
        var messages = request.RootElement.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal("user", Assert.Single(messages).GetProperty("role").GetString());
        Assert.Contains("When is my invoice due?", messages[0].ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("transfer_to_billing", request.RootElement.GetProperty("messages").ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AgentsHandingTheConversationBackAndForth_AreStoppedAtTheMostHandoffsAllowed()
    {
        // Each hands over at every turn: after the most allowed, the handoff is refused, and the last one answers itself.
        static string PingPong(string name, string other) => $$"""
            name: {{name}}
            version: 1.0.0
            llm:
              provider: scripted
              model: scripted
              script:
                - tool_calls: [ { name: transfer_to_{{other}}, arguments: { reason: "yours" } } ]
                - text: "I answer it myself."
            handoffs: [{{other}}]
            execution: { max_repeated_tool_calls: 10 }
            """;
        await File.WriteAllTextAsync(Path.Combine(_agents, "ping.yaml"), PingPong("ping", "pong"));
        await File.WriteAllTextAsync(Path.Combine(_agents, "pong.yaml"), PingPong("pong", "ping"));
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Config:AgentsPath"] = _agents,
            ["Namra:Orchestrator:MaxHandoffs"] = "3",
        });
        var client = new AgentService.AgentServiceClient(host.Channel);

        var run = (await client.ExecuteAsync(new ExecuteRequest { Agent = new AgentSource { Reference = "ping@1.0.0" }, Input = "Who takes this?" })).Run;

        Assert.Equal((RunStatus.Completed, "I answer it myself."), (run.Status, run.Answer));
        Assert.Equal("pong", run.AnsweredBy.Name); // ping → pong → ping → pong, then refused
        Assert.Equal(1, run.EventsSummary.ToolErrors);
    }

    [Fact]
    public async Task AHandoffToAnAnthropicAgentWithoutTools_IsAnError_UnlessOnlyWhatTheUserSaidGoes()
    {
        await File.WriteAllTextAsync(Path.Combine(_agents, "billing.yaml"), $"name: billing\nversion: 1.0.0\nllm: {{ provider: anthropic, model: {AnthropicWire.Model} }}\n");
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Config:AgentsPath"] = _agents });
        var client = new AgentService.AgentServiceClient(host.Channel);

        var everything = await client.ValidateAgentAsync(new ValidateAgentRequest { Agent = InlineAgents.Yaml(Triage).Inline });
        var userOnly = await client.ValidateAgentAsync(new ValidateAgentRequest
        {
            Agent = InlineAgents.Yaml(Triage.Replace("handoffs: [billing@1.0.0]", "handoffs: [billing@1.0.0]\nhandoff_history: user_messages", StringComparison.Ordinal)).Inline,
        });

        Assert.False(everything.Valid);
        Assert.Contains(everything.Diagnostics, d => d is { Code: "NAMRA0114", FieldPath: "handoffs[0]" });
        Assert.True(userOnly.Valid, string.Join("\n", userOnly.Diagnostics));
    }

    [Fact]
    public async Task AHandoffToAnAgentNotRegistered_IsAnError_AndAHandoffToolMayNotTakeAToolsName()
    {
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Config:AgentsPath"] = _agents });
        var client = new AgentService.AgentServiceClient(host.Channel);
        var clash = Triage.Replace("handoffs: [billing@1.0.0]", "handoffs: [billing@1.0.0]\ntools:\n  - { name: transfer_to_billing, type: builtin.calculator }", StringComparison.Ordinal);

        var missing = await client.ValidateAgentAsync(new ValidateAgentRequest { Agent = InlineAgents.Yaml(Triage).Inline });
        var clashing = await client.ValidateAgentAsync(new ValidateAgentRequest { Agent = InlineAgents.Yaml(clash).Inline });

        Assert.False(missing.Valid);
        Assert.Contains(missing.Diagnostics, d => d is { Code: "NAMRA0112", FieldPath: "handoffs[0]" } && d.Message.Contains("`billing@1.0.0`", StringComparison.Ordinal));
        Assert.False(clashing.Valid);
        Assert.Contains(clashing.Diagnostics, d => d is { Code: "NAMRA0107", FieldPath: "handoffs[0]" });
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Triage), Input = "x" }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
    }
}
