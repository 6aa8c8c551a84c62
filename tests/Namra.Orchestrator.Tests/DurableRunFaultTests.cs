using Namra.Testing.Telemetry;
using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Containers;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// The fault suite of durable runs: two orchestrator replicas (separate processes, each with its own config, gateway
/// and tool executor) share one memory service over real sockets, on PostgreSQL, Redis or SQLite. A replica is
/// SIGKILLed in the middle of a model call or of tool calls, the memory service is frozen as a run saves its end,
/// PostgreSQL is paused; each run still ends in a true state, and side effects are counted.
/// </summary>
public sealed class DurableRunFaultTests : IAsyncLifetime
{
    private const string Lease = "00:00:02";
    private FakeProviderServer _anthropic = null!;
    private LocalServer? _store;
    private readonly List<ServerProcess> _processes = [];
    private readonly Dictionary<string, GrpcChannel> _channels = [];
    private string _memoryAddress = "";

    public async ValueTask InitializeAsync() => _anthropic = await FakeProviderServer.StartAsync();

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }

        foreach (var process in _processes)
        {
            process.Dispose();
        }

        await _anthropic.DisposeAsync();
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }

    [Theory]
    [InlineData("postgres")]
    [InlineData("redis")]
    [InlineData("sqlite")]
    public async Task AReplicaKilledDuringAModelCall_TheOtherResumesTheRunFromItsJournal(string store)
    {
        var (first, second) = await StartAsync(store);
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Thinking")], HoldAfter: 2), AnthropicWire.TextTurn(30, 4, "Resumed and answered."));

        var call = Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(Agent()), Input = "Answer, please.", RunId = "killed-mid-model" }).ResponseAsync;
        await _anthropic.WaitForRequestsAsync(1, TimeSpan.FromSeconds(20));
        first.Kill();
        var killed = Stopwatch.StartNew();
        await Assert.ThrowsAsync<RpcException>(() => call);

        var run = await EndedAsync(second, "killed-mid-model");
        var journal = await JournalAsync(second, "killed-mid-model");

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal("Resumed and answered.", run.Answer);
        Assert.Equal(1, run.Resumes);
        Assert.True(killed.Elapsed < TimeSpan.FromSeconds(10), $"resumed and completed {killed.Elapsed.TotalSeconds:0.0} s after the kill");
        Assert.Equal(
            [RunJournalEntry.StepOneofCase.Began, RunJournalEntry.StepOneofCase.Resumed, RunJournalEntry.StepOneofCase.ModelTurn, RunJournalEntry.StepOneofCase.Ended],
            journal.Select(e => e.StepCase));
        Assert.Equal(journal.Count, run.JournalLength);
        Assert.Equal(2, _anthropic.Requests.Count); // the turn that never finished was asked again; nothing else
        using var http = new HttpClient { BaseAddress = second.HttpAddress };
        Assert.Equal(1, new PrometheusScrape(await http.GetStringAsync(new Uri("/metrics", UriKind.Relative))).Value("namra_runs_recovered_total", ("agent", "durable")));
    }

    [Theory]
    [InlineData("postgres")]
    [InlineData("redis")]
    public async Task ARunWaitingForApproval_ItsReplicaKilled_TheApprovalSentToTheOtherResumesIt_AndItCompletes(string store)
    {
        await using var web = await StockSite.StartAsync(hang: false);
        var (first, second) = await StartAsync(store);
        _anthropic.Enqueue(
            new SseReply([AnthropicWire.MessageStart(),
                .. AnthropicWire.ToolUseBlock(0, "toolu_effect", "web", $"{{\"url\":\"{web.BaseUrl}effect\",\"method\":\"POST\",\"body\":\"charge 10\"}}"),
                .. AnthropicWire.ToolUseBlock(1, "toolu_read", "web", $"{{\"url\":\"{web.BaseUrl}read\"}}"),
                AnthropicWire.MessageDelta("tool_use", 30), AnthropicWire.MessageStop()]),
            AnthropicWire.TextTurn(80, 6, "Charged once; stock is 7."));

        var waiting = (await Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(Agent(GuardedWebTool)), Input = "Charge and check stock.", RunId = "approved-elsewhere" })).Run;
        first.Kill();
        var decided = (await Client(second).ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "approved-elsewhere", DecidedBy = "ops", Reason = "invoice 42" })).Run;
        var run = await EndedAsync(second, "approved-elsewhere");
        var journal = await JournalAsync(second, "approved-elsewhere");

        Assert.Equal(RunStatus.AwaitingApproval, waiting.Status);
        Assert.Equal(("toolu_effect", "method is POST, not one of GET, HEAD."), (Assert.Single(waiting.Approvals).ToolCall.Id, waiting.Approvals[0].Reason));
        Assert.Equal((ApprovalState.Approved, "ops"), (decided.Approvals[0].State, decided.Approvals[0].DecidedBy));
        Assert.Equal((RunStatus.Completed, "Charged once; stock is 7."), (run.Status, run.Answer));
        Assert.Equal((1, 1), (web.Effects, web.Reads)); // the read ran before the wait, the charge after the approval: each once
        Assert.Equal(0, run.Resumes); // resumed after a decision, not after a lost replica
        Assert.Equal(
            [RunJournalEntry.StepOneofCase.Began, RunJournalEntry.StepOneofCase.ModelTurn, RunJournalEntry.StepOneofCase.ToolsStarted, RunJournalEntry.StepOneofCase.ApprovalsRequested,
             RunJournalEntry.StepOneofCase.ToolFinished, RunJournalEntry.StepOneofCase.ApprovalsDecided, RunJournalEntry.StepOneofCase.Resumed,
             RunJournalEntry.StepOneofCase.ToolsStarted, RunJournalEntry.StepOneofCase.ToolFinished, RunJournalEntry.StepOneofCase.ModelTurn, RunJournalEntry.StepOneofCase.Ended],
            journal.Select(e => e.StepCase));
        Assert.Equal(2, _anthropic.Requests.Count);
    }

    [Fact]
    public async Task AnAgentThatSaysOnInterruptFail_EndsFailedSayingSo_AndIsNotAskedAgain()
    {
        var (first, second) = await StartAsync("postgres");
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Thinking")], HoldAfter: 2));

        var call = Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(Agent().Replace("timeout: 60s", "timeout: 60s, on_interrupt: fail", StringComparison.Ordinal)), Input = "Answer.", RunId = "not-resumed" }).ResponseAsync;
        await _anthropic.WaitForRequestsAsync(1, TimeSpan.FromSeconds(20));
        first.Kill();
        await Assert.ThrowsAsync<RpcException>(() => call);
        var run = await EndedAsync(second, "not-resumed");

        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Contains("execution.on_interrupt is fail", run.Error.Message, StringComparison.Ordinal);
        Assert.Equal((int)StatusCode.Aborted, run.Error.Code);
        Assert.Single(_anthropic.Requests);
    }

    [Fact]
    public async Task AReplicaKilledDuringToolCalls_ANonIdempotentCallHappensAtMostOnce_AnIdempotentOneRunsAgain()
    {
        await using var web = await StockSite.StartAsync();
        var (first, second) = await StartAsync("postgres");
        _anthropic.Enqueue(
            new SseReply([AnthropicWire.MessageStart(),
                .. AnthropicWire.ToolUseBlock(0, "toolu_effect", "web", $"{{\"url\":\"{web.BaseUrl}effect\",\"method\":\"POST\",\"body\":\"charge 10\"}}"),
                .. AnthropicWire.ToolUseBlock(1, "toolu_read", "web", $"{{\"url\":\"{web.BaseUrl}read\"}}"),
                AnthropicWire.MessageDelta("tool_use", 30), AnthropicWire.MessageStop()]),
            AnthropicWire.TextTurn(80, 6, "Charged once, I hope; stock is 7."));

        var call = Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(Agent(WebTool)), Input = "Charge and check stock.", RunId = "killed-mid-tools" }).ResponseAsync;
        await WaitUntilAsync(() => web.Effects == 1 && web.Reads == 1, "both tool calls in flight");
        first.Kill();
        await Assert.ThrowsAsync<RpcException>(() => call);

        var run = await EndedAsync(second, "killed-mid-tools");
        var results = (await JournalAsync(second, "killed-mid-tools")).Where(e => e.StepCase == RunJournalEntry.StepOneofCase.ToolFinished).ToDictionary(e => e.ToolFinished.ToolCallId, e => e.ToolFinished);

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal(1, web.Effects); // not sent again: its outcome is unknown, and the model is told so
        Assert.Equal(2, web.Reads); // a GET is idempotent: sent again
        Assert.Contains("outcome is unknown", results["toolu_effect"].Content, StringComparison.Ordinal);
        Assert.Contains("stock: 7", results["toolu_read"].Content, StringComparison.Ordinal);
        Assert.Contains("outcome is unknown", _anthropic.Requests[^1].Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AReplicaKilledDuringAReadOnlyTurn_TheTurnIsNotAskedAgain_ItsReadRunsAgain()
    {
        await using var web = await StockSite.StartAsync();
        var (first, second) = await StartAsync("postgres");
        _anthropic.Enqueue(
            new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.ToolUseBlock(0, "toolu_read", "web", $"{{\"url\":\"{web.BaseUrl}read\"}}"),
                AnthropicWire.MessageDelta("tool_use", 30), AnthropicWire.MessageStop()]),
            AnthropicWire.TextTurn(80, 6, "Stock is 7."));

        var call = Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(Agent(ReadOnlyWebTool)), Input = "Check stock.", RunId = "killed-mid-read" }).ResponseAsync;
        await WaitUntilAsync(() => web.Reads == 1, "the read in flight");
        first.Kill();
        await Assert.ThrowsAsync<RpcException>(() => call);
        var run = await EndedAsync(second, "killed-mid-read");

        Assert.Equal((RunStatus.Completed, "Stock is 7."), (run.Status, run.Answer));
        Assert.Equal(2, web.Reads);
        Assert.Equal(2, _anthropic.Requests.Count); // the journaled turn was replayed, not asked again
        Assert.Contains("stock: 7", _anthropic.Requests[^1].Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AReplicaStopped_HandsItsRunOverBeforeItExits_AndTheOtherGoesOnAtOnce()
    {
        await using var web = await StockSite.StartAsync();
        // A lease of a minute: without the hand-over, the run would wait that long for another replica.
        var (first, second, _) = await StartWithMemoryAsync("postgres", new Dictionary<string, string>
        {
            ["Namra__Host__ShutdownTimeout"] = "00:00:04",
            ["Namra__Orchestrator__LeaseDuration"] = "00:01:00",
        });
        _anthropic.Enqueue(
            new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.ToolUseBlock(0, "toolu_read", "web", $"{{\"url\":\"{web.BaseUrl}read\"}}"),
                AnthropicWire.MessageDelta("tool_use", 30), AnthropicWire.MessageStop()]),
            AnthropicWire.TextTurn(80, 6, "Stock is 7."));

        var call = Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(Agent(ReadOnlyWebTool)), Input = "Check stock.", RunId = "handed-over" }).ResponseAsync;
        await WaitUntilAsync(() => web.Reads == 1, "the read in flight");
        var stopping = Stopwatch.StartNew();
        first.Terminate();
        var failure = await Assert.ThrowsAsync<RpcException>(() => call);
        var run = await EndedAsync(second, "handed-over");

        Assert.Equal(StatusCode.Unavailable, failure.StatusCode);
        Assert.Contains("goes on on another replica", failure.Status.Detail, StringComparison.Ordinal);
        Assert.Equal((RunStatus.Completed, "Stock is 7.", 1), (run.Status, run.Answer, run.Resumes));
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(10), $"completed {stopping.Elapsed.TotalSeconds:0.0} s after SIGTERM");
        Assert.True(first.WaitForExit(TimeSpan.FromSeconds(10)), "the stopped replica did not exit");
        Assert.Equal(2, web.Reads);
    }

    [Fact]
    public async Task CancelThroughTheOtherReplica_StopsARunningToolWithinASecond_AndKeepsTheReason()
    {
        // Times are measured from CancelRun's answer: from when the request is recorded to when the other replica acts on it.
        var clock = Stopwatch.StartNew();
        var toolStopped = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        var toolRunning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var web = await LocalWebServer.StartAsync(app => app.MapGet("/slow", async (HttpContext context) =>
        {
            toolRunning.TrySetResult();
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(8), context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                toolStopped.TrySetResult(clock.Elapsed);
            }
        }));
        var (first, second) = await StartAsync("postgres");
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.ToolUseBlock(0, "toolu_slow", "web", $"{{\"url\":\"{web.BaseUrl}slow\"}}"),
            AnthropicWire.MessageDelta("tool_use", 20), AnthropicWire.MessageStop()]));

        using var call = Client(first).ExecuteStream(new ExecuteStreamRequest { Agent = Inline(Agent(WebTool)), Input = "Fetch the slow page.", RunId = "cancelled-elsewhere" });
        var events = new List<RunEvent>();
        var cancelled = TimeSpan.Zero;
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            events.Add(item.Event);
            if (item.Event.EventCase == RunEvent.EventOneofCase.ToolCall)
            {
                await toolRunning.Task.WaitAsync(TimeSpan.FromSeconds(10)); // the tool's request reached the page
                await Client(second).CancelRunAsync(new CancelRunRequest { RunId = "cancelled-elsewhere", Reason = "the user changed their mind" });
                cancelled = clock.Elapsed;
            }
        }

        var ended = clock.Elapsed - cancelled;
        var stoppedAfter = await toolStopped.Task.WaitAsync(TimeSpan.FromSeconds(5)) - cancelled;
        var record = (await Client(second).GetRunAsync(new GetRunRequest { RunId = "cancelled-elsewhere" })).Run;

        Assert.Equal(RunStatus.Cancelled, events[^1].RunFailed.Status);
        Assert.Contains("the user changed their mind", events[^1].RunFailed.Error.Message, StringComparison.Ordinal);
        Assert.True(ended < TimeSpan.FromSeconds(1.5), $"the run ended {ended.TotalMilliseconds:0} ms after CancelRun");
        Assert.True(stoppedAfter < TimeSpan.FromSeconds(1.5), $"the tool's request was dropped {stoppedAfter.TotalMilliseconds:0} ms after CancelRun");
        Assert.Equal((RunStatus.Cancelled, "the user changed their mind"), (record.Status, record.CancelReason));
    }

    [Fact]
    public async Task MemoryFrozenAsTheRunSavesItsEnd_TheCallerGetsTheAnswer_AndTheRecordFollowsWhenMemoryReturns()
    {
        var (first, second, memory) = await StartWithMemoryAsync("postgres", new Dictionary<string, string>
        {
            ["Namra__Orchestrator__SaveTimeout"] = "00:00:01",
            ["Namra__Orchestrator__LeaseDuration"] = "00:00:05",
        });
        _anthropic.Responder = _ =>
        {
            memory.Pause(); // the model answers, and the memory service stops answering
            return AnthropicWire.TextTurn(30, 4, "Saved later.");
        };

        var answered = await Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(Agent()), Input = "Answer.", RunId = "saved-later" },
            deadline: DateTime.UtcNow.AddSeconds(30));
        await Task.Delay(500);
        memory.Resume();
        var returned = Stopwatch.StartNew();
        var run = await EndedAsync(second, "saved-later");

        Assert.Equal((RunStatus.Completed, "Saved later."), (answered.Run.Status, answered.Run.Answer));
        Assert.Equal((RunStatus.Completed, "Saved later.", 0), (run.Status, run.Answer, run.Resumes));
        Assert.True(returned.Elapsed < TimeSpan.FromSeconds(5), $"the record was written {returned.Elapsed.TotalSeconds:0.0} s after memory returned");
        Assert.Equal(RunJournalEntry.StepOneofCase.Ended, (await JournalAsync(second, "saved-later"))[^1].StepCase);
        Assert.Single(_anthropic.Requests);
    }

    [Fact]
    public async Task APausedPostgres_FailsTheRunWithinTheStoreTimeout_AsADeadlineNamingTheStore()
    {
        var (first, _, _) = await StartWithMemoryAsync("postgres", new Dictionary<string, string>(), new Dictionary<string, string> { ["Namra__Memory__StoreTimeout"] = "00:00:02" });
        _anthropic.DefaultReply = AnthropicWire.TextTurn(30, 4, "Fine.");
        await Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(Agent()), Input = "Warm up." }); // connections are pooled
        await _store!.PauseAsync();
        try
        {
            var timer = Stopwatch.StartNew();
            var failure = await Assert.ThrowsAsync<RpcException>(() => Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(Agent()), Input = "Now?" },
                deadline: DateTime.UtcNow.AddSeconds(60)).ResponseAsync);

            Assert.Equal(StatusCode.DeadlineExceeded, failure.StatusCode);
            Assert.Contains("postgres store", failure.Status.Detail, StringComparison.Ordinal);
            Assert.True(timer.Elapsed < TimeSpan.FromSeconds(3.5), $"failed after {timer.Elapsed.TotalSeconds:0.0} s with a store timeout of 2 s: {failure.Status.Detail}");
        }
        finally
        {
            await _store.UnpauseAsync();
        }
    }

    private const string GuardedWebTool = """
        tools:
          - name: web
            type: builtin.http
            config: { allow_private_networks: true, allowed_methods: [GET, POST] }
            approval:
              when:
                - { argument: method, not_one_of: [GET, HEAD] }
        """;

    private const string WebTool = """
        tools:
          - name: web
            type: builtin.http
            config: { allow_private_networks: true, allowed_methods: [GET, POST] }
        """;

    private const string ReadOnlyWebTool = """
        tools:
          - name: web
            type: builtin.http
            config: { allow_private_networks: true, allowed_methods: [GET] }
        """;

    [Fact]
    public async Task AReplicaKilledWhileAChildRunWorks_TheOtherResumesBoth_AndTheParentGetsTheChildsAnswerOnce()
    {
        var agents = Directory.CreateTempSubdirectory("namra-durable-team-").FullName;
        await File.WriteAllTextAsync(Path.Combine(agents, "helper.yaml"), Agent().Replace("name: durable", "name: helper", StringComparison.Ordinal));
        var (first, second, _) = await StartWithMemoryAsync("sqlite", new Dictionary<string, string> { ["Namra__Config__AgentsPath"] = agents });
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Working")], HoldAfter: 2), AnthropicWire.TextTurn(30, 4, "The helper's answer."));
        var parent = """
            name: lead
            version: 1.0.0
            llm:
              provider: scripted
              model: scripted
              script:
                - tool_calls: [ { name: ask, id: call_help, arguments: { input: "Help, please." } } ]
                - text: "The lead heard back."
            tools:
              - { name: ask, type: agent, config: { agent: helper@1.0.0 } }
            execution: { timeout: 60s }
            """;

        var call = Client(first).ExecuteAsync(new ExecuteRequest { Agent = Inline(parent), Input = "Go.", RunId = "killed-team" }).ResponseAsync;
        await _anthropic.WaitForRequestsAsync(1, TimeSpan.FromSeconds(20)); // the child's model call is in flight
        first.Kill();
        await Assert.ThrowsAsync<RpcException>(() => call);

        var lead = await EndedAsync(second, "killed-team");
        var helper = await EndedAsync(second, "killed-team.call_help");
        var journal = await JournalAsync(second, "killed-team");

        Assert.Equal((RunStatus.Completed, "The lead heard back."), (lead.Status, lead.Answer));
        Assert.Equal((RunStatus.Completed, "The helper's answer.", 1), (helper.Status, helper.Answer, helper.Resumes));
        Assert.Equal("The helper's answer.", journal.Single(e => e.StepCase == RunJournalEntry.StepOneofCase.ToolFinished).ToolFinished.Content);
        Assert.Equal(2, _anthropic.Requests.Count); // the child's lost turn, asked again once; no second child
        Assert.Equal(helper.Ledger.Count, lead.Ledger.Count(a => a.RunId == helper.RunId));
        Directory.Delete(agents, recursive: true);
    }

    [Fact]
    public async Task AReplicaKilledDuringAModelCall_ItsTenantQuotaReservationLapsesAfterTheDeadline_AndNoLongerHoldsTheTenantBack()
    {
        const string key = "nk_acme_0411";
        await using var limits = await LocalContainers.StartRedisAsync();
        var folder = Directory.CreateTempSubdirectory("namra-durable-quota-").FullName;
        var access = Path.Combine(folder, "access.json");
        await File.WriteAllTextAsync(access, $$"""
            { "tenants": { "acme": { "quota": { "tokens_per_day": 1000000 } } },
              "keys": [ { "id": "acme", "sha256": "{{Access.AccessKeys.Hash(key)}}", "tenant": "acme", "roles": ["runner"] } ] }
            """);
        var (first, second, _) = await StartWithMemoryAsync("sqlite", new Dictionary<string, string>
        {
            ["Namra__Orchestrator__ApiKeysFile"] = access,
            ["Namra__Orchestrator__LimitsRedis"] = limits.ConnectionString,
            ["Namra__Orchestrator__QuotaReservationGrace"] = "00:00:01",
        });
        var bearer = KeyedServers.Bearer(key);
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Thinking")], HoldAfter: 2), AnthropicWire.TextTurn(30, 4, "Resumed and answered."));
        var agent = Inline(Agent().Replace("timeout: 60s", "timeout: 8s", StringComparison.Ordinal));
        async Task<UsagePeriod> TodayAsync() => (await Client(second).GetUsageAsync(new GetUsageRequest(), bearer)).Periods.Single(p => p.Period == "day");

        var call = Client(first).ExecuteAsync(new ExecuteRequest { Agent = agent, Input = "Answer, please.", RunId = "quota-killed" }, bearer).ResponseAsync;
        await _anthropic.WaitForRequestsAsync(1, TimeSpan.FromSeconds(20));
        var duringTheCall = await TodayAsync();
        first.Kill();
        await Assert.ThrowsAsync<RpcException>(() => call);
        var run = await EndedAsync(second, "quota-killed", bearer);

        var afterTheResume = await TodayAsync(); // the killed replica's reservation is still held: its call's deadline has not passed
        var lapsesAt = run.CreateTime.ToDateTimeOffset() + TimeSpan.FromSeconds(8 + 1);
        await Task.Delay(lapsesAt - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(200));
        var afterTheLapse = await TodayAsync();

        Assert.Equal((RunStatus.Completed, 1), (run.Status, run.Resumes));
        Assert.True(duringTheCall.ReservedTokens > 0, "no reservation for the call in flight");
        Assert.Equal(duringTheCall.ReservedTokens, afterTheResume.ReservedTokens);
        Assert.Equal(34, afterTheResume.Tokens); // the resumed call, settled
        Assert.Equal(0, afterTheLapse.ReservedTokens); // it no longer holds the tenant back...
        Assert.Equal(34 + duringTheCall.ReservedTokens, afterTheLapse.Tokens); // ...and counts as spent at its worst case
        Directory.Delete(folder, recursive: true);
    }

    private static string Agent(string tools = "") => $$"""
        name: durable
        version: 1.0.0
        llm: { provider: anthropic, model: {{AnthropicWire.Model}}, max_tokens: 256 }
        execution: { timeout: 60s }
        {{tools}}
        """;

    private static AgentSource Inline(string yaml) => new() { Inline = new InlineAgent { Content = yaml, Format = AgentFormat.Yaml } };

    private AgentService.AgentServiceClient Client(ServerProcess replica) => new(Channel(replica.GrpcAddress));

    private GrpcChannel Channel(string address)
    {
        lock (_channels)
        {
            return _channels.TryGetValue(address, out var channel) ? channel : _channels[address] = GrpcChannel.ForAddress(address);
        }
    }

    private async Task<(ServerProcess First, ServerProcess Second)> StartAsync(string store)
    {
        var (first, second, _) = await StartWithMemoryAsync(store, new Dictionary<string, string>());
        return (first, second);
    }

    // The memory service on the store, and two replicas that share it.
    private async Task<(ServerProcess First, ServerProcess Second, ServerProcess Memory)> StartWithMemoryAsync(string store, Dictionary<string, string> replicaSettings,
        Dictionary<string, string>? memorySettings = null)
    {
        var storage = new Dictionary<string, string>(memorySettings ?? []) { ["Namra__Memory__DefaultStore"] = store };
        switch (store)
        {
            case "postgres":
                _store = await LocalContainers.StartPostgresAsync();
                storage["Namra__Memory__PostgresConnectionString"] = _store.ConnectionString;
                break;
            case "redis":
                _store = await LocalContainers.StartRedisAsync();
                storage["Namra__Memory__RedisConnectionString"] = _store.ConnectionString;
                break;
            default:
                storage["Namra__Memory__SqlitePath"] = Path.Combine(Directory.CreateTempSubdirectory("namra-durable-").FullName, "memory.db");
                break;
        }

        var memory = Started(ServerProcess.Start("memory", out var memoryAddress, storage));
        _memoryAddress = memoryAddress;
        var settings = new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = "sk-ant-test",
            ["ANTHROPIC_BASE_URL"] = _anthropic.BaseUrl.ToString(),
            ["Namra__Services__Memory"] = memoryAddress,
            ["Namra__Orchestrator__TrustInlineAgents"] = "true",
            ["Namra__Orchestrator__LeaseDuration"] = Lease,
            ["Namra__Orchestrator__RecoveryInterval"] = "00:00:00.300",
        };
        foreach (var (name, value) in replicaSettings)
        {
            settings[name] = value;
        }

        const string roles = "orchestrator,config,llm-gateway,tool-executor";
        return (Started(ServerProcess.Start(roles, settings)), Started(ServerProcess.Start(roles, settings)), memory);
    }

    private ServerProcess Started(ServerProcess process)
    {
        _processes.Add(process);
        return process;
    }

    // The run's record once it has ended, read through the given replica (with a key, where the replicas require one).
    private async Task<Run> EndedAsync(ServerProcess replica, string runId, Metadata? headers = null)
    {
        var client = Client(replica);
        for (var i = 0; i < 150; i++)
        {
            try
            {
                var run = (await client.GetRunAsync(new GetRunRequest { RunId = runId }, headers, deadline: DateTime.UtcNow.AddSeconds(5))).Run;
                if (run.Status is not (RunStatus.Running or RunStatus.Pending or RunStatus.AwaitingApproval))
                {
                    return run;
                }
            }
            catch (RpcException exception) when (exception.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                // the memory service is coming back
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"Run {runId} did not end within 15 s.");
    }

    private async Task<List<RunJournalEntry>> JournalAsync(ServerProcess replica, string runId)
    {
        var run = (await Client(replica).GetRunAsync(new GetRunRequest { RunId = runId })).Run;
        Assert.True(run.JournalLength > 0);
        return [.. (await new MemoryService.MemoryServiceClient(Channel(_memoryAddress)).GetRunJournalAsync(new GetRunJournalRequest { RunId = runId })).Entries];
    }

    private static Task WaitUntilAsync(Func<bool> condition, string what) => Eventually.HoldsAsync(condition, TimeSpan.FromSeconds(15), what);

    /// <summary>
    /// A site the agents' http tool calls: <c>POST /effect</c> counts a side effect and never answers; <c>GET /read</c>
    /// counts a read, and the first one never answers (it is in flight when a replica dies).
    /// </summary>
    private sealed class StockSite : IAsyncDisposable
    {
        private LocalWebServer _server = null!;
        private int _effects;
        private int _reads;

        public Uri BaseUrl => _server.BaseUrl;

        public int Effects => Volatile.Read(ref _effects);

        public int Reads => Volatile.Read(ref _reads);

        // With hang, the first charge and the first read never answer: the calls are in flight when a replica is killed.
        public static async Task<StockSite> StartAsync(bool hang = true)
        {
            var site = new StockSite();
            site._server = await LocalWebServer.StartAsync(app =>
            {
                app.MapPost("/effect", async (HttpContext context) =>
                {
                    Interlocked.Increment(ref site._effects);
                    if (hang)
                    {
                        await Task.Delay(Timeout.Infinite, context.RequestAborted);
                    }

                    return "charged";
                });
                app.MapGet("/read", async (HttpContext context) =>
                {
                    if (Interlocked.Increment(ref site._reads) == 1 && hang)
                    {
                        await Task.Delay(Timeout.Infinite, context.RequestAborted);
                    }

                    return "stock: 7";
                });
            });
            return site;
        }

        public ValueTask DisposeAsync() => _server.DisposeAsync();
    }
}
