using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// What a run is charged and why it stops, the same with the gateway in the orchestrator's process and in a process of
/// its own: turns cut off at max_tokens, unknown costs said to be unknown and why, the ledger of every provider request
/// with its request id, a provider's refusal kept whole, and a call abandoned in flight charged as of unknown outcome.
/// </summary>
public sealed class AccountingDeploymentTests
{
    private static string Agent(string model = AnthropicWire.Model, string execution = "") => $$"""
        name: billed
        version: 1.0.0
        llm: { provider: anthropic, model: {{model}}, max_tokens: 256 }
        tools:
          - name: calculator
            type: builtin.calculator
        {{(execution.Length > 0 ? "execution: " + execution : "")}}
        """;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ATurnCutOffByMaxTokens_RunsNoneOfItsToolCalls_AndEndsCutOff_WithItsText(bool split)
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Enqueue(new SseReply([
            AnthropicWire.MessageStart(inputTokens: 40),
            .. AnthropicWire.TextBlock(0, "Computing."),
            .. AnthropicWire.ToolUseBlock(1, "toolu_whole", "calculator", "{\"expression\":\"1+1\"}"),
            .. AnthropicWire.ToolUseBlockCutOff(2, "toolu_cut", "calculator", "{\"expression\":\"2*"),
            AnthropicWire.MessageDelta("max_tokens", 256),
            AnthropicWire.MessageStop()]));
        await using var services = await ProviderServices.StartAsync(anthropic, split);

        var events = await services.Client.EventsAsync(new ExecuteStreamRequest { Agent = InlineAgents.Yaml(Agent()), Input = "Compute." });

        var failed = events[^1].RunFailed;
        Assert.Equal((RunStatus.CutOff, "Computing."), (failed.Status, failed.PartialAnswer));
        Assert.Contains("cut off at llm.max_tokens (256)", failed.Error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(events, e => e.EventCase == RunEvent.EventOneofCase.ToolCall);
        Assert.Single(anthropic.Requests);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AModelWithoutAPrice_LeavesTheCostUnknown_SayingWhy_OnTheRecordAndItsEvents(bool split)
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(model: "claude-experimental-9", inputTokens: 60), .. AnthropicWire.TextBlock(0, "Hello."),
            AnthropicWire.MessageDelta("end_turn", 12), AnthropicWire.MessageStop()]));
        await using var services = await ProviderServices.StartAsync(anthropic, split);

        var name = split ? "unpriced_split" : "unpriced_embedded"; // its own series in the process's metrics
        var events = await services.Client.EventsAsync(new ExecuteStreamRequest
        {
            Agent = InlineAgents.Yaml(Agent("claude-experimental-9").Replace("name: billed", $"name: {name}", StringComparison.Ordinal)),
            Input = "Hi",
        });
        var run = (await services.Client.GetRunAsync(new GetRunRequest { RunId = events[0].RunId })).Run;

        var completed = events[^1].RunCompleted;
        Assert.Null(completed.Cost);
        Assert.Equal("no price for claude-experimental-9", completed.CostUnknown);
        Assert.Null(events.Last(e => e.EventCase == RunEvent.EventOneofCase.Usage).Usage.Cost);
        Assert.Equal((null, "no price for claude-experimental-9"), (run.Cost, run.CostUnknown));
        Assert.Equal(72, run.Usage.InputTokens + run.Usage.OutputTokens);

        // Over REST, no cost and why; in the metrics, a run of unknown cost, and no dollars counted for it.
        var rest = System.Text.Json.Nodes.JsonNode.Parse(await services.Http.GetStringAsync($"/v1/agents/{run.RunId}/status"))!["run"]!;
        Assert.Null(rest["cost"]);
        Assert.Equal("no price for claude-experimental-9", rest["costUnknown"]!.GetValue<string>());
        var scrape = new Namra.Testing.Telemetry.PrometheusScrape(await services.Http.GetStringAsync("/metrics"));
        Assert.Equal(1, scrape.Value("namra_runs_cost_unknown_total", ("agent", name)));
        Assert.Empty(scrape.Values("namra_run_cost_micro_usd_total", ("agent", name)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ACostBudget_OnAModelWithoutAPrice_IsRefusedBeforeTheRun_NamingTheModelAndHowToPriceIt(bool split)
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        await using var services = await ProviderServices.StartAsync(anthropic, split);

        var error = await Assert.ThrowsAsync<RpcException>(() => services.Client.ExecuteAsync(new ExecuteRequest
        {
            Agent = InlineAgents.Yaml(Agent("claude-experimental-9", "{ budget: { max_cost_usd: 5.00 } }")),
            Input = "Hi",
        }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("claude-experimental-9", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("llm.pricing", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains(RpcDetails.Of<Google.Rpc.BadRequest>(error).SelectMany(b => b.FieldViolations), v => v.Field == "execution.budget.max_cost_usd");
        Assert.Empty(anthropic.Requests);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EveryProviderRequest_IsOnTheLedger_WithItsRequestId_AndTheRunsTotalsAreItsSum(bool split)
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Enqueue(new ErrorReply(529, AnthropicWire.ErrorBody("overloaded_error", "Overloaded"), new Dictionary<string, string> { ["request-id"] = "req_first" }),
            AnthropicWire.TextTurn(60, 12, "Hello."));
        await using var services = await ProviderServices.StartAsync(anthropic, split);

        var run = (await services.Client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Agent()), Input = "Hi" })).Run;

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal([(AttemptOutcome.Failed, "req_first"), (AttemptOutcome.Completed, FakeProviderServer.RequestIdOf(2))], run.Ledger.Select(a => (a.Outcome, a.RequestId)));
        var answered = run.Ledger.Single(a => a.Outcome == AttemptOutcome.Completed);
        Assert.Equal((answered.Usage.InputTokens, answered.Usage.OutputTokens), (run.Usage.InputTokens, run.Usage.OutputTokens));
        Assert.Equal(answered.Cost.TotalUsd, run.Cost.TotalUsd, 12);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AProvidersRefusal_EndsTheRun_WithItsReasonRequestIdAndRetryAdvice(bool split)
    {
        // Asked to wait longer than the gateway's longest backoff, the gateway passes the advice on instead of retrying.
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Enqueue(new ErrorReply(429, AnthropicWire.ErrorBody("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
            new Dictionary<string, string> { ["retry-after"] = "90", ["request-id"] = "req_011CX" }));
        await using var services = await ProviderServices.StartAsync(anthropic, split);

        var run = (await services.Client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Agent()), Input = "Hi" })).Run;

        Assert.Equal((RunStatus.Failed, (int)StatusCode.ResourceExhausted), (run.Status, run.Error.Code));
        var info = run.Error.Details.Single(d => d.Is(Google.Rpc.ErrorInfo.Descriptor)).Unpack<Google.Rpc.ErrorInfo>();
        Assert.Equal(("anthropic", "429_RATE_LIMIT_ERROR", "req_011CX"), (info.Domain, info.Reason, info.Metadata["request_id"]));
        Assert.Equal(TimeSpan.FromSeconds(90), run.Error.Details.Single(d => d.Is(Google.Rpc.RetryInfo.Descriptor)).Unpack<Google.Rpc.RetryInfo>().RetryDelay.ToTimeSpan());
        Assert.Equal((AttemptOutcome.Failed, "req_011CX"), (Assert.Single(run.Ledger).Outcome, run.Ledger[0].RequestId));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ARunOutOfTime_WhileAModelCallIsInFlight_IsChargedThatCall_AsOfUnknownOutcome(bool split)
    {
        // The provider has the request and has begun to answer: it may bill it, so the run's cost cannot be known.
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Let me think")], HoldAfter: 3));
        await using var services = await ProviderServices.StartAsync(anthropic, split);

        var run = (await services.Client.ExecuteAsync(new ExecuteRequest
        {
            Agent = InlineAgents.Yaml(Agent(execution: "{ timeout: 2s, budget: { max_tokens: 50000 } }")),
            Input = "Think.",
        })).Run;

        Assert.Equal(RunStatus.TimedOut, run.Status);
        var attempt = Assert.Single(run.Ledger);
        Assert.Equal((AttemptOutcome.Unknown, 50_000L), (attempt.Outcome, attempt.ChargedTokens));
        Assert.Null(run.Cost);
        Assert.StartsWith($"a request to {AnthropicWire.Model} of unknown outcome, charged up to 50,000 tokens", run.CostUnknown, StringComparison.Ordinal);
    }
}
