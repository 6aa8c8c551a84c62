using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing.Providers;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// The run loop across all five services (one process, real gRPC on loopback) against the local Anthropic
/// server: tool calls, errors, the stops (iterations, budget, loop guard, timeout, cancellation) and sessions.
/// </summary>
public sealed class RunLoopTests : IAsyncLifetime
{
    private FakeProviderServer _anthropic = null!;
    private NamraTestHost _host = null!;
    private AgentService.AgentServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        (_anthropic, _host) = await StartAsync();
        _client = new AgentService.AgentServiceClient(_host.Channel);
    }

    /// <summary>The local Anthropic server, and all five services in one host calling it, with extra settings.</summary>
    internal static async Task<(FakeProviderServer Anthropic, NamraTestHost Host)> StartAsync(IDictionary<string, string?>? settings = null)
    {
        var anthropic = await FakeProviderServer.StartAsync();
        var environment = new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = "sk-ant-test",
            ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString(),
            ["OPENAI_API_KEY"] = "sk-openai-test",
            ["OPENAI_BASE_URL"] = new Uri(anthropic.BaseUrl, "/v1").ToString(),
        };
        return (anthropic, await NamraTestHost.StartAsync("all", settings, configure: builder => ProviderEnvironment.Use(builder, environment)));
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _anthropic.DisposeAsync();
    }

    [Fact]
    public async Task AToolCall_IsRun_AndItsResultGoesBackToTheModel()
    {
        _anthropic.Enqueue(ToolTurn(("toolu_1", "calculator", "{\"expression\":\"(17 + 25) * 2\"}")), AnthropicWire.TextTurn(60, 12, "The answer ", "is 84."));

        var events = await StreamAsync(Agent(), "What is (17 + 25) * 2?");

        var completed = events[^1].RunCompleted;
        Assert.Equal("The answer is 84.", completed.Answer);
        Assert.Equal(2, completed.Iterations);
        Assert.Equal(RunEvent.EventOneofCase.RunStarted, events[0].EventCase);
        Assert.Equal("calculator", events.Single(e => e.EventCase == RunEvent.EventOneofCase.ToolCall).ToolCall.Name);
        var result = events.Single(e => e.EventCase == RunEvent.EventOneofCase.ToolResult).ToolResult;
        Assert.Equal(("toolu_1", "84", false), (result.ToolCallId, result.Content, result.IsError));
        Assert.Equal("The answer is 84.", string.Concat(events.Where(e => e.EventCase == RunEvent.EventOneofCase.TextDelta).Select(e => e.TextDelta.Text)));
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Sequence)); // from 1, as the proto says
        Assert.Contains("\"tool_result\"", _anthropic.Requests[1].Body, StringComparison.Ordinal);
        Assert.Contains("\"content\":\"84\"", _anthropic.Requests[1].Body, StringComparison.Ordinal);
        Assert.Equal(25 + 60, completed.Usage.InputTokens);
    }

    [Fact]
    public async Task ATurnCutOffByMaxTokens_RunsNoneOfItsToolCalls_AndEndsSayingSo()
    {
        // A complete call and one cut off mid-arguments: neither runs, since the turn was not finished.
        _anthropic.Enqueue(new SseReply([
            AnthropicWire.MessageStart(inputTokens: 40),
            .. AnthropicWire.TextBlock(0, "Computing both."),
            .. AnthropicWire.ToolUseBlock(1, "toolu_whole", "calculator", "{\"expression\":\"1+1\"}"),
            .. AnthropicWire.ToolUseBlockCutOff(2, "toolu_cut", "calculator", "{\"expression\":\"2*"),
            AnthropicWire.MessageDelta("max_tokens", 256),
            AnthropicWire.MessageStop()]));

        var events = await StreamAsync(Agent(), "Compute.");

        var failed = events[^1].RunFailed;
        Assert.Equal(RunStatus.CutOff, failed.Status);
        Assert.Equal("Computing both.", failed.PartialAnswer);
        Assert.Contains("cut off at llm.max_tokens (256)", failed.Error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(events, e => e.EventCase == RunEvent.EventOneofCase.ToolResult);
        Assert.Single(_anthropic.Requests);
    }

    [Fact]
    public async Task AnAnswerCutOffByMaxTokens_IsNotACompletedRun()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "The three reasons are: first,"), AnthropicWire.MessageDelta("max_tokens", 256), AnthropicWire.MessageStop()]));

        var run = await ExecuteAsync(Agent(), "Why?");

        Assert.Equal((RunStatus.CutOff, "The three reasons are: first,"), (run.Status, run.Answer));
    }

    [Theory]
    [InlineData("refusal")]
    public async Task ARefusal_EndsTheRunAsRefused(string reason)
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "I can't"), AnthropicWire.MessageDelta(reason, 3), AnthropicWire.MessageStop()]));

        var run = await ExecuteAsync(Agent(), "Do something bad.");

        Assert.Equal(RunStatus.Refused, run.Status);
        Assert.Equal("I can't", run.Answer);
    }

    [Theory]
    [InlineData("content_filter")]
    [InlineData("refusal")]
    public async Task AnOpenAiTurnStoppedByItsFilterOrARefusal_RunsNoneOfItsToolCalls_AndEndsAsRefused(string stop)
    {
        // A tool call the filter stopped mid-way, or a refusal streamed in delta.refusal: neither turn is acted on.
        _anthropic.Enqueue(new SseReply([
            OpenAiWire.Role(),
            stop == "refusal" ? OpenAiWire.Refusal("I can't help with that.") : OpenAiWire.Text("Running it: "),
            OpenAiWire.ToolCallStart(0, "call_A", "calculator"),
            OpenAiWire.ToolCallArguments(0, "{\"expression\":\"1+1\"}"),
            OpenAiWire.Finish(stop == "refusal" ? "stop" : "content_filter"),
            OpenAiWire.Usage(50, 12),
            OpenAiWire.Done()]));
        var agent = Agent().Replace("provider: anthropic", "provider: openai", StringComparison.Ordinal).Replace(AnthropicWire.Model, OpenAiWire.Model, StringComparison.Ordinal);

        var events = await StreamAsync(agent, "Compute.");

        var failed = events[^1].RunFailed;
        Assert.Equal(RunStatus.Refused, failed.Status);
        Assert.Equal(stop == "refusal" ? "I can't help with that." : "Running it: ", failed.PartialAnswer);
        Assert.DoesNotContain(events, e => e.EventCase == RunEvent.EventOneofCase.ToolCall);
        Assert.Single(_anthropic.Requests);
    }

    [Fact]
    public async Task ParallelToolCalls_AllRun_AndAllResultsGoBackInOneTurn()
    {
        _anthropic.Enqueue(
            ToolTurn(("toolu_a", "calculator", "{\"expression\":\"2 + 2\"}"), ("toolu_b", "calculator", "{\"expression\":\"3 * 3\"}")),
            AnthropicWire.TextTurn(80, 10, "4 and 9."));

        var run = await ExecuteAsync(Agent(), "Compute 2+2 and 3*3.");

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal(2, run.EventsSummary.ToolCalls);
        var second = _anthropic.Requests[1].Body;
        Assert.Contains("\"tool_use_id\":\"toolu_a\"", second, StringComparison.Ordinal);
        Assert.Contains("\"tool_use_id\":\"toolu_b\"", second, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFailingTool_AndAnUnknownTool_AreErrorResultsTheModelReads()
    {
        _anthropic.Enqueue(
            ToolTurn(("toolu_1", "calculator", "{\"expression\":\"1 / 0\"}"), ("toolu_2", "weather", "{\"city\":\"Paris\"}")),
            AnthropicWire.TextTurn(80, 10, "I cannot divide by zero."));

        var run = await ExecuteAsync(Agent(), "Divide 1 by 0 and tell me the weather.");

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal((2, 2), (run.EventsSummary.ToolCalls, run.EventsSummary.ToolErrors));
        var second = _anthropic.Requests[1].Body;
        Assert.Contains("\"is_error\":true", second, StringComparison.Ordinal);
        Assert.Contains("There is no tool named 'weather'", second, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadToolArguments_AreAnErrorResult_TheModelCorrects()
    {
        _anthropic.Enqueue(
            ToolTurn(("t1", "calculator", "{\"expr\":\"6 * 7\"}")),
            ToolTurn(("t2", "calculator", "{\"expression\":\"6 * 7\"}")),
            AnthropicWire.TextTurn(90, 5, "42."));

        var run = await ExecuteAsync(Agent(), "6 times 7?");

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal((2, 1), (run.EventsSummary.ToolCalls, run.EventsSummary.ToolErrors));
        Assert.Contains("do not match the tool's schema", _anthropic.Requests[1].Body, StringComparison.Ordinal);
        Assert.Contains("\"content\":\"42\"", _anthropic.Requests[2].Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AProviderRateLimit_IsRetried_AndTheRunCompletes()
    {
        _anthropic.Enqueue(
            new ErrorReply(429, AnthropicWire.ErrorBody("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), new Dictionary<string, string> { ["retry-after"] = "0" }),
            AnthropicWire.TextTurn(20, 5, "Hello after a pause."));

        var run = await ExecuteAsync(Agent(), "Hi");

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal("Hello after a pause.", run.Answer);
        Assert.Equal(2, _anthropic.Requests.Count);
    }

    [Fact]
    public async Task AUnaryRun_AsksTheGatewayForWholeTurns_SoItMakesNoTextDeltas()
    {
        string[] pieces = [.. Enumerable.Range(0, 20).Select(i => $"{i} ")];
        _anthropic.Enqueue(AnthropicWire.TextTurn(60, 20, pieces), AnthropicWire.TextTurn(60, 20, pieces));

        var unary = await ExecuteAsync(Agent(), "Count to 20.");
        var streamed = await StreamAsync(Agent(), "Count to 20.");

        // Streamed, the turn arrives as deltas; unary, the same turn is one answer: the run counts every event, the
        // last included, so a unary run that streamed would count twenty more.
        Assert.Equal(string.Concat(pieces), unary.Answer);
        Assert.Equal(20, streamed.Count(e => e.EventCase == RunEvent.EventOneofCase.TextDelta));
        Assert.Equal(streamed.Count(e => e.EventCase != RunEvent.EventOneofCase.TextDelta), unary.EventsSummary.Events);
    }

    [Fact]
    public async Task Events_ComeInTheOrderTheRunHappened()
    {
        _anthropic.Enqueue(ToolTurn(("t1", "calculator", "{\"expression\":\"1 + 1\"}"), text: "Adding."), AnthropicWire.TextTurn(60, 5, "2."));

        var kinds = (await StreamAsync(Agent(), "1+1?")).Select(e => e.EventCase).ToList();

        Assert.Equal(
            [
                RunEvent.EventOneofCase.RunStarted, RunEvent.EventOneofCase.Iteration, RunEvent.EventOneofCase.TextDelta, RunEvent.EventOneofCase.Usage,
                RunEvent.EventOneofCase.ToolCall, RunEvent.EventOneofCase.ToolResult,
                RunEvent.EventOneofCase.Iteration, RunEvent.EventOneofCase.TextDelta, RunEvent.EventOneofCase.Usage, RunEvent.EventOneofCase.RunCompleted,
            ],
            kinds);
    }

    [Fact]
    public async Task MaxIterations_StopsTheRun_KeepingThePartialAnswer()
    {
        _anthropic.Enqueue(ToolTurn(("t1", "calculator", "{\"expression\":\"1 + 1\"}")), ToolTurn(("t2", "calculator", "{\"expression\":\"2 + 2\"}"), text: "Still working"));

        var run = await ExecuteAsync(Agent("max_iterations: 2"), "Keep going.");

        Assert.Equal(RunStatus.MaxIterations, run.Status);
        Assert.Equal((int)StatusCode.ResourceExhausted, run.Error.Code);
        Assert.Equal("Still working", run.Answer);
        Assert.Equal(2, _anthropic.Requests.Count);
    }

    [Fact]
    public async Task ATokenBudget_IsEnforcedBeforeTheCall()
    {
        var run = await ExecuteAsync(Agent("budget: { max_tokens: 200 }"), "Hello");

        Assert.Equal(RunStatus.BudgetExceeded, run.Status);
        Assert.Equal((int)StatusCode.ResourceExhausted, run.Error.Code);
        Assert.Contains("could use up to", run.Error.Message, StringComparison.Ordinal);
        Assert.Empty(_anthropic.Requests);
    }

    [Fact]
    public async Task ACostBudget_ReservesTheWorstCase_AndStopsBeforeACallThatCouldOvershoot()
    {
        // Each call is reserved at its worst case: every byte sent a token, plus framing and the tool instructions
        // (about 1,600 tokens here) at the highest input rate ($3.75 per million, cache writes), and max_tokens 256 at
        // $15: about $0.0097. The first fits $0.012; it costs $0.00495 (1,500 in, 30 out), and the second no longer fits.
        _anthropic.Enqueue(new SseReply([
            AnthropicWire.MessageStart(inputTokens: 1500),
            .. AnthropicWire.ToolUseBlock(0, "t1", "calculator", "{\"expression\":\"1 + 1\"}"),
            AnthropicWire.MessageDelta("tool_use", 30),
            AnthropicWire.MessageStop()]));

        var run = await ExecuteAsync(Agent("budget: { max_cost_usd: 0.012 }"), "1+1?");

        Assert.Equal(RunStatus.BudgetExceeded, run.Status);
        Assert.Contains("could cost up to $0.0", run.Error.Message, StringComparison.Ordinal);
        Assert.Single(_anthropic.Requests);
        Assert.Equal(0.00495, run.Cost.TotalUsd, 10);
    }

    [Fact]
    public async Task AModelWithoutAPrice_HasAnUnknownCost_NeverZero_AndACostBudgetOnItIsRefused()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(model: "claude-experimental-9", inputTokens: 40), .. AnthropicWire.TextBlock(0, "Hi."),
            AnthropicWire.MessageDelta("end_turn", 5), AnthropicWire.MessageStop()]));
        var unpriced = Agent().Replace(AnthropicWire.Model, "claude-experimental-9", StringComparison.Ordinal);

        var run = await ExecuteAsync(unpriced, "Hello");
        var refused = await Assert.ThrowsAsync<RpcException>(() => ExecuteAsync(unpriced + "execution:\n  budget: { max_cost_usd: 5.00 }\n", "Hello"));

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Null(run.Cost);
        Assert.Equal(45, run.Usage.InputTokens + run.Usage.OutputTokens);
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("no price for model 'claude-experimental-9'", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("execution.budget.max_cost_usd", RpcDetails.Of<Google.Rpc.BadRequest>(refused).Single().FieldViolations.Single().Field);
        Assert.Single(_anthropic.Requests); // the refused run called nobody
        var validated = await _client.ValidateAgentAsync(new ValidateAgentRequest { Agent = new InlineAgent { Content = unpriced + "execution:\n  budget: { max_cost_usd: 5.00 }\n", FileName = "agent.yaml" } });
        Assert.False(validated.Valid);
        Assert.Equal(("NAMRA0110", "execution.budget.max_cost_usd"), (validated.Diagnostics.Single().Code, validated.Diagnostics.Single().FieldPath));
    }

    [Fact]
    public async Task AnAgentsOwnPricing_PricesItsCalls_AndKeepsACostBudget()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(model: "claude-experimental-9", inputTokens: 1000), .. AnthropicWire.TextBlock(0, "Hi."),
            AnthropicWire.MessageDelta("end_turn", 100), AnthropicWire.MessageStop()]));
        var priced = Agent().Replace(AnthropicWire.Model, "claude-experimental-9", StringComparison.Ordinal)
            .Replace("  max_tokens: 256\n", "  max_tokens: 256\n  pricing: { input_per_mtok: 2, output_per_mtok: 10 }\n", StringComparison.Ordinal)
            + "execution:\n  budget: { max_cost_usd: 1.00 }\n";

        var run = await ExecuteAsync(priced, "Hello");

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal(0.003, run.Cost.TotalUsd, 10); // 1,000 in at $2, 100 out at $10
    }

    [Fact]
    public async Task AnAgentsOwnPricing_NeverLowersAListedPrice()
    {
        // An inline definition pricing a listed model at $0 would otherwise spend budgets and tenants' quotas for free.
        _anthropic.Enqueue(AnthropicWire.TextTurn(1000, 100, "Hi."));
        var discounted = Agent().Replace("  max_tokens: 256\n", "  max_tokens: 256\n  pricing: { input_per_mtok: 0, output_per_mtok: 0 }\n", StringComparison.Ordinal);

        var run = await ExecuteAsync(discounted, "Hello");

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal(0.0045, run.Cost.TotalUsd, 10); // Sonnet 4.5's list price: 1,000 in at $3, 100 out at $15
    }

    [Fact]
    public async Task AProvidersFailure_KeepsItsReasonRequestIdAndRetryAdvice_OnTheRun()
    {
        // Asked to wait longer than the gateway's longest backoff, the gateway passes the advice on instead of retrying.
        _anthropic.Enqueue(new ErrorReply(429, AnthropicWire.ErrorBody("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
            new Dictionary<string, string> { ["retry-after"] = "90", ["request-id"] = "req_011CX" }));

        var run = await ExecuteAsync(Agent(), "Hello");

        Assert.Equal((RunStatus.Failed, (int)StatusCode.ResourceExhausted), (run.Status, run.Error.Code));
        var info = run.Error.Details.Single(d => d.Is(Google.Rpc.ErrorInfo.Descriptor)).Unpack<Google.Rpc.ErrorInfo>();
        Assert.Equal(("anthropic", "429_RATE_LIMIT_ERROR", "req_011CX"), (info.Domain, info.Reason, info.Metadata["request_id"]));
        Assert.Equal(TimeSpan.FromSeconds(90), run.Error.Details.Single(d => d.Is(Google.Rpc.RetryInfo.Descriptor)).Unpack<Google.Rpc.RetryInfo>().RetryDelay.ToTimeSpan());
    }

    [Fact]
    public async Task EveryProviderRequest_IsOnTheRunsLedger_AndTheRunsTotalsAreItsSum()
    {
        _anthropic.Enqueue(new ErrorReply(529, AnthropicWire.ErrorBody("overloaded_error", "Overloaded"), new Dictionary<string, string> { ["request-id"] = "req_first" }),
            AnthropicWire.TextTurn(60, 12, "Hello."));

        var run = await ExecuteAsync(Agent(), "Hi");

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal([(AttemptOutcome.Failed, "req_first", 1), (AttemptOutcome.Completed, FakeProviderServer.RequestIdOf(2), 1)], run.Ledger.Select(a => (a.Outcome, a.RequestId, a.Iteration)));
        var answered = run.Ledger.Where(a => a.Outcome == AttemptOutcome.Completed).ToList();
        Assert.Equal(answered.Sum(a => a.Usage.InputTokens), run.Usage.InputTokens);
        Assert.Equal(answered.Sum(a => a.Usage.OutputTokens), run.Usage.OutputTokens);
        Assert.Equal(answered.Sum(a => a.Cost.TotalUsd), run.Cost.TotalUsd, 12);
    }

    [Fact]
    public async Task AStreamBrokenMidTurn_IsOnTheLedgerAsUnknown_ChargedItsWorstCase_AndTheCostIsUnknown()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Half an ans", "wer")], DropAfter: 3));

        var events = await StreamAsync(Agent("budget: { max_tokens: 100000 }"), "Hi");

        var failed = events[^1].RunFailed;
        Assert.Equal((int)StatusCode.Unavailable, failed.Error.Code);
        Assert.Null(failed.Cost);
        var run = (await _client.GetRunAsync(new GetRunRequest { RunId = events[0].RunId })).Run;
        // Whether the break reached the gateway before or after the stream's first event, the request is of unknown
        // outcome (a break before it is retried, and those retries are on the ledger too).
        var lost = run.Ledger[0];
        Assert.Equal(AttemptOutcome.Unknown, lost.Outcome);
        Assert.True(lost.ChargedTokens > 256, $"charged {lost.ChargedTokens}"); // the input bound plus max_tokens
        Assert.Equal(_anthropic.Requests.Count, run.Ledger.Count);
    }

    [Theory]
    [InlineData('é', 600_000)] // 600,000 characters, 1.2 MB: ran in full, then failed to save
    [InlineData('a', 1_045_000)]
    public async Task AnInputTheMemoryServiceCouldNotStore_IsRefusedAtTheDoor_InBytes(char character, int count)
    {
        var refused = await Assert.ThrowsAsync<RpcException>(() => ExecuteAsync(Agent(), new string(character, count)));

        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("bytes of input (UTF-8)", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(_anthropic.Requests);
    }

    [Fact]
    public async Task Execute_IsIdempotentByRunId_ARepeatGetsTheRun_AnotherRequestIsAlreadyExists()
    {
        _anthropic.Enqueue(AnthropicWire.TextTurn(20, 3, "Once."));
        var request = new ExecuteRequest { Agent = InlineAgents.Yaml(Agent()), Input = "Say it once.", RunId = "run-idempotent-1" };

        // Two deliveries at once, then a third after the run ended: one run, one model call.
        var together = await Task.WhenAll(_client.ExecuteAsync(request).ResponseAsync, _client.ExecuteAsync(request).ResponseAsync);
        var later = (await _client.ExecuteAsync(request)).Run;
        var other = await Assert.ThrowsAsync<RpcException>(() => _client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Agent()), Input = "Something else.", RunId = "run-idempotent-1" }).ResponseAsync);

        Assert.All(together, response => Assert.Equal((RunStatus.Completed, "Once."), (response.Run.Status, response.Run.Answer)));
        Assert.Equal((RunStatus.Completed, "Once.", "run-idempotent-1"), (later.Status, later.Answer, later.RunId));
        Assert.Single(_anthropic.Requests);
        Assert.Equal(StatusCode.AlreadyExists, other.StatusCode);
        Assert.Contains("names another run", other.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARepeatedStream_GetsTheRunsLastEvent_AsItWasNumberedAndTimed()
    {
        _anthropic.Enqueue(AnthropicWire.TextTurn(20, 3, "Once."));
        var request = new ExecuteStreamRequest { Agent = InlineAgents.Yaml(Agent()), Input = "Say it once.", RunId = "run-stream-repeat-1" };

        var first = await ReadAsync(request);
        var repeated = await ReadAsync(request);

        var last = Assert.Single(repeated);
        Assert.Equal(first[^1].Sequence, last.Sequence);
        Assert.Equal(first[^1].RunCompleted, last.RunCompleted);
        Assert.Equal("run-stream-repeat-1", last.RunId);
        Assert.NotNull(last.Time);
        Assert.Single(_anthropic.Requests);

        async Task<List<RunEvent>> ReadAsync(ExecuteStreamRequest stream)
        {
            using var call = _client.ExecuteStream(stream);
            return [.. await call.ResponseStream.ReadAllAsync().Select(item => item.Event).ToListAsync()];
        }
    }

    [Fact]
    public async Task AToolCallBudget_StopsBeforeTheCallThatWouldExceedIt()
    {
        _anthropic.Enqueue(ToolTurn(("t1", "calculator", "{\"expression\":\"1 + 1\"}"), ("t2", "calculator", "{\"expression\":\"2 + 2\"}")));

        var run = await ExecuteAsync(Agent("budget: { max_tool_calls: 1 }"), "Two sums.");

        Assert.Equal(RunStatus.BudgetExceeded, run.Status);
        Assert.Equal(0, run.EventsSummary.ToolCalls);
    }

    [Fact]
    public async Task TheLoopGuard_StopsARunRepeatingTheSameCall()
    {
        for (var i = 0; i < 3; i++)
        {
            _anthropic.Enqueue(ToolTurn(($"t{i}", "calculator", i % 2 == 0 ? "{\"expression\":\"6 * 7\"}" : "{ \"expression\" : \"6 * 7\" }")));
        }

        var run = await ExecuteAsync(Agent("max_repeated_tool_calls: 2"), "Multiply.");

        Assert.Equal(RunStatus.LoopDetected, run.Status);
        Assert.Equal(2, run.EventsSummary.ToolCalls);
        Assert.Contains("same arguments 3 times", run.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheTimeout_StopsTheRunAndTheModelCall()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Thinking")], HoldAfter: 3));

        var run = await ExecuteAsync(Agent("timeout: 1s"), "Take your time.");

        Assert.Equal(RunStatus.TimedOut, run.Status);
        Assert.Equal((int)StatusCode.DeadlineExceeded, run.Error.Code);
        await _anthropic.ClientAborted.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task CancelRun_StopsTheModelCall_AndTheStreamEndsWithTheReason()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Let me think")], HoldAfter: 3));
        using var call = _client.ExecuteStream(new ExecuteStreamRequest { Agent = InlineAgents.Yaml(Agent()), Input = "Think forever." });
        var events = new List<RunEvent>();

        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            events.Add(item.Event);
            if (item.Event.EventCase == RunEvent.EventOneofCase.TextDelta)
            {
                await _client.CancelRunAsync(new CancelRunRequest { RunId = item.Event.RunId, Reason = "user pressed Ctrl-C" });
            }
        }

        var failed = events[^1].RunFailed;
        Assert.Equal(RunStatus.Cancelled, failed.Status);
        Assert.Contains("user pressed Ctrl-C", failed.Error.Message, StringComparison.Ordinal);
        await _anthropic.ClientAborted.WaitAsync(TimeSpan.FromSeconds(30));
        var record = await _client.GetRunAsync(new GetRunRequest { RunId = events[0].RunId });
        Assert.Equal(RunStatus.Cancelled, record.Run.Status);
    }

    [Fact]
    public async Task ASession_CarriesTheConversationIntoTheNextRun()
    {
        _anthropic.Enqueue(AnthropicWire.TextTurn(20, 5, "Nice to meet you, Ada."), AnthropicWire.TextTurn(40, 5, "Your name is Ada."));

        await ExecuteAsync(Agent(), "My name is Ada.", session: "conversation-1");
        var second = await ExecuteAsync(Agent(), "What is my name?", session: "conversation-1");

        Assert.Equal("Your name is Ada.", second.Answer);
        var body = _anthropic.Requests[1].Body;
        Assert.True(body.IndexOf("My name is Ada.", StringComparison.Ordinal) < body.IndexOf("Nice to meet you, Ada.", StringComparison.Ordinal));
        Assert.True(body.IndexOf("Nice to meet you, Ada.", StringComparison.Ordinal) < body.IndexOf("What is my name?", StringComparison.Ordinal));
    }

    [Fact]
    public async Task GetRun_ReturnsTheRecord_PinnedToTheAgentsVersionAndHash()
    {
        _anthropic.Enqueue(AnthropicWire.TextTurn(20, 5, "Hello."));
        var run = await ExecuteAsync(Agent(), "Hi", labels: new Dictionary<string, string> { ["team"] = "docs" });

        var record = (await _client.GetRunAsync(new GetRunRequest { RunId = run.RunId })).Run;
        var listed = await _client.ListRunsAsync(new ListRunsRequest { AgentName = "helper" });

        Assert.Equal(RunStatus.Completed, record.Status);
        Assert.Equal(("helper", "1.0.0"), (record.Agent.Name, record.Agent.Version));
        Assert.StartsWith("sha256:", record.Agent.ContentHash, StringComparison.Ordinal);
        Assert.Equal("Hello.", record.Answer);
        Assert.Equal("docs", record.Labels["team"]);
        Assert.Equal(32, record.TraceId.Length);
        Assert.NotNull(record.Duration);
        Assert.Contains(listed.Runs, r => r.RunId == run.RunId);
    }

    [Fact]
    public async Task ListRuns_LeavesOutInputsAndAnswersUnlessAskedForTheFullView_AndBoundsItsPages()
    {
        _anthropic.Enqueue(AnthropicWire.TextTurn(20, 5, "A long answer."));
        var run = await ExecuteAsync(Agent(), new string('x', 100_000), labels: new Dictionary<string, string> { ["view"] = "test" });

        var basic = (await _client.ListRunsAsync(new ListRunsRequest { AgentName = "helper" })).Runs.Single(r => r.RunId == run.RunId);
        var full = (await _client.ListRunsAsync(new ListRunsRequest { AgentName = "helper", View = RunView.Full })).Runs.Single(r => r.RunId == run.RunId);
        var tooMany = await Assert.ThrowsAsync<RpcException>(() => _client.ListRunsAsync(new ListRunsRequest { PageSize = 11, View = RunView.Full }).ResponseAsync);
        var badStatus = await Assert.ThrowsAsync<RpcException>(() => _client.ListRunsAsync(new ListRunsRequest { Status = (RunStatus)99 }).ResponseAsync);

        Assert.Equal(("", "", 0), (basic.Input, basic.Answer, basic.Ledger.Count));
        Assert.Equal((RunStatus.Completed, "test", run.Usage), (basic.Status, basic.Labels["view"], basic.Usage));
        Assert.Equal((100_000, "A long answer."), (full.Input.Length, full.Answer));
        Assert.Equal("page_size", RpcDetails.Of<Google.Rpc.BadRequest>(tooMany)[0].FieldViolations[0].Field);
        Assert.Equal("status", RpcDetails.Of<Google.Rpc.BadRequest>(badStatus)[0].FieldViolations[0].Field);
    }

    [Fact]
    public async Task AnInvalidAgent_FailsTheCall_WithItsDiagnostics()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _client.ExecuteAsync(new ExecuteRequest
        {
            Agent = InlineAgents.Yaml("name: helper\nversion: 1.0.0\nllm: { provider: anthropic, model: claude-sonnet-4-5-20250929, max_tokens: 256, temprature: 0.2 }\n"),
            Input = "Hi",
        }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(RpcDetails.Of<Diagnostic>(error), d => d.Message.Contains("temprature", StringComparison.Ordinal));
    }

    private async Task<Run> ExecuteAsync(string agent, string input, string session = "", IDictionary<string, string>? labels = null) =>
        (await _client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(agent), Input = input, SessionId = session, Labels = { labels ?? new Dictionary<string, string>() } })).Run;

    private async Task<List<RunEvent>> StreamAsync(string agent, string input)
    {
        using var call = _client.ExecuteStream(new ExecuteStreamRequest { Agent = InlineAgents.Yaml(agent), Input = input });
        var events = new List<RunEvent>();
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            events.Add(item.Event);
        }

        return events;
    }


    internal static string Agent(string execution = "") => $$"""
        name: helper
        version: 1.0.0
        llm:
          provider: anthropic
          model: {{AnthropicWire.Model}}
          max_tokens: 256
        system_prompt: Use the calculator for arithmetic.
        tools:
          - name: calculator
            type: builtin.calculator
        {{(execution.Length > 0 ? "execution:\n  " + execution.Replace("\n", "\n  ", StringComparison.Ordinal) : "")}}
        """;

    internal static SseReply ToolTurn(params (string Id, string Name, string Arguments)[] calls) => ToolTurn(calls, text: null);

    private static SseReply ToolTurn((string Id, string Name, string Arguments) call, string text) => ToolTurn([call], text);

    private static SseReply ToolTurn((string Id, string Name, string Arguments)[] calls, string? text)
    {
        var frames = new List<SseFrame> { AnthropicWire.MessageStart() };
        var index = 0;
        if (text is not null)
        {
            frames.AddRange(AnthropicWire.TextBlock(index++, text));
        }

        foreach (var (id, name, arguments) in calls)
        {
            frames.AddRange(AnthropicWire.ToolUseBlock(index++, id, name, arguments));
        }

        frames.Add(AnthropicWire.MessageDelta("tool_use", 30));
        frames.Add(AnthropicWire.MessageStop());
        return new SseReply(frames);
    }
}
