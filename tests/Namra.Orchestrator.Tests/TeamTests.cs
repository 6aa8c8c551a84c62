using System.Collections.Concurrent;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Agents called as tools (<c>type: agent</c>): child runs that are runs (records linked to their parent, events in the
/// parent's stream, spending in the parent's), within the parent's budget however many run at once (with the gateway in
/// the orchestrator's process and in one of its own), cancelled with their parent, and no deeper than allowed.
/// </summary>
public sealed class TeamTests : IAsyncDisposable
{
    private const string Researcher = """
        name: researcher
        version: 1.0.0
        description: Finds facts
        llm:
          provider: scripted
          model: scripted
          script:
            - tool_calls: [ { name: calculator, id: calc_1, arguments: { expression: "6 * 7" } } ]
            - text: "It is 42."
        tools:
          - { name: calculator, type: builtin.calculator }
        """;

    private const string Coordinator = """
        name: coordinator
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - tool_calls: [ { name: research, id: call_r, arguments: { input: "What is 6 * 7?" } } ]
            - text: "The researcher says 42."
        tools:
          - { name: research, type: agent, config: { agent: researcher@1.0.0 } }
        """;

    private readonly string _agents = Directory.CreateTempSubdirectory("namra-team-").FullName;

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_agents, recursive: true);
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task AChildRun_IsARunLinkedToItsParent_ItsEventsInTheParentsStream_ItsSpendingInTheParents()
    {
        await WriteAgentsAsync(("researcher.yaml", Researcher));
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Config:AgentsPath"] = _agents });
        var client = new AgentService.AgentServiceClient(host.Channel);

        var events = await client.EventsAsync(new ExecuteStreamRequest { Agent = InlineAgents.Yaml(Coordinator), Input = "Ask.", RunId = "team-run-1" });

        var parent = (await client.GetRunAsync(new GetRunRequest { RunId = "team-run-1" })).Run;
        var child = (await client.GetRunAsync(new GetRunRequest { RunId = "team-run-1.call_r" })).Run;
        Assert.Equal((RunStatus.Completed, "The researcher says 42."), (parent.Status, parent.Answer));
        Assert.Equal((RunStatus.Completed, "It is 42.", "researcher"), (child.Status, child.Answer, child.Agent.Name));
        Assert.Equal(("team-run-1", "call_r", 1, 0), (child.ParentRunId, child.ParentToolCallId, child.Depth, parent.Depth));
        Assert.Equal("It is 42.", events.Single(e => e.ToolResult?.ToolCallId == "call_r").ToolResult.Content);

        // The child's events, in order, inside the parent's stream, which stays numbered without gaps.
        var forwarded = events.Where(e => e.EventCase == RunEvent.EventOneofCase.Child).Select(e => e.Child).ToList();
        Assert.All(forwarded, f => Assert.Equal(("call_r", "team-run-1.call_r"), (f.ToolCallId, f.Event.RunId)));
        Assert.Equal(RunEvent.EventOneofCase.RunStarted, forwarded[0].Event.EventCase);
        Assert.Equal("6 * 7", System.Text.Json.JsonDocument.Parse(forwarded.Single(f => f.Event.EventCase == RunEvent.EventOneofCase.ToolCall).Event.ToolCall.ArgumentsJson)
            .RootElement.GetProperty("expression").GetString());
        Assert.Equal("42", forwarded.Single(f => f.Event.EventCase == RunEvent.EventOneofCase.ToolResult).Event.ToolResult.Content);
        Assert.Equal(RunEvent.EventOneofCase.RunCompleted, forwarded[^1].Event.EventCase);
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Sequence));

        // The parent's usage and ledger hold the child's, marked with its run id.
        Assert.True(parent.Usage.InputTokens > child.Usage.InputTokens);
        Assert.Equal(child.Ledger.Count, parent.Ledger.Count(a => a.RunId == child.RunId));
        Assert.Equal(parent.Ledger.Count - child.Ledger.Count, parent.Ledger.Count(a => a.RunId.Length == 0));
    }

    [Fact]
    public async Task ATeamRun_IsOneTrace_TheChildsRunSpanUnderTheCallsToolSpan()
    {
        using var recorded = new Namra.Testing.Telemetry.RecordedSpans();
        await WriteAgentsAsync(("researcher.yaml", Researcher));
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Config:AgentsPath"] = _agents });

        var run = (await new AgentService.AgentServiceClient(host.Channel).ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Coordinator), Input = "Ask.", RunId = "traced-team" })).Run;

        var spans = recorded.Of(run.TraceId);
        var parent = spans.Single(a => a.OperationName == "invoke_agent coordinator");
        var call = spans.Single(a => a.OperationName == "execute_tool research");
        var child = spans.Single(a => a.OperationName == "invoke_agent researcher");
        Assert.Equal("traced-team.call_r", call.GetTagItem("namra.child_run.id"));
        Assert.Equal(call.SpanId, child.ParentSpanId);
        Assert.Contains(spans, a => a.OperationName == "execute_tool calculator" && a.TraceId == child.TraceId);
        Assert.True(IsUnder(call, parent, spans));
    }

    // Whether span descends from ancestor among spans.
    private static bool IsUnder(System.Diagnostics.Activity span, System.Diagnostics.Activity ancestor, List<System.Diagnostics.Activity> spans)
    {
        for (var current = span; current is not null; current = spans.Find(a => a.SpanId == current.ParentSpanId))
        {
            if (current.ParentSpanId == ancestor.SpanId)
            {
                return true;
            }
        }

        return false;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ATeamsBudget_IsNeverExceeded_WithChildrenRunningAtOnce_AgainstAProviderCountingAllItCan(bool split)
    {
        // Three children run at once, each calling tools for as long as its budget lets it: what the provider counts for
        // the whole team stays within the parent's budget.
        await WriteAgentsAsync(("greedy.yaml", """
            name: greedy
            version: 1.0.0
            llm: { provider: anthropic, model: claude-sonnet-4-5, max_tokens: 300 }
            tools:
              - { name: calculator, type: builtin.calculator }
            execution: { max_iterations: 100 }
            """));
        await using var anthropic = await FakeProviderServer.StartAsync();
        var turn = 0;
        var counted = new ConcurrentBag<int>();
        anthropic.Responder = request =>
        {
            var number = Interlocked.Increment(ref turn);
            var (input, output) = (CountingProvider.InputTokens(request.Body), CountingProvider.MaxTokens(request.Body));
            counted.Add(input + output);
            var isParent = request.Body.Contains("\"name\":\"ask_1\"", StringComparison.Ordinal);
            var firstParentTurn = isParent && !request.Body.Contains("tool_result", StringComparison.Ordinal);
            return isParent && !firstParentTurn
                ? AnthropicWire.TextTurn(input, output, "Done.")
                : new SseReply([
                    AnthropicWire.MessageStart(id: $"msg_{number}", inputTokens: input),
                    .. firstParentTurn
                        ? Enumerable.Range(1, 3).SelectMany(i => AnthropicWire.ToolUseBlock(i - 1, $"toolu_ask{i}", $"ask_{i}", "{\"input\":\"Keep adding numbers.\"}"))
                        : AnthropicWire.ToolUseBlock(0, $"toolu_{number}", "calculator", $"{{\"expression\":\"{number} + {number}\"}}"),
                    AnthropicWire.MessageDelta("tool_use", output),
                    AnthropicWire.MessageStop()]);
        };
        await using var services = await ProviderServices.StartAsync(anthropic, split, Folder);
        var coordinator = """
            name: spender
            version: 1.0.0
            llm: { provider: anthropic, model: claude-sonnet-4-5, max_tokens: 300 }
            tools:
              - { name: ask_1, type: agent, config: { agent: greedy@1.0.0 } }
              - { name: ask_2, type: agent, config: { agent: greedy@1.0.0 } }
              - { name: ask_3, type: agent, config: { agent: greedy@1.0.0 } }
            execution:
              max_iterations: 10
              budget: { max_tokens: 30000 }
            """;

        var run = (await services.Client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(coordinator), Input = "Spend.", RunId = $"spender-{split}" })).Run;

        var children = await Task.WhenAll(Enumerable.Range(1, 3).Select(async i =>
            (await services.Client.GetRunAsync(new GetRunRequest { RunId = $"spender-{split}.toolu_ask{i}" })).Run));
        Assert.All(children, c => Assert.Equal(RunStatus.BudgetExceeded, c.Status));
        Assert.True(anthropic.Requests.Count > 9, $"only {anthropic.Requests.Count} calls were made");
        Assert.InRange(counted.Sum(), 1, 30_000);
        Assert.InRange(run.Usage.InputTokens + run.Usage.OutputTokens, 1, 30_000);
        Assert.All(children, c => Assert.InRange(c.Usage.InputTokens + c.Usage.OutputTokens, 1, 30_000 / 3));
    }

    [Fact]
    public async Task CancellingTheParent_CancelsItsChild_OnTheServer()
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Responder = request => new SseReply([AnthropicWire.MessageStart(inputTokens: 10), AnthropicWire.Ping()], HoldAfter: 2); // the child's model never answers
        await WriteAgentsAsync(("slow.yaml", "name: slow\nversion: 1.0.0\nllm: { provider: anthropic, model: claude-sonnet-4-5 }\n"));
        await using var services = await ProviderServices.StartAsync(anthropic, split: false, Folder);
        var parent = """
            name: waiting_parent
            version: 1.0.0
            llm:
              provider: scripted
              model: scripted
              script:
                - tool_calls: [ { name: ask, id: call_slow, arguments: { input: "Take your time." } } ]
                - text: "Never."
            tools:
              - { name: ask, type: agent, config: { agent: slow@1.0.0 } }
            """;

        var running = services.Client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(parent), Input = "Go.", RunId = "cancelled-team" }).ResponseAsync;
        await anthropic.WaitForRequestsAsync(1, TimeSpan.FromSeconds(30));
        await services.Client.CancelRunAsync(new CancelRunRequest { RunId = "cancelled-team", Reason = "changed my mind" });
        var ended = (await running.WaitAsync(TimeSpan.FromSeconds(30))).Run;

        var child = (await services.Client.GetRunAsync(new GetRunRequest { RunId = "cancelled-team.call_slow" })).Run;
        Assert.Equal(RunStatus.Cancelled, ended.Status);
        Assert.Equal(RunStatus.Cancelled, child.Status);
        Assert.NotNull(child.EndTime);
    }

    private const string Careful = """
        name: careful
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - tool_calls: [ { name: calculator, id: calc_1, arguments: { expression: "6 * 7" } } ]
            - text: "Approved, it is 42."
        tools:
          - { name: calculator, type: builtin.calculator, approval: always }
        """;

    private static string CallingCareful => Coordinator.Replace("researcher@1.0.0", "careful@1.0.0", StringComparison.Ordinal);

    [Fact]
    public async Task AChildWaitingForApproval_HoldsItsParent_WhichGoesOnOnceThePersonDecides()
    {
        await using var host = await StartHostAsync();
        var client = new AgentService.AgentServiceClient(host.Channel);
        var running = await StartHeldAsync(client, "held");
        await client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "held.call_r", Reason = "fine" });
        var run = (await running.WaitAsync(TimeSpan.FromSeconds(30))).Run;

        Assert.Equal((RunStatus.Completed, "The researcher says 42."), (run.Status, run.Answer));
        Assert.Equal(RunStatus.Completed, await StatusAsync(client, "held.call_r"));
    }

    [Fact]
    public async Task CancellingAParent_WhoseChildWaitsForApproval_CancelsTheChild()
    {
        await using var host = await StartHostAsync();
        var client = new AgentService.AgentServiceClient(host.Channel);
        var running = await StartHeldAsync(client, "held-cancel");
        await client.CancelRunAsync(new CancelRunRequest { RunId = "held-cancel", Reason = "not needed" });
        var run = (await running.WaitAsync(TimeSpan.FromSeconds(30))).Run;

        Assert.Equal(RunStatus.Cancelled, run.Status);
        await Eventually.HoldsAsync(() => StatusAsync(client, "held-cancel.call_r"), status => status == RunStatus.Cancelled);
    }

    private async Task<NamraTestHost> StartHostAsync()
    {
        await WriteAgentsAsync(("careful.yaml", Careful));
        return await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Config:AgentsPath"] = _agents });
    }

    /// <summary>Starts a run whose child, <c>careful</c>, waits for a person's approval; returns once it waits.</summary>
    private static async Task<Task<ExecuteResponse>> StartHeldAsync(AgentService.AgentServiceClient client, string runId)
    {
        var running = client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(CallingCareful), Input = "Ask.", RunId = runId }).ResponseAsync;
        await Eventually.HoldsAsync(() => StatusAsync(client, runId + ".call_r"), status => status == RunStatus.AwaitingApproval);
        return running;
    }

    private static async Task<RunStatus> StatusAsync(AgentService.AgentServiceClient client, string runId)
    {
        try
        {
            return (await client.GetRunAsync(new GetRunRequest { RunId = runId })).Run.Status;
        }
        catch (RpcException exception) when (exception.StatusCode == StatusCode.NotFound)
        {
            return RunStatus.Unspecified;
        }
    }

    [Fact]
    public async Task AnAgentDeclaringItsArguments_IsOfferedWithThatSchema_AndCalledWithTheArgumentsAsItsInput()
    {
        await WriteAgentsAsync(("pricer.yaml", """
            name: pricer
            version: 1.0.0
            description: Prices an order
            llm:
              provider: scripted
              model: scripted
              script:
                - text: "It costs 12 EUR."
            input_schema:
              type: object
              properties:
                sku: { type: string, pattern: "^[A-Z]{3}-[0-9]+$" }
                quantity: { type: integer, minimum: 1 }
              required: [sku, quantity]
              additionalProperties: false
            """));
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Responder = request => request.Body.Contains("tool_result", StringComparison.Ordinal)
            ? AnthropicWire.TextTurn(50, 5, "Priced.")
            : new SseReply([
                AnthropicWire.MessageStart(inputTokens: 50),
                .. AnthropicWire.ToolUseBlock(0, "toolu_good", "price", "{\"sku\":\"ABC-12\",\"quantity\":3}"),
                .. AnthropicWire.ToolUseBlock(1, "toolu_bad", "price", "{\"sku\":\"abc\",\"quantity\":0}"),
                AnthropicWire.MessageDelta("tool_use", 20),
                AnthropicWire.MessageStop()]);
        await using var services = await ProviderServices.StartAsync(anthropic, split: false, Folder);
        var buyer = $$"""
            name: buyer
            version: 1.0.0
            llm: { provider: anthropic, model: {{AnthropicWire.Model}} }
            tools:
              - { name: price, type: agent, config: { agent: pricer@1.0.0 } }
            """;

        var events = await services.Client.EventsAsync(new ExecuteStreamRequest { Agent = InlineAgents.Yaml(buyer), Input = "Price it.", RunId = "priced" });

        using var first = System.Text.Json.JsonDocument.Parse(anthropic.Requests[0].Body);
        var tool = first.RootElement.GetProperty("tools").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "price");
        Assert.Equal(["quantity", "sku"], tool.GetProperty("input_schema").GetProperty("required").EnumerateArray().Select(e => e.GetString()).Order());
        var child = (await services.Client.GetRunAsync(new GetRunRequest { RunId = "priced.toolu_good" })).Run;
        using var input = System.Text.Json.JsonDocument.Parse(child.Input);
        Assert.Equal(("ABC-12", 3), (input.RootElement.GetProperty("sku").GetString(), input.RootElement.GetProperty("quantity").GetInt32()));
        var results = events.Where(e => e.EventCase == RunEvent.EventOneofCase.ToolResult).ToDictionary(e => e.ToolResult.ToolCallId, e => e.ToolResult);
        Assert.Equal((false, "It costs 12 EUR."), (results["toolu_good"].IsError, results["toolu_good"].Content));
        Assert.True(results["toolu_bad"].IsError);
        Assert.StartsWith("The arguments do not match the agent's input_schema", results["toolu_bad"].Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAgentPastTheDepthAllowed_IsNotCalled_AndTheModelReadsWhy()
    {
        await WriteAgentsAsync(("researcher.yaml", Researcher), ("middle.yaml", Coordinator.Replace("name: coordinator", "name: middle", StringComparison.Ordinal)));
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Config:AgentsPath"] = _agents,
            ["Namra:Orchestrator:MaxAgentDepth"] = "1",
        });
        var client = new AgentService.AgentServiceClient(host.Channel);
        var top = Coordinator.Replace("researcher@1.0.0", "middle@1.0.0", StringComparison.Ordinal);

        var run = (await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(top), Input = "Ask.", RunId = "deep" })).Run;
        var middle = (await client.GetRunAsync(new GetRunRequest { RunId = "deep.call_r" })).Run;

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal(RunStatus.Completed, middle.Status); // its call of the researcher was refused, with a result it read
        Assert.Equal(1, middle.EventsSummary.ToolErrors);
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.GetRunAsync(new GetRunRequest { RunId = "deep.call_r.call_r" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, refused.StatusCode);
    }

    [Fact]
    public async Task AgentsThatCallEachOtherInACycle_AreRefusedWithThePath_AndAMissingOneIsNamed()
    {
        await WriteAgentsAsync(
            ("a.yaml", "name: a\nversion: 1.0.0\nllm: { provider: scripted, model: scripted, script: [ { text: x } ] }\ntools:\n  - { name: b, type: agent, config: { agent: b@1.0.0 } }\n"),
            ("b.yaml", "name: b\nversion: 1.0.0\nllm: { provider: scripted, model: scripted, script: [ { text: x } ] }\ntools:\n  - { name: a, type: agent, config: { agent: a } }\n"));
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Config:AgentsPath"] = _agents });
        var client = new AgentService.AgentServiceClient(host.Channel);
        var caller = "name: caller\nversion: 1.0.0\nllm: { provider: scripted, model: scripted, script: [ { text: x } ] }\ntools:\n" +
            "  - { name: first, type: agent, config: { agent: a@1.0.0 } }\n  - { name: missing, type: agent, config: { agent: nobody@2.0.0 } }\n";

        var validated = await client.ValidateAgentAsync(new ValidateAgentRequest { Agent = InlineAgents.Yaml(caller).Inline });
        var byReference = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest { Agent = new AgentSource { Reference = "a@1.0.0" }, Input = "Go." }).ResponseAsync);

        Assert.False(validated.Valid);
        Assert.Contains(validated.Diagnostics, d => d is { Code: "NAMRA0113", FieldPath: "tools[0].config.agent" } && d.Message.Contains("a@1.0.0 → b@1.0.0 → a@1.0.0", StringComparison.Ordinal));
        Assert.Contains(validated.Diagnostics, d => d is { Code: "NAMRA0112", FieldPath: "tools[1].config.agent" } && d.Message.Contains("`nobody@2.0.0`", StringComparison.Ordinal));
        Assert.Equal(StatusCode.FailedPrecondition, byReference.StatusCode);
        Assert.Contains("a@1.0.0 → b@1.0.0 → a@1.0.0", byReference.Status.Detail, StringComparison.Ordinal);
    }

    private Dictionary<string, string?> Folder => new() { ["Namra:Config:AgentsPath"] = _agents };

    private async Task WriteAgentsAsync(params (string File, string Yaml)[] agents)
    {
        foreach (var (file, yaml) in agents)
        {
            await File.WriteAllTextAsync(Path.Combine(_agents, file), yaml);
        }
    }
}
