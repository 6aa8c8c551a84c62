using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Runs that wait for a person, over fake downstream services in the orchestrator's process: a guarded call makes the
/// run wait (its other calls run), and approval, denial, edited arguments, a late decision, the approval timeout and
/// a cancel each end the wait as documented. The cross-process case (the replica that ran it killed) is in
/// <see cref="DurableRunFaultTests"/>.
/// </summary>
public sealed class ApprovalTests : IAsyncLifetime
{
    private const string Agent = """
        name: guarded
        version: 1.0.0
        llm: { provider: anthropic, model: m, max_tokens: 256 }
        tools:
          - name: pay
            type: builtin.calculator
            approval: always
          - name: look
            type: builtin.calculator
          - name: maybe
            type: builtin.calculator
            approval:
              when:
                - { argument: expression, matches: "9+" }
        execution: { timeout: 60s, approval_timeout: 2s }
        """;

    private readonly FakeDownstream _fakes = new();
    private NamraTestHost _host = null!;
    private AgentService.AgentServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Orchestrator:LeaseDuration"] = "00:00:03",
            ["Namra:Orchestrator:RecoveryInterval"] = "00:00:00.200",
            ["Namra:Orchestrator:CancelPollInterval"] = "00:00:00.100",
        }, _fakes.Use);
        _client = new AgentService.AgentServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task AGuardedCall_MakesTheRunWait_ItsOtherCallsRun_AndTheStreamEndsWithWhatItWaitsFor()
    {
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}"), ("c2", "look", "{\"expression\":\"1\"}")));

        var events = await StreamAsync("waits");
        var record = _fakes.Memory.Record("waits");
        var journal = _fakes.Memory.Journal("waits");

        var required = Assert.Single(events, e => e.EventCase == RunEvent.EventOneofCase.ApprovalRequired).ApprovalRequired;
        Assert.Equal(RunEvent.EventOneofCase.ApprovalRequired, events[^1].EventCase); // the stream ends with it
        Assert.Equal(("c1", "pay", ApprovalState.Pending), (required.Approvals[0].ToolCall.Id, required.Approvals[0].ToolCall.Name, required.Approvals[0].State));
        Assert.Equal("Every call of pay needs approval.", required.Approvals[0].Reason);
        Assert.NotNull(required.ApprovalDeadline);
        Assert.Equal(["c2"], _fakes.Tools.Calls.Select(c => c.Call.Id)); // the unguarded call of the turn ran
        Assert.Equal((RunStatus.AwaitingApproval, null), (record.Status, record.Lease));
        Assert.Equal(ApprovalState.Pending, Assert.Single(record.Approvals).State);
        Assert.Equal([RunJournalEntry.StepOneofCase.ToolsStarted, RunJournalEntry.StepOneofCase.ApprovalsRequested, RunJournalEntry.StepOneofCase.ToolFinished],
            journal.Skip(2).Select(e => e.StepCase));
        Assert.DoesNotContain(journal, e => e.StepCase == RunJournalEntry.StepOneofCase.Ended);
        Assert.Equal(RunStatus.AwaitingApproval, (await _client.GetRunAsync(new GetRunRequest { RunId = "waits" })).Run.Status);
    }

    [Fact]
    public async Task AnApprovedCall_RunsWhenTheRunResumes_AndTheRunCompletes()
    {
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}"), ("c2", "look", "{\"expression\":\"1\"}")), FakeGateway.Text("Paid."));
        var waiting = (await Execute("approved")).Run;

        var decided = (await _client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "approved", DecidedBy = "ana", Reason = "invoice checked" })).Run;
        var ended = await EndedAsync("approved");

        Assert.Equal(RunStatus.AwaitingApproval, waiting.Status);
        Assert.Equal((ApprovalState.Approved, "ana", "invoice checked"), (decided.Approvals[0].State, decided.Approvals[0].DecidedBy, decided.Approvals[0].DecisionReason));
        Assert.Equal((RunStatus.Completed, "Paid."), (ended.Status, ended.Answer));
        Assert.Equal(["c2", "c1"], _fakes.Tools.Calls.Select(c => c.Call.Id)); // each once
        var results = _fakes.Gateway.Requests.Last().Messages[^1];
        Assert.Equal(["c1", "c2"], results.Content.Select(b => b.ToolResult.ToolCallId)); // in the order the model asked
        Assert.NotNull(ended.ApprovalWait);
        Assert.Equal(0, ended.Resumes); // resumed after a decision, not after a lost replica
    }

    [Fact]
    public async Task TheWaitForApproval_DoesNotCountAgainstTheRunsTimeout()
    {
        // A 2 s run that waits 3 s for its decision still has its 2 s to finish.
        var agent = Agent.Replace("execution: { timeout: 60s, approval_timeout: 2s }", "execution: { timeout: 2s }", StringComparison.Ordinal);
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}")), FakeGateway.Text("Paid in time."));
        await _client.ExecuteAsync(new ExecuteRequest { Agent = new AgentSource { Inline = new InlineAgent { Content = agent, Format = AgentFormat.Yaml } }, Input = "Go.", RunId = "slow-decision" });

        await Task.Delay(TimeSpan.FromSeconds(3));
        await _client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "slow-decision" });
        var ended = await EndedAsync("slow-decision");

        Assert.Equal((RunStatus.Completed, "Paid in time."), (ended.Status, ended.Answer));
        // Task.Delay's timer and the run's clock differ by up to a millisecond or so: 2.9994 s has been seen.
        Assert.True(ended.ApprovalWait.ToTimeSpan() >= TimeSpan.FromSeconds(2.9), $"waited {ended.ApprovalWait}");
    }

    [Fact]
    public async Task ADeniedCall_NeverRuns_AndTheModelReadsWhyFromWhom()
    {
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}")), FakeGateway.Text("Understood."));
        await Execute("denied");

        await _client.DenyToolCallsAsync(new DenyToolCallsRequest { RunId = "denied", DecidedBy = "ana", Reason = "wrong account" });
        var ended = await EndedAsync("denied");

        Assert.Equal((RunStatus.Completed, "Understood."), (ended.Status, ended.Answer));
        Assert.Empty(_fakes.Tools.Calls);
        var result = _fakes.Gateway.Requests.Last().Messages[^1].Content[0].ToolResult;
        Assert.True(result.IsError);
        Assert.Equal("The call was denied by ana: wrong account Do not make it again unless asked to.", result.Content);
    }

    [Fact]
    public async Task EditedArguments_AreCheckedAgainstTheToolsSchema_ThenRunInsteadOfTheModels()
    {
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}")), FakeGateway.Text("Paid less."));
        await Execute("edited");

        var refused = await Assert.ThrowsAsync<RpcException>(() => _client.ApproveToolCallsAsync(new ApproveToolCallsRequest
        {
            RunId = "edited", ArgumentsJson = { ["c1"] = "{\"amount\":5}" },
        }).ResponseAsync);
        await _client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "edited", ArgumentsJson = { ["c1"] = "{\"expression\":\"5\"}" } });
        var ended = await EndedAsync("edited");

        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Equal("arguments_json[c1]", Assert.Single(RpcDetails.Of<Google.Rpc.BadRequest>(refused)).FieldViolations[0].Field);
        Assert.Equal(RunStatus.Completed, ended.Status);
        Assert.Equal("{\"expression\":\"5\"}", Assert.Single(_fakes.Tools.Calls).Call.ArgumentsJson);
        Assert.StartsWith("A person approved this call with other arguments: {\"expression\":\"5\"}", _fakes.Gateway.Requests.Last().Messages[^1].Content[0].ToolResult.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADecisionOnACallDecidedAlready_OrARunNotWaiting_IsFailedPrecondition()
    {
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}")), FakeGateway.Text("Done."));
        await Execute("decided-twice");
        await _client.DenyToolCallsAsync(new DenyToolCallsRequest { RunId = "decided-twice", ToolCallIds = { "c1" } });

        var again = await Assert.ThrowsAsync<RpcException>(() => _client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "decided-twice", ToolCallIds = { "c1" } }).ResponseAsync);
        await EndedAsync("decided-twice");
        var ended = await Assert.ThrowsAsync<RpcException>(() => _client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "decided-twice" }).ResponseAsync);
        var unknown = await Assert.ThrowsAsync<RpcException>(() => _client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "no-such-run" }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode); // denied already, or no longer waiting: either way not decided twice
        Assert.Equal(StatusCode.FailedPrecondition, ended.StatusCode);
        Assert.Contains("not waiting for approval: it is completed", ended.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Empty(_fakes.Tools.Calls);
    }

    [Fact]
    public async Task ARunNobodyDecidesOn_EndsApprovalExpired_ItsCallNotRun()
    {
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}")));
        await Execute("expired");

        var ended = await EndedAsync("expired", TimeSpan.FromSeconds(10));

        Assert.Equal(RunStatus.ApprovalExpired, ended.Status);
        Assert.Contains("within execution.approval_timeout", ended.Error.Message, StringComparison.Ordinal);
        Assert.Empty(_fakes.Tools.Calls);
        Assert.Equal(RunStatus.ApprovalExpired, _fakes.Memory.Journal("expired")[^1].Ended.Status);
    }

    [Fact]
    public async Task CancelRun_EndsAWaitingRun_WithItsReason()
    {
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}")));
        await Execute("cancelled");

        await _client.CancelRunAsync(new CancelRunRequest { RunId = "cancelled", Reason = "not today" });
        var ended = await EndedAsync("cancelled");

        Assert.Equal((RunStatus.Cancelled, "Cancelled: not today", "not today"), (ended.Status, ended.Error.Message, ended.CancelReason));
        Assert.Empty(_fakes.Tools.Calls);
    }

    [Fact]
    public async Task AConditionOnTheArguments_GuardsOnlyTheCallsItMatches()
    {
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "maybe", "{\"expression\":\"1+1\"}")), FakeGateway.Calls(("c2", "maybe", "{\"expression\":\"999\"}")));

        var events = await StreamAsync("conditional");

        Assert.Equal(["c1"], _fakes.Tools.Calls.Select(c => c.Call.Id));
        var waiting = events[^1].ApprovalRequired.Approvals[0];
        Assert.Equal(("c2", "expression is 999, which matches 9+."), (waiting.ToolCall.Id, waiting.Reason));
    }

    [Fact]
    public async Task TheCallsToWaitOn_AreJournaledWithTheTurn_BeforeItsOtherCallsRun()
    {
        _fakes.Tools.Delay = TimeSpan.FromSeconds(1);
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}"), ("c2", "look", "{\"expression\":\"1\"}")));

        var call = Execute("journaled-first");
        await WaitUntilAsync(() => !_fakes.Tools.Calls.IsEmpty);
        var during = _fakes.Memory.Record("journaled-first");
        var journalDuring = _fakes.Memory.Journal("journaled-first");
        await call;

        // While the unguarded call runs, the run is this replica's (leased) and the guarded call is already known to wait.
        Assert.Equal((RunStatus.Running, ApprovalState.Pending), (during.Status, Assert.Single(during.Approvals).State));
        Assert.NotNull(during.Lease);
        Assert.Equal([RunJournalEntry.StepOneofCase.Began, RunJournalEntry.StepOneofCase.ModelTurn, RunJournalEntry.StepOneofCase.ToolsStarted, RunJournalEntry.StepOneofCase.ApprovalsRequested],
            journalDuring.Select(e => e.StepCase));
        Assert.Equal(RunStatus.AwaitingApproval, _fakes.Memory.Record("journaled-first").Status);
    }

    [Fact]
    public async Task ARunResumedBeforeItStartedWaiting_RunsOnlyItsUnguardedCall_ThenWaits()
    {
        // The replica was lost while the turn's unguarded call ran: the replica that resumes it must not run the guarded one.
        var turn = FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}"), ("c2", "look", "{\"expression\":\"1\"}"));
        turn.Id = "lost-1";
        var requested = new ToolApproval { ToolCall = turn.Content[0].ToolCall, Reason = "Every call of pay needs approval.", State = ApprovalState.Pending, RequestTime = Timestamp.FromDateTime(DateTime.UtcNow) };
        var definition = new ConfigService.ConfigServiceClient(_host.Channel).ResolveAgent(new ResolveAgentRequest
        {
            Source = new AgentSource { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } },
        }).Agent;
        _fakes.Memory.Seed(new Run
        {
            RunId = "lost-before-waiting", Agent = new AgentRef { Name = "guarded", Version = "1.0.0", ContentHash = "h" }, Status = RunStatus.Running, Input = "Go.",
            CreateTime = Timestamp.FromDateTime(DateTime.UtcNow.AddSeconds(-2)), UpdateTime = Timestamp.FromDateTime(DateTime.UtcNow.AddSeconds(-2)), Iterations = 1,
            Usage = new TokenUsage(), Cost = new Cost(), EventsSummary = new RunEventsSummary(), Approvals = { requested },
            Lease = new RunLease { Owner = "a replica that is gone", ExpireTime = Timestamp.FromDateTime(DateTime.UtcNow.AddSeconds(-1)) },
        }, [
            new RunJournalEntry { Sequence = 1, Began = new RunBegan { Agent = definition, Input = new Message { Id = "lost-0", Role = Role.User, Content = { new ContentBlock { Text = "Go." } } } } },
            new RunJournalEntry { Sequence = 2, ModelTurn = new ModelTurn { Iteration = 1, Message = turn } },
            new RunJournalEntry { Sequence = 3, ToolsStarted = new ToolCallsStarted { ToolCallIds = { "c2" } } },
            new RunJournalEntry { Sequence = 4, ApprovalsRequested = new ApprovalsRequested { Approvals = { requested } } },
        ]);

        await WaitUntilAsync(() => _fakes.Memory.Record("lost-before-waiting").Status == RunStatus.AwaitingApproval, TimeSpan.FromSeconds(5));

        Assert.Equal(["c2"], _fakes.Tools.Calls.Select(c => c.Call.Id)); // the unguarded call, sent again marked resumed; never c1
        Assert.True(Assert.Single(_fakes.Tools.Calls).Resumed);
        Assert.Null(_fakes.Memory.Record("lost-before-waiting").Lease);
    }

    [Fact]
    public async Task AWriteThatWouldMakeTheRunWaitFailing_EndsTheRunFailed_ItsGuardedCallNotRun()
    {
        _fakes.Memory.FailUpdate = (request, _) => request.Run.Status == RunStatus.AwaitingApproval ? (StatusCode.InvalidArgument, false) : null;
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}")));

        var run = (await Execute("wait-refused")).Run;
        var ended = await EndedAsync("wait-refused");

        Assert.Equal(RunStatus.Failed, run.Status); // never reported as waiting when it is not
        Assert.Equal(RunStatus.Failed, ended.Status);
        Assert.Empty(_fakes.Tools.Calls);
        Assert.Equal(RunJournalEntry.StepOneofCase.Ended, _fakes.Memory.Journal("wait-refused")[^1].StepCase);
    }

    [Fact]
    public async Task ADenialInOneTurn_IsStillWhatTheModelReads_AfterTheRunWaitsAndResumesAgain()
    {
        _fakes.Gateway.Enqueue(
            FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}")),
            FakeGateway.Calls(("c2", "pay", "{\"expression\":\"5\"}")),
            FakeGateway.Text("Paid five."));
        await Execute("two-waits");

        await _client.DenyToolCallsAsync(new DenyToolCallsRequest { RunId = "two-waits", Reason = "too much" });
        await WaitUntilAsync(() => _fakes.Memory.Record("two-waits") is { Status: RunStatus.AwaitingApproval, Approvals.Count: 2 }, TimeSpan.FromSeconds(5));
        await _client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "two-waits" });
        var ended = await EndedAsync("two-waits");

        Assert.Equal((RunStatus.Completed, "Paid five."), (ended.Status, ended.Answer));
        var last = _fakes.Gateway.Requests.Last().Messages;
        Assert.True(last.Any(m => m.Content.Any(b => b.ToolResult?.ToolCallId == "c1" && b.ToolResult.Content.Contains("denied", StringComparison.Ordinal))),
            string.Join("\n", last) + "\n--\n" + string.Join("\n", _fakes.Memory.Journal("two-waits")));
        Assert.Equal(["c2"], _fakes.Tools.Calls.Select(c => c.Call.Id));
    }

    [Fact]
    public async Task AnApprovalTimeoutLongerThanTheRunsTimeout_EndsApprovalExpired_NotTimedOut()
    {
        var agent = Agent.Replace("execution: { timeout: 60s, approval_timeout: 2s }", "execution: { timeout: 1s, approval_timeout: 2s }", StringComparison.Ordinal);
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "pay", "{\"expression\":\"10\"}")));
        await _client.ExecuteAsync(new ExecuteRequest { Agent = new AgentSource { Inline = new InlineAgent { Content = agent, Format = AgentFormat.Yaml } }, Input = "Go.", RunId = "expired-long" });

        var ended = await EndedAsync("expired-long", TimeSpan.FromSeconds(10));

        Assert.Equal(RunStatus.ApprovalExpired, ended.Status);
    }

    private Task<ExecuteResponse> Execute(string runId) =>
        _client.ExecuteAsync(new ExecuteRequest
        {
            Agent = new AgentSource { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } }, Input = "Go.", RunId = runId,
        }, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync;

    private async Task<List<RunEvent>> StreamAsync(string runId)
    {
        using var call = _client.ExecuteStream(new ExecuteStreamRequest
        {
            Agent = new AgentSource { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } }, Input = "Go.", RunId = runId,
        }, deadline: DateTime.UtcNow.AddSeconds(30));
        return [.. await call.ResponseStream.ReadAllAsync().Select(item => item.Event).ToListAsync()];
    }

    private Task<Run> EndedAsync(string runId, TimeSpan? within = null) => _fakes.Memory.EndedAsync(runId, within);

    private static Task WaitUntilAsync(Func<bool> condition, TimeSpan? within = null) => Eventually.HoldsAsync(condition, within);
}
