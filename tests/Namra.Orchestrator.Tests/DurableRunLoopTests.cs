using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// The edges of durable runs, over fake downstream services in the orchestrator's process (no sockets between
/// services, no provider): lease renewal and loss, writes whose answer was lost, the end retried, a conversation
/// the store refuses, a cancel request on the record, and runs resumed from a journal a lost replica left.
/// </summary>
public sealed class DurableRunLoopTests : IAsyncLifetime
{
    private const string Agent = """
        name: durable
        version: 1.0.0
        llm: { provider: anthropic, model: m, max_tokens: 256 }
        tools:
          - name: act
            type: builtin.calculator
        execution: { timeout: 60s }
        """;

    private readonly FakeDownstream _fakes = new();
    private NamraTestHost _host = null!;
    private AgentService.AgentServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Orchestrator:LeaseDuration"] = "00:00:03",
            ["Namra:Orchestrator:RecoveryInterval"] = "00:00:00.100",
            ["Namra:Orchestrator:CancelPollInterval"] = "00:00:00.100",
            ["Namra:Orchestrator:SaveTimeout"] = "00:00:01",
        }, _fakes.Use);
        _client = new AgentService.AgentServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();

        // Whatever a test did: a record says a run ended only in the write that ends its journal (its conversation saved).
        Assert.All(_fakes.Memory.Writes, write => Assert.Equal(write.Status != RunStatus.Running, write.Ended));
    }

    [Fact]
    public async Task ALongToolCall_RenewsTheLeaseWhileItRuns()
    {
        // On a clock the test moves: the tool takes 4.5 s of it, past the 3 s lease the run's last step gave it.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var fakes = new FakeDownstream();
        fakes.Tools.Clock = time;
        fakes.Tools.Delay = TimeSpan.FromSeconds(4.5);
        fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "act", "{}")), FakeGateway.Text("Done."));
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Orchestrator:LeaseDuration"] = "00:00:03",
            ["Namra:Orchestrator:CancelPollInterval"] = "00:00:00.100",
        }, builder =>
        {
            builder.Services.AddSingleton<TimeProvider>(time);
            fakes.Use(builder);
        });

        var call = new AgentService.AgentServiceClient(host.Channel).ExecuteAsync(new ExecuteRequest
        {
            Agent = new AgentSource { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } }, Input = "Go.", RunId = "renewed",
        }, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync;
        await WaitUntilAsync(() => !fakes.Tools.Calls.IsEmpty);
        for (var second = 1; second <= 4; second++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            // Only renewals keep more than a second of lease left as the clock passes the one the tool call started with.
            await WaitUntilAsync(() => fakes.Memory.Record("renewed").Lease?.ExpireTime.ToDateTime() > time.GetUtcNow().UtcDateTime + TimeSpan.FromSeconds(1));
        }

        time.Advance(TimeSpan.FromSeconds(1));
        var run = (await call).Run;

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.True(fakes.Memory.Updates >= 5, $"{fakes.Memory.Updates} updates: the turn, renewals and the end");
        Assert.Null(fakes.Memory.Record("renewed").Lease); // an ended run is nobody's
    }

    [Fact]
    public async Task AWriteThatLandedButWhoseAnswerWasLost_IsNotWrittenTwice()
    {
        _fakes.Memory.FailUpdate = (_, n) => n == 1 ? (StatusCode.Unavailable, true) : null;
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "act", "{}")), FakeGateway.Text("Done."));

        var run = (await Execute("lost-answer")).Run;
        var ended = await EndedAsync("lost-answer");
        var journal = _fakes.Memory.Journal("lost-answer");

        Assert.Equal(RunStatus.Failed, run.Status); // the caller was told the memory service failed mid-run...
        Assert.Equal(RunStatus.Failed, ended.Status); // ...and the record says the same
        Assert.Equal(Enumerable.Range(1, journal.Count).Select(i => (long)i), journal.Select(e => e.Sequence));
        Assert.Single(journal, e => e.StepCase == RunJournalEntry.StepOneofCase.ModelTurn);
        Assert.Single(journal, e => e.StepCase == RunJournalEntry.StepOneofCase.Ended);
    }

    [Fact]
    public async Task AClaimByAnotherReplica_EndsThisReplicasPart_AndItWritesNoEnd()
    {
        _fakes.Tools.Delay = TimeSpan.FromSeconds(3);
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "act", "{}")));

        var call = Execute("taken-over");
        await WaitUntilAsync(() => !_fakes.Tools.Calls.IsEmpty);
        _fakes.Memory.Change("taken-over", run => run.Lease = new RunLease { Owner = "another replica", ExpireTime = Timestamp.FromDateTime(DateTime.UtcNow.AddMinutes(1)) });
        var failure = await Assert.ThrowsAsync<RpcException>(() => call);

        Assert.Equal(StatusCode.Aborted, failure.StatusCode);
        Assert.Contains("taken over by another replica", failure.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(["c1"], _fakes.Tools.Cancelled);
        Assert.DoesNotContain(_fakes.Memory.Journal("taken-over"), e => e.StepCase == RunJournalEntry.StepOneofCase.Ended);
        Assert.Equal((RunStatus.Running, "another replica"), (_fakes.Memory.Record("taken-over").Status, _fakes.Memory.Record("taken-over").Lease.Owner));
    }

    [Fact]
    public async Task TheEnd_IsRetriedUntilTheStoreTakesIt_AndWrittenOnce()
    {
        var refused = 0;
        _fakes.Memory.FailUpdate = (request, _) => request.Journal.Any(e => e.StepCase == RunJournalEntry.StepOneofCase.Ended) && ++refused <= 3 ? (StatusCode.Unavailable, false) : null;
        _fakes.Gateway.Enqueue(FakeGateway.Text("Answered."));

        var run = (await Execute("saved-late")).Run;
        var ended = await EndedAsync("saved-late");

        Assert.Equal((RunStatus.Completed, "Answered."), (run.Status, run.Answer));
        Assert.Equal((RunStatus.Completed, "Answered.", ""), (ended.Status, ended.Answer, ended.Error?.Message ?? ""));
        Assert.True(refused > 3);
        Assert.Single(_fakes.Memory.Journal("saved-late"), e => e.StepCase == RunJournalEntry.StepOneofCase.Ended);
    }

    [Fact]
    public async Task AConversationTheStoreRefusesForGood_EndsTheRunFailedSayingSo_AndTheRecordIsWritten()
    {
        _fakes.Memory.FailAppend = _ => StatusCode.InvalidArgument;
        _fakes.Gateway.Enqueue(FakeGateway.Text("Answered."));

        var run = (await Execute("not-saved", session: "s-1")).Run;
        var ended = await EndedAsync("not-saved");

        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Contains("could not be saved to the session", run.Error.Message, StringComparison.Ordinal);
        Assert.Equal((RunStatus.Failed, "Answered."), (ended.Status, ended.Answer));
        Assert.Equal(RunStatus.Failed, _fakes.Memory.Journal("not-saved")[^1].Ended.Status);
    }

    [Fact]
    public async Task ACancelRequestOnTheRecord_StopsTheToolInFlight_AndTheReasonIsKept()
    {
        _fakes.Tools.Delay = TimeSpan.FromSeconds(5);
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "act", "{}")));

        var call = Execute("cancelled");
        await WaitUntilAsync(() => !_fakes.Tools.Calls.IsEmpty);
        var requested = DateTime.UtcNow;
        _fakes.Memory.Change("cancelled", run => (run.CancelRequested, run.CancelReason) = (true, "wrong customer"));
        var run = (await call).Run;

        Assert.Equal(RunStatus.Cancelled, run.Status);
        Assert.Equal("Cancelled: wrong customer", run.Error.Message);
        Assert.True(DateTime.UtcNow - requested < TimeSpan.FromSeconds(1), "the cancel took more than a second to reach the tool");
        Assert.Equal(["c1"], _fakes.Tools.Cancelled);
        // The conversation stays whole: the call that did not finish has a result saying so.
        Assert.Contains(_fakes.Memory.Journal("cancelled"), e => e.StepCase == RunJournalEntry.StepOneofCase.ToolsStarted);
    }

    [Fact]
    public async Task ACancelOnThisReplica_StopsTheToolInFlight_AndTheRecordKeepsTheReason()
    {
        _fakes.Tools.Delay = TimeSpan.FromSeconds(5);
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "act", "{}")));

        var call = Execute("cancelled-here");
        await WaitUntilAsync(() => !_fakes.Tools.Calls.IsEmpty);
        await _client.CancelRunAsync(new CancelRunRequest { RunId = "cancelled-here", Reason = "wrong customer" });
        var run = (await call).Run;
        var stored = (await _client.GetRunAsync(new GetRunRequest { RunId = "cancelled-here" })).Run;

        Assert.Equal((RunStatus.Cancelled, "Cancelled: wrong customer"), (run.Status, run.Error.Message));
        Assert.Equal((true, "wrong customer"), (run.CancelRequested, run.CancelReason));
        Assert.Equal((RunStatus.Cancelled, true, "wrong customer"), (stored.Status, stored.CancelRequested, stored.CancelReason));
        Assert.Equal(["c1"], _fakes.Tools.Cancelled);
    }

    [Fact]
    public async Task TheMemoryServiceDown_WhileAToolRuns_TheRunGoesOn_AndEnds()
    {
        // The watcher reads the record for cancel requests every 0.1 s: failed reads are tried again, never the run's end.
        _fakes.Tools.Delay = TimeSpan.FromSeconds(1.5);
        _fakes.Gateway.Enqueue(FakeGateway.Calls(("c1", "act", "{}")), FakeGateway.Text("Done."));

        var call = Execute("store-down");
        await WaitUntilAsync(() => !_fakes.Tools.Calls.IsEmpty);
        _fakes.Memory.FailGet = StatusCode.Unavailable;
        await WaitUntilAsync(() => _fakes.Memory.FailedGets >= 3);
        _fakes.Memory.FailGet = null;
        var run = (await call).Run;

        Assert.Equal((RunStatus.Completed, "Done."), (run.Status, run.Answer));
        Assert.Empty(_fakes.Tools.Cancelled);
    }

    [Fact]
    public async Task AResumedRun_ReplaysItsJournal_AndRunsOnlyTheCallInFlight()
    {
        _fakes.Tools.Idempotent = false;
        _fakes.Gateway.Enqueue(FakeGateway.Text("All done."));
        Seed("resumed", DateTime.UtcNow.AddSeconds(-5), [
            new RunJournalEntry { ModelTurn = new ModelTurn { Iteration = 1, Message = WithId(FakeGateway.Calls(("c1", "act", "{\"n\":1}"), ("c2", "act", "{\"n\":2}")), "resumed-1") } },
            new RunJournalEntry { ToolsStarted = new ToolCallsStarted { ToolCallIds = { "c1", "c2" } } },
            new RunJournalEntry { ToolFinished = new ToolResult { ToolCallId = "c1", Content = "done c1 (before the crash)" } },
        ]);

        var run = await EndedAsync("resumed");
        var call = Assert.Single(_fakes.Tools.Calls);
        var request = Assert.Single(_fakes.Gateway.Requests);
        var results = request.Messages[^1].Content.Select(b => b.ToolResult.Content).ToList();

        Assert.Equal((RunStatus.Completed, "All done.", 1, 2), (run.Status, run.Answer, run.Resumes, run.Iterations));
        Assert.Equal(("c2", true), (call.Call.Id, call.Resumed));
        Assert.Equal(["done c1 (before the crash)", "done c2 (resumed)"], results);
        Assert.Equal(["resumed-0", "resumed-1"], request.Messages.Take(2).Select(m => m.Id));
        Assert.Equal(
            [RunJournalEntry.StepOneofCase.Began, RunJournalEntry.StepOneofCase.ModelTurn, RunJournalEntry.StepOneofCase.ToolsStarted, RunJournalEntry.StepOneofCase.ToolFinished,
             RunJournalEntry.StepOneofCase.Resumed, RunJournalEntry.StepOneofCase.ToolFinished, RunJournalEntry.StepOneofCase.ModelTurn, RunJournalEntry.StepOneofCase.Ended],
            _fakes.Memory.Journal("resumed").Select(e => e.StepCase));
        Assert.Equal(["c2"], _fakes.Memory.Journal("resumed")[4].Resumed.InFlightToolCallIds);
    }

    [Fact]
    public async Task ARunFoundPastItsDeadline_EndsTimedOut_WithoutAskingTheModel()
    {
        Seed("too-late", DateTime.UtcNow.AddMinutes(-2), []);

        var run = await EndedAsync("too-late");

        Assert.Equal(RunStatus.TimedOut, run.Status);
        Assert.Contains("past its deadline", run.Error.Message, StringComparison.Ordinal);
        Assert.Empty(_fakes.Gateway.Requests);
    }

    [Fact]
    public async Task ARunWithNoJournal_EndsFailedSayingItCannotBeResumed()
    {
        _fakes.Memory.Seed(new Run
        {
            RunId = "no-journal", Agent = new AgentRef { Name = "durable", Version = "1.0.0" }, Status = RunStatus.Running, Input = "hi",
            CreateTime = Timestamp.FromDateTime(DateTime.UtcNow.AddSeconds(-5)), UpdateTime = Timestamp.FromDateTime(DateTime.UtcNow.AddSeconds(-5)),
        }, []);

        var run = await EndedAsync("no-journal");

        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Contains("no journal to resume from", run.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ATurnsToolResults_FitTheMessageLimit_SoTheSessionKeepsWhatTheModelRead()
    {
        // Eight results of 400 KB each (non-ASCII text: two bytes a character), 3.2 MB together.
        var fakes = new FakeDownstream();
        await using var host = await NamraTestHost.StartAsync("all", configure: builder => fakes.Use(builder, fakeMemory: false));
        fakes.Tools.Output = request => new string('é', 200_000);
        fakes.Gateway.Enqueue(FakeGateway.Calls([.. Enumerable.Range(1, 8).Select(i => ($"c{i}", "act", $"{{\"n\":{i}}}"))]), FakeGateway.Text("Read them."));

        var run = (await new AgentService.AgentServiceClient(host.Channel).ExecuteAsync(new ExecuteRequest
        {
            Agent = new AgentSource { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } },
            Input = "Read eight big pages.",
            SessionId = "big-pages",
        })).Run;
        var sent = fakes.Gateway.Requests.Last().Messages[^1];
        var history = await new MemoryService.MemoryServiceClient(host.Channel).GetHistoryAsync(new GetHistoryRequest { SessionId = "big-pages" });

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.True(sent.CalculateSize() <= Contracts.MessageLimits.MaxMessageBytes, $"{sent.CalculateSize():N0} bytes");
        Assert.All(sent.Content, block => Assert.Contains("[cut to fit", block.ToolResult.Content, StringComparison.Ordinal));
        Assert.Equal(sent, history.Messages[2]); // the session keeps what the model read
    }

    private Task<ExecuteResponse> Execute(string runId, string session = "") =>
        _client.ExecuteAsync(new ExecuteRequest
        {
            Agent = new AgentSource { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } },
            Input = "Go.",
            RunId = runId,
            SessionId = session,
        }, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync;

    // A run as a lost replica left it: its first step, then the given ones, its lease lapsed.
    private void Seed(string runId, DateTime created, IEnumerable<RunJournalEntry> steps)
    {
        var definition = new AgentDefinition
        {
            Name = "durable", Version = "1.0.0",
            Llm = new LlmConfig { Provider = LlmProvider.Anthropic, Model = "m", MaxTokens = 256 },
            Tools = { new ToolConfig { Name = "act", Type = ToolType.BuiltinCalculator, Calculator = new CalculatorToolSettings { MaxExpressionLength = 1000 } } },
            Execution = new ExecutionConfig { Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(60)), MaxIterations = 10 },
        };
        var journal = new List<RunJournalEntry> { new() { Began = new RunBegan { Agent = definition, Input = WithId(new Message { Role = Role.User, Content = { new ContentBlock { Text = "Go." } } }, $"{runId}-0") } } };
        journal.AddRange(steps);
        for (var i = 0; i < journal.Count; i++)
        {
            journal[i].Sequence = i + 1;
        }

        _fakes.Memory.Seed(new Run
        {
            RunId = runId, Agent = new AgentRef { Name = "durable", Version = "1.0.0", ContentHash = "h" }, Status = RunStatus.Running, Input = "Go.",
            CreateTime = Timestamp.FromDateTime(created), UpdateTime = Timestamp.FromDateTime(created),
            Iterations = steps.Any() ? 1 : 0, Usage = new TokenUsage(), Cost = new Cost(), EventsSummary = new RunEventsSummary(),
            Lease = new RunLease { Owner = "a replica that is gone", ExpireTime = Timestamp.FromDateTime(DateTime.UtcNow.AddSeconds(-1)) },
        }, journal);
    }

    private static Message WithId(Message message, string id)
    {
        message.Id = id;
        return message;
    }

    private Task<Run> EndedAsync(string runId) => _fakes.Memory.EndedAsync(runId);

    private static Task WaitUntilAsync(Func<bool> condition) => Eventually.HoldsAsync(condition);
}
