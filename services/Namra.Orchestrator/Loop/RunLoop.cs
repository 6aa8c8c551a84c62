using Namra.Hosting.Clients;
using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Contracts;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// What to run: a resolved agent, the user's input, and where the conversation lives; <c>Untrusted</c> when the definition
/// came inline from a caller whose tools' authority is not trusted (the tool executor judges its tools).
/// </summary>
internal sealed record RunRequest(AgentDefinition Agent, AgentRef Ref, string Input, string SessionId, IReadOnlyDictionary<string, string> Labels, string RunId, bool Untrusted = false,
    string Tenant = Tenants.Default)
{
    /// <summary>The agents the caller may run (its key's patterns); none for any. The agents the run calls as tools must be among them.</summary>
    public IReadOnlyList<string> AgentPatterns { get; init; } = [];

    /// <summary>The run that called this one's agent as a tool; empty for a run a caller started.</summary>
    public string ParentRunId { get; init; } = "";

    /// <summary>The parent's tool call this run answers.</summary>
    public string ParentToolCallId { get; init; } = "";

    /// <summary>How deep in a team of agents the run is: 0 for a run a caller started.</summary>
    public int Depth { get; init; }
}

/// <summary>
/// The ReAct loop with native tool calling: the model answers (streamed), every tool call of its turn runs in
/// parallel, the results go back, until it answers without calls. Each step is journaled as it happens, under a
/// lease this replica renews; a replica that finds the lease lapsed resumes the run from its journal
/// (<see cref="ResumeAsync"/>). It stops cleanly at <c>max_iterations</c>, at the deadline (the run's creation plus
/// its timeout, on whichever replica), on cancellation from any replica, at the budget (reserved before each call)
/// and when the model repeats a tool call; whatever way it ends, the end is written, retried until the store takes
/// it, and the last event says how it ended.
/// </summary>
internal sealed class RunLoop(
    Downstream downstream,
    ResolvedAgents resolved,
    ActiveRuns active,
    ModelTurns models,
    ToolCalls toolCalls,
    ChildRuns children,
    RunMemory memory,
    Replica replica,
    Access.TenantQuotas quotas,
    IOptions<OrchestratorOptions> options,
    TimeProvider timeProvider,
    ILogger<RunLoop> logger)
{
    /// <summary>
    /// Runs an agent; <paramref name="emit"/> receives the events in order (it is never called concurrently). Without
    /// it, nobody watches the run: model turns are asked for whole (one response, not a stream of deltas).
    /// </summary>
    public async Task<Run> RunAsync(RunRequest request, Func<RunEvent, Task>? emit, CancellationToken callerToken)
    {
        var agent = request.Agent;
        if (await CostBudgetPrices.UnpricedModelAsync(downstream, agent, callerToken).ConfigureAwait(false) is { } unpriced)
        {
            // A definition that cannot be kept: refused before the run starts.
            throw new InvalidArgumentException(CostBudgetPrices.Field, CostBudgetPrices.Problem(unpriced));
        }

        var now = timeProvider.GetUtcNow();
        var run = new Run
        {
            RunId = request.RunId,
            Tenant = request.Tenant,
            Agent = request.Ref,
            SessionId = request.SessionId,
            Status = RunStatus.Running,
            Input = request.Input,
            CreateTime = Timestamp.FromDateTimeOffset(now),
            Labels = { request.Labels.ToDictionary() },
            TraceId = Activity.Current?.TraceId.ToHexString() ?? "",
            Usage = new TokenUsage(),
            Cost = new Cost(),
            EventsSummary = new RunEventsSummary(),
            ParentRunId = request.ParentRunId,
            ParentToolCallId = request.ParentToolCallId,
            Depth = request.Depth,
        };
        foreach (var (key, value) in agent.Labels)
        {
            run.Labels.TryAdd(key, value);
        }

        using var activity = OrchestratorTelemetry.ActivitySource.StartActivity($"invoke_agent {agent.Name}");
        run.TraceId = activity?.TraceId.ToHexString() ?? run.TraceId;
        using var registration = active.Register(request.Tenant, request.RunId, callerToken);
        var context = NewContext(request, run, emit, now.UtcDateTime + Timeout(agent));
        Tag(activity, context);
        if (request.Untrusted)
        {
            // The tool executor judges an untrusted definition's tools: one it refuses is refused before the run starts.
            // Any other failure is the run's, met again when it lists its tools.
            try
            {
                await ListToolsAsync(context, callerToken).ConfigureAwait(false);
            }
            catch (DownstreamException exception) when (exception.StatusCode != StatusCode.PermissionDenied)
            {
            }
        }

        var input = context.State.NewMessage(Role.User, new ContentBlock { Text = request.Input });
        await CreateAsync(context, input, registration).ConfigureAwait(false);
        await context.State.EmitAsync(new RunEvent { RunStarted = new RunStarted { Agent = request.Ref, SessionId = request.SessionId, Model = agent.Llm?.Model ?? "" } }).ConfigureAwait(false);
        return await DriveAsync(context, registration, activity).ConfigureAwait(false);
    }

    /// <summary>
    /// Goes on with a run this replica has claimed (its lease had lapsed, or a decision or a cancel made a waiting run
    /// resumable), from its journal: a cancel request ends it as cancelled; calls still waiting past the approval
    /// timeout end it as approval_expired; past its deadline it ends as timed out; after a lost replica, an agent with
    /// <c>execution.on_interrupt: fail</c> ends as failed; any other is resumed.
    /// </summary>
    public async Task<Run> ResumeAsync(Run record, IReadOnlyList<RunJournalEntry> journal)
    {
        var began = journal[0].Began;
        var request = new RunRequest(began.Agent, record.Agent, record.Input, record.SessionId, record.Labels, record.RunId, began.Untrusted, Tenants.OrDefault(record.Tenant))
        {
            AgentPatterns = began.AgentPatterns,
            ParentRunId = record.ParentRunId,
            ParentToolCallId = record.ParentToolCallId,
            Depth = record.Depth,
        };
        // A trace of its own (the caller's has ended), naming the run's first trace.
        using var activity = OrchestratorTelemetry.ActivitySource.StartActivity($"resume_agent {began.Agent.Name}", ActivityKind.Internal, parentContext: default);
        activity?.SetTag("namra.run.first_trace_id", record.TraceId);
        using var registration = active.Register(request.Tenant, record.RunId, CancellationToken.None);
        // Time spent waiting for approval does not count against the run's timeout.
        var context = NewContext(request, record, emit: null, record.CreateTime.ToDateTime() + Timeout(began.Agent) + (record.ApprovalWait?.ToTimeSpan() ?? TimeSpan.Zero));
        Tag(activity, context);
        RunReplay.Apply(context, journal);
        var now = timeProvider.GetUtcNow();
        var decided = journal is [.., { StepCase: RunJournalEntry.StepOneofCase.ApprovalsDecided }, { StepCase: RunJournalEntry.StepOneofCase.Resumed }];
        var pending = record.Approvals.Where(a => a.State == ApprovalState.Pending).ToList();
        if (record.CancelRequested)
        {
            context.State.Run.CancelRequested = true;
            context.State.Fail(RunStatus.Cancelled, StatusCode.Cancelled, ActiveRuns.CancelReason(record.CancelReason));
        }
        else if (pending.Count > 0 && record.ApprovalDeadline?.ToDateTimeOffset() <= now)
        {
            // Claimed while calls still wait, past their time to be decided (whatever the run's own timeout: it does not
            // count the wait).
            var waited = now - pending.Min(a => a.RequestTime.ToDateTimeOffset());
            context.State.Fail(RunStatus.ApprovalExpired, StatusCode.DeadlineExceeded,
                $"Nobody approved or denied {pending.Count} tool call(s) within execution.approval_timeout (waited {waited.TotalSeconds:0} s); they did not run.");
        }
        else if (now.UtcDateTime >= context.Deadline)
        {
            context.State.Fail(RunStatus.TimedOut, StatusCode.DeadlineExceeded, TimedOut(began.Agent) + " The run was found past its deadline.");
        }
        else if (!decided && began.Agent.Execution?.OnInterrupt == InterruptPolicy.Fail)
        {
            context.State.Fail(RunStatus.Failed, StatusCode.Aborted,
                "The run was interrupted: the orchestrator replica running it was lost, and the agent's execution.on_interrupt is fail.");
        }

        return await DriveAsync(context, registration, activity).ConfigureAwait(false);
    }

    private RunContext NewContext(RunRequest request, Run run, Func<RunEvent, Task>? emit, DateTime deadline)
    {
        var state = new RunState(run, emit, options.Value.MaxRunEvents, timeProvider);
        var journal = new RunJournal(downstream, run, replica.Id, options.Value.LeaseDuration, timeProvider);
        return new RunContext(request, state, journal, deadline);
    }

    private static TimeSpan Timeout(AgentDefinition agent) =>
        agent.Execution?.Timeout?.ToTimeSpan() is { } configured && configured > TimeSpan.Zero ? configured : Contracts.ExecutionDefaults.Timeout;

    private static string TimedOut(AgentDefinition agent) => $"The run did not finish within its timeout of {Timeout(agent).TotalSeconds:0.###} s.";

    // The record and the run's first step, in one write.
    private async Task CreateAsync(RunContext run, Message input, ActiveRuns.Registration registration)
    {
        var timeout = Timeout(run.Request.Agent);
        using var timeLimit = new CancellationTokenSource(timeout, timeProvider);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(registration.Token, timeLimit.Token);
        try
        {
            await run.Journal.CreateAsync(new RunBegan { Agent = run.Request.Agent, Input = input, Untrusted = run.Request.Untrusted, AgentPatterns = { run.Request.AgentPatterns } },
                run.Deadline, stop.Token).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled or StatusCode.DeadlineExceeded }
            && !registration.Token.IsCancellationRequested
            && (timeLimit.IsCancellationRequested || timeProvider.GetUtcNow().UtcDateTime >= run.Deadline - TimeSpan.FromMilliseconds(100))) // the call's deadline may fire first
        {
            // The run's own deadline, reached while the memory service did not answer: a deadline naming the service,
            // never a cancellation the caller did not ask for.
            throw new NamraException(StatusCode.DeadlineExceeded,
                $"The memory service did not answer before the run's deadline ({timeout.TotalSeconds:0.###} s); the run was not started.",
                [DownstreamException.ResourceOf(ServiceRoles.Memory, MemoryService.Descriptor, "did not answer CreateRunRecord in time")]);
        }
    }

    // Runs the loop under the run's deadline, watching for cancellation from other replicas; then writes the end.
    private async Task<Run> DriveAsync(RunContext run, ActiveRuns.Registration registration, Activity? activity)
    {
        var left = run.Deadline - timeProvider.GetUtcNow().UtcDateTime;
        using var timeLimit = new CancellationTokenSource(left > TimeSpan.Zero ? left : TimeSpan.Zero, timeProvider);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(registration.Token, timeLimit.Token);
        run.Journal.CancelRequested = reason => active.TryCancel(run.Request.Tenant, run.Request.RunId, reason);
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        using var ticks = new PeriodicTimer(options.Value.CancelPollInterval, timeProvider);
        var watch = WatchAsync(run, ticks, watching.Token);
        var handedOver = false;
        try
        {
            if (run.State.Run.Status == RunStatus.Running)
            {
                await LoopAsync(run, stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception exception) when (run.LeaseLost || exception is LeaseLostException)
        {
            run.LeaseLost = true;
        }
        catch (Exception) when (registration.HandedOver)
        {
            handedOver = true;
        }
        catch (Exception exception)
        {
            Stopped(run, exception, timeLimit.IsCancellationRequested && !registration.Token.IsCancellationRequested, registration.GivenReason, stop.IsCancellationRequested);
        }
        finally
        {
            // Disposing the timer ends the watch without an exception: a cancelled wait throws one, and capturing its
            // stack trace was 7% of an embedded run's CPU. The token then cuts a read of the record in flight.
            ticks.Dispose();
            await watching.CancelAsync().ConfigureAwait(false);
            await watch.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (handedOver)
        {
            await HandOverAsync(run).ConfigureAwait(false);
        }

        if (run.State.Run.Status == RunStatus.AwaitingApproval && !run.LeaseLost)
        {
            // Not ended: it waits for a decision, on no replica.
            activity?.SetTag("namra.run.status", StatusName(RunStatus.AwaitingApproval));
            run.Journal.Dispose();
            run.State.Dispose();
            return run.State.Run.Clone();
        }

        if (run.LeaseLost)
        {
            // Another replica goes on with the run; this one writes nothing more.
            run.Journal.Dispose();
            run.State.Dispose();
            throw new LeaseLostException(run.Request.RunId, "another replica");
        }

        return await EndAsync(run, activity).ConfigureAwait(false);
    }

    // The replica is shutting down: the steps kept are written with a lapsed lease, and another replica resumes the run.
    private async Task HandOverAsync(RunContext run)
    {
        using var save = new CancellationTokenSource(options.Value.SaveTimeout, timeProvider);
        try
        {
            await run.Journal.ReleaseAsync(timeProvider.GetUtcNow().UtcDateTime + options.Value.SaveTimeout, save.Token).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is NamraException or RpcException or OperationCanceledException)
        {
            // Not released: its lease lapses in its own time.
        }
        finally
        {
            run.Journal.Dispose();
            run.State.Dispose();
        }

        throw new RunHandedOverException(run.Request.RunId);
    }

    private static void Tag(Activity? activity, RunContext run)
    {
        var agent = run.Request.Agent;
        activity?.SetTag("gen_ai.operation.name", "invoke_agent");
        activity?.SetTag("gen_ai.agent.name", agent.Name);
        activity?.SetTag("gen_ai.agent.version", agent.Version);
        activity?.SetTag("gen_ai.request.model", agent.Llm?.Model);
        activity?.SetTag("gen_ai.conversation.id", run.Request.SessionId.Length > 0 ? run.Request.SessionId : null);
        activity?.SetTag("namra.run.id", run.Request.RunId);
        activity?.SetTag("namra.run.resumes", run.State.Run.Resumes);
    }

    // How an exception ends the run: timed out, cancelled (by CancelRun when givenReason is set; the record keeps it),
    // or failed with the service's error.
    private void Stopped(RunContext run, Exception exception, bool timedOut, string? givenReason, bool stopped)
    {
        var state = run.State;
        var agent = run.Request.Agent;
        if (stopped && exception is OperationCanceledException or RpcException)
        {
            if (timedOut)
            {
                state.Fail(RunStatus.TimedOut, StatusCode.DeadlineExceeded, TimedOut(agent));
            }
            else if (givenReason is not null)
            {
                state.Run.CancelRequested = true;
                state.Run.CancelReason = givenReason;
                state.Fail(RunStatus.Cancelled, StatusCode.Cancelled, ActiveRuns.CancelReason(givenReason));
            }
            else
            {
                state.Fail(RunStatus.Cancelled, StatusCode.Cancelled, "The caller cancelled the run.");
            }
        }
        else if (exception is DownstreamException downstreamFailure)
        {
            state.Fail(downstreamFailure.StatusCode == StatusCode.DeadlineExceeded ? RunStatus.TimedOut : RunStatus.Failed, downstreamFailure);
        }
        else if (exception is NamraException failure)
        {
            state.Fail(RunStatus.Failed, failure);
        }
        else
        {
            Log.RunFailed(logger, exception, run.Request.RunId);
            state.Fail(RunStatus.Failed, StatusCode.Internal, $"The run failed unexpectedly (trace id {state.Run.TraceId}); the orchestrator's logs have the details.");
        }
    }

    // Renews the lease while the run works, and reads its record for a CancelRun sent to another replica.
    private async Task WatchAsync(RunContext run, PeriodicTimer ticks, CancellationToken cancellationToken)
    {
        while (await ticks.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                if (run.Journal.RenewalDue)
                {
                    await run.Journal.WriteAsync(run.Deadline, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await run.Journal.CheckCancelAsync(run.Deadline, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (LeaseLostException)
            {
                run.LeaseLost = true;
                active.TryCancel(run.Request.Tenant, run.Request.RunId, "The run was taken over by another replica.");
                return;
            }
            catch (Exception exception) when (exception is NamraException or DownstreamException && !cancellationToken.IsCancellationRequested)
            {
                // The store is down for now: the next tick tries again; the run goes on meanwhile.
            }
        }
    }

    private async Task LoopAsync(RunContext run, CancellationToken cancellationToken)
    {
        await PrepareAsync(run, cancellationToken).ConfigureAwait(false);
        if (run.Denied.Count > 0)
        {
            // Denials are results of their own, journaled once, so every later replay reads them.
            await run.Journal.WriteAsync(run.Deadline, cancellationToken, [.. run.Denied.Select(denied => new RunJournalEntry { ToolFinished = denied })]).ConfigureAwait(false);
            run.Denied.Clear();
        }

        if (run.Unfinished is { } unfinished)
        {
            // A resumed run first finishes its last turn's tool calls: those in flight are sent again marked resumed; those
            // never started (approved after the run waited) are journaled as started first.
            // Calls still waiting for a decision do not run: the run waits again once the others have.
            var left = unfinished.Calls.Where(c => !unfinished.Done.ContainsKey(c.Id) && !run.Pending.Contains(c.Id)).ToList();
            var starting = left.Where(c => !unfinished.InFlight.Contains(c.Id)).Select(c => c.Id).ToList();
            if (starting.Count > 0)
            {
                await run.Journal.WriteAsync(run.Deadline, cancellationToken, new RunJournalEntry { ToolsStarted = new ToolCallsStarted { ToolCallIds = { starting } } })
                    .ConfigureAwait(false);
            }

            var results = await toolCalls.RunAsync(run, left, unfinished.InFlight, journalEach: true, cancellationToken).ConfigureAwait(false);
            if (run.Pending.Count > 0)
            {
                await WaitForApprovalAsync(run, cancellationToken).ConfigureAwait(false);
                return;
            }

            var all = unfinished.Done.Values.Concat(results).ToDictionary(r => r.ToolCallId, StringComparer.Ordinal);
            run.Messages.Add(run.State.NewToolResults(unfinished.Calls.Select(c => all[c.Id])));
            run.Unfinished = null;
            await HandOffAsync(run, cancellationToken).ConfigureAwait(false);
        }

        for (var iteration = run.NextIteration; await TurnAsync(run, iteration, cancellationToken).ConfigureAwait(false); iteration++)
        {
        }
    }

    // The agent's tools, and which entry serves each: the tool executor's, the agents it calls (run here), and the
    // handoffs to other agents. The agent is the one answering now (after a handoff, the one it went to).
    private async Task ListToolsAsync(RunContext run, CancellationToken cancellationToken)
    {
        var agent = run.Agent;
        if (agent.Tools.Count + agent.Handoffs.Count == 0 && !RunMemory.IsOn(run) || run.Tools.Count > 0)
        {
            return;
        }

        if (RunMemory.IsOn(run))
        {
            run.Tools.Add(RunMemory.RememberTool());
        }

        var executed = agent.Tools.Where(t => t.Type != ToolType.Agent).ToList();
        var listed = executed.Count == 0 ? new ListToolsResponse() : await resolved.ToolsAsync(run.AgentRef, run.Request.Untrusted, () => downstream.ToolExecutor.ListToolsAsync(
            new ListToolsRequest { Tools = { executed }, Context = run.ToolContext }, deadline: run.Deadline, cancellationToken: cancellationToken).ResponseAsync).ConfigureAwait(false);
        var tools = new List<ToolDefinition>(listed.Tools); // the listed ones are a cached response, shared
        foreach (var entry in agent.Tools.Where(t => t.Type == ToolType.Agent))
        {
            tools.Add(await children.DescribeAsync(entry, cancellationToken).ConfigureAwait(false));
        }

        foreach (var tool in tools)
        {
            if (!run.Entries.TryAdd(tool.Name, agent.Tools.First(t => t.Name == tool.Source)))
            {
                throw new NamraException(StatusCode.FailedPrecondition, $"Two of the agent's tools are named '{tool.Name}'; rename one entry's tools.");
            }

            run.Tools.Add(tool);
        }

        foreach (var reference in agent.Handoffs)
        {
            var target = await children.ResolveAsync(reference, cancellationToken).ConfigureAwait(false);
            var name = Handoffs.ToolName(reference);
            if (run.Entries.ContainsKey(name) || !run.Handoffs.TryAdd(name, target))
            {
                throw new NamraException(StatusCode.FailedPrecondition, $"The handoff tool '{name}' has the name of another of the agent's tools; rename it.");
            }

            run.Tools.Add(new ToolDefinition
            {
                Name = name,
                Description = $"Hands the conversation to the agent {target.Ref.Name}" + (target.Agent.Description.Length > 0 ? $" ({target.Agent.Description.TrimEnd('.')})" : "") +
                    ": it answers from the next turn, seeing the conversation so far. Call it when the request is that agent's to answer.",
                InputSchemaJson = HandoffSchema,
                Source = name,
            });
        }
    }

    private const string HandoffSchema = """{"type":"object","properties":{"reason":{"type":"string","description":"Why the conversation goes to that agent, for the record."}},"additionalProperties":false}""";

    // The conversation goes to another agent: its model, prompt and tools from the next turn, on the journal and the record.
    private async Task HandOffAsync(RunContext run, CancellationToken cancellationToken)
    {
        if (run.PendingHandoff is not var (target, call, reason))
        {
            return;
        }

        run.PendingHandoff = null;
        var from = run.AgentRef;
        var history = run.Agent.HandoffHistory is { Length: > 0 } chosen ? chosen : "all";
        Apply(run, target.Agent, target.Ref, history);
        run.Journal.Add(new RunJournalEntry { HandedOff = new HandedOff { Agent = target.Agent, Ref = target.Ref, ToolCallId = call.Id, Reason = reason, History = history } });
        await run.Journal.WriteAsync(run.Deadline, cancellationToken).ConfigureAwait(false);
        Activity.Current?.AddEvent(new ActivityEvent("handoff", tags: new ActivityTagsCollection { ["gen_ai.agent.name"] = target.Ref.Name, ["namra.handoff.reason"] = reason }));
        await run.State.EmitAsync(new RunEvent { Handoff = new Handoff { From = from, To = target.Ref, Reason = reason } }).ConfigureAwait(false);
        await ListToolsAsync(run, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Makes <paramref name="agent"/> the one answering: its tools are listed again before its first turn.</summary>
    internal static void Apply(RunContext run, AgentDefinition agent, AgentRef agentRef, string history)
    {
        run.HandoffHistory = history;
        run.Agent = agent;
        run.AgentRef = agentRef;
        run.HandoffCount++;
        run.State.Run.AnsweredBy = agentRef;
        run.Tools.Clear();
        run.Entries.Clear();
        run.Handoffs.Clear();
    }

    // The agent's tools, and the conversation so far: the session's history, then the run's own messages.
    private async Task PrepareAsync(RunContext run, CancellationToken cancellationToken)
    {
        var agent = run.Request.Agent;
        await ListToolsAsync(run, cancellationToken).ConfigureAwait(false);

        if (run.Request.SessionId.Length > 0)
        {
            var history = await downstream.Memory.GetHistoryAsync(new GetHistoryRequest
            {
                Tenant = run.Request.Tenant,
                SessionId = run.Request.SessionId,
                MaxMessages = agent.Memory?.MaxMessages ?? 0,
                MaxTokens = agent.Memory?.MaxHistoryTokens ?? 0,
                Store = MemoryStore(agent),
            }, deadline: run.Deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
            run.Messages.AddRange(history.Messages);
        }

        run.Messages.AddRange(run.State.NewMessages);
    }

    // One model turn and its tool calls; false when the run ends with it.
    private async Task<bool> TurnAsync(RunContext run, int iteration, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var turn = OrchestratorTelemetry.ActivitySource.StartActivity($"iteration {iteration}");
        turn?.SetTag("namra.run.iteration", iteration);
        var state = run.State;
        state.Run.Iterations = iteration;
        var maxIterations = run.Request.Agent.Execution?.MaxIterations is > 0 and var max ? max : Contracts.ExecutionDefaults.MaxIterations;
        await state.EmitAsync(new RunEvent { Iteration = new Iteration { Number = iteration, MaxIterations = maxIterations } }).ConfigureAwait(false);
        if (await CallModelAsync(run, iteration, cancellationToken).ConfigureAwait(false) is not { } reply)
        {
            return false;
        }

        var calls = reply.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolCall).Select(b => b.ToolCall).ToList();
        var text = string.Concat(reply.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.Text).Select(b => b.Text));
        if (text.Length > 0)
        {
            state.Run.Answer = text;
        }

        if (calls.Count == 0 && reply.StopReason is null)
        {
            Keep(run, reply.Message, iteration);
            state.Run.Status = RunStatus.Completed;
            return false;
        }

        if ((reply.StopReason ?? Stop(run, calls, iteration, maxIterations)) is { } stop)
        {
            // Stop before running this turn's calls; the saved reply keeps only its text, so the conversation stays whole.
            var textOnly = new Message { Role = Role.Assistant, Content = { reply.Message.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.Text) } };
            if (textOnly.Content.Count > 0)
            {
                Keep(run, textOnly, iteration);
            }

            state.Fail(stop.Status, stop.Code, stop.Message);
            return false;
        }

        var kept = state.Keep(reply.Message);
        run.Messages.Add(kept);
        run.Journal.Add(new RunJournalEntry { ModelTurn = new ModelTurn { Iteration = iteration, Message = kept } });

        // Calls that need a person's approval wait; the others of the turn run now. The waiting calls are journaled with
        // the turn, before anything runs: a replica that resumes the run in between never runs them undecided.
        var guarded = calls.Select(c => (Call: c, Reason: Approvals.Reason(run.Entries.GetValueOrDefault(c.Name), run.Tools.Find(t => t.Name == c.Name), c)))
            .Where(g => g.Reason is not null).Select(g => (g.Call, Reason: g.Reason!)).ToList();
        var free = guarded.Count == 0 ? calls : [.. calls.Where(c => !guarded.Exists(g => g.Call.Id == c.Id))];
        run.Journal.Add(new RunJournalEntry { ToolsStarted = new ToolCallsStarted { ToolCallIds = { free.Select(c => c.Id) } } });
        if (guarded.Count > 0)
        {
            run.Journal.Add(new RunJournalEntry { ApprovalsRequested = new ApprovalsRequested { Approvals = { RequestApprovals(run, guarded) } } });
        }

        await run.Journal.WriteAsync(run.Deadline, cancellationToken).ConfigureAwait(false);

        // The results of calls that must not run twice are written as they arrive; those of calls that may run twice go
        // with the next write (a lost replica's successor runs them again).
        var results = await toolCalls.RunAsync(run, free, new HashSet<string>(), journalEach: free.Any(c => !run.Idempotent(c.Name)), cancellationToken).ConfigureAwait(false);
        if (guarded.Count > 0)
        {
            await WaitForApprovalAsync(run, cancellationToken).ConfigureAwait(false);
            return false;
        }

        run.Messages.Add(state.NewToolResults(results));
        await HandOffAsync(run, cancellationToken).ConfigureAwait(false);
        return true;
    }

    // The calls to wait on, on the record (pending, with why and until when).
    private List<ToolApproval> RequestApprovals(RunContext run, List<(ToolCall Call, string Reason)> guarded)
    {
        var now = timeProvider.GetUtcNow();
        var approvals = guarded.Select(g => new ToolApproval { ToolCall = g.Call, Reason = g.Reason, RequestTime = Timestamp.FromDateTimeOffset(now), State = ApprovalState.Pending }).ToList();
        var timeout = run.Request.Agent.Execution?.ApprovalTimeout?.ToTimeSpan() ?? TimeSpan.Zero;
        run.State.Run.Approvals.Add(approvals.Select(a => a.Clone()));
        run.State.Run.ApprovalDeadline = timeout > TimeSpan.Zero ? Timestamp.FromDateTimeOffset(now + timeout) : null;
        return approvals;
    }

    // The run waits for a person: no replica holds it, and the caller's stream ends with the calls to decide on. A
    // decision on any replica makes it resumable (RunApprovals). The record says so only once the write has landed.
    private static async Task WaitForApprovalAsync(RunContext run, CancellationToken cancellationToken)
    {
        var state = run.State;
        await run.Journal.WaitForDecisionAsync(run.Deadline, cancellationToken).ConfigureAwait(false);
        state.Run.Status = RunStatus.AwaitingApproval;
        var waiting = RunEvents.Waiting(state.Run);
        var approvals = waiting.ApprovalRequired.Approvals;
        OrchestratorTelemetry.ApprovalsRequested.Add(approvals.Count, OrchestratorTelemetry.AgentLabel(run.Request.Agent.Name));
        Activity.Current?.AddEvent(new ActivityEvent("approval_required", tags: new ActivityTagsCollection
        {
            ["gen_ai.tool.name"] = string.Join(",", approvals.Select(a => a.ToolCall.Name).Distinct(StringComparer.Ordinal)),
            ["namra.approval.calls"] = approvals.Count,
        }));
        await state.EmitFinalAsync(waiting).ConfigureAwait(false);
    }

    // A message that ends the run: journaled with its end.
    private static void Keep(RunContext run, Message message, int iteration)
    {
        var kept = run.State.Keep(message);
        run.Messages.Add(kept);
        run.Journal.Add(new RunJournalEntry { ModelTurn = new ModelTurn { Iteration = iteration, Message = kept } });
    }

    /// <summary>A model's reply, and why it must not be acted on when the model did not finish its turn.</summary>
    private sealed record Reply(Message Message, (RunStatus Status, StatusCode Code, string Message)? StopReason)
    {
        public IEnumerable<ContentBlock> Content => Message.Content;
    }

    // The gateway reserves the call's worst case within what the run has left, and refuses before calling the provider
    // when it does not fit; a tenant with a quota sets that worst case aside first (TenantQuotas). Null when the run ends
    // here (the budget, the quota).
    private async Task<Reply?> CallModelAsync(RunContext run, int iteration, CancellationToken cancellationToken)
    {
        var state = run.State;
        run.Recalled = RunMemory.IsOn(run) ? await memory.RecallAsync(run, iteration, cancellationToken).ConfigureAwait(false) : "";
        if (state.Run.Status != RunStatus.Running)
        {
            return null; // the recall's embedding was counted past the budget
        }

        Access.TenantQuotas.Reservation quota;
        try
        {
            quota = await quotas.ReserveAsync(run, cancellationToken).ConfigureAwait(false);
        }
        catch (NamraException exception) when (exception.StatusCode is StatusCode.ResourceExhausted or StatusCode.FailedPrecondition)
        {
            state.Fail(RunStatus.BudgetExceeded, exception);
            return null;
        }

        var allowed = quota.Within(run.Budget.Left());
        GenerateCompleted completed;
        try
        {
            completed = await models.GenerateAsync(run, allowed, iteration, cancellationToken).ConfigureAwait(false);
            await quota.SettleAsync(completed.Attempts, completed.Reservation).ConfigureAwait(false);
        }
        catch (DownstreamException exception)
        {
            // The requests the failed call made are the run's too: on its ledger, and charged when their outcome is
            // unknown. A refusal of the budget (before a request, or before another after one of unknown outcome) ends
            // the run here, keeping its QuotaFailure.
            var attempts = ModelTurns.FailedAttempts(exception, run.Request.Agent.Llm!, allowed);
            run.Budget.Charge(attempts);
            state.Record(attempts, iteration);
            await quota.SettleAsync(attempts, null).ConfigureAwait(false);
            if (ModelTurns.BudgetRefusal(exception) is not { } refusal)
            {
                throw;
            }

            state.Fail(RunStatus.BudgetExceeded, StatusCode.ResourceExhausted, refusal, exception.GetRpcStatus()?.Details.Where(d => !d.Is(ProviderAttempts.Descriptor)));
            return null;
        }
        catch (Exception exception) when (exception is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled or StatusCode.DeadlineExceeded })
        {
            // Abandoned in flight (cancelled, out of time, its caller gone): the provider may bill the request all the same.
            var abandoned = ModelTurns.Unanswered(run.Request.Agent.Llm!, allowed, "The run stopped while the model call was in flight: whether the provider billed it is not known.");
            run.Budget.Charge([abandoned]);
            state.Record([abandoned], iteration);
            throw;
        }
        finally
        {
            // Cancelled before an answer: the call may have reached the provider, so it keeps all it was allowed (a settled
            // reservation is not settled again).
            await quota.SettleUnknownAsync().ConfigureAwait(false);
        }

        var overshoot = run.Budget.Settle(completed.Attempts, completed.Usage, completed.Cost, completed.Reservation);
        state.Record(completed.Attempts, iteration);
        state.AddUsage(completed.Usage, completed.Cost, completed.Model.Length > 0 ? completed.Model : run.Request.Agent.Llm!.Model);
        await state.EmitAsync(new RunEvent { Usage = new UsageUpdate { Usage = state.Run.Usage, Cost = state.Run.Cost } }).ConfigureAwait(false);
        if (overshoot is not null)
        {
            state.Fail(RunStatus.BudgetExceeded, StatusCode.ResourceExhausted, overshoot);
            return null;
        }

        return new Reply(completed.Message ?? new Message { Role = Role.Assistant }, ModelTurns.Unfinished(completed.StopReason, run.Request.Agent.Llm?.MaxTokens ?? 0));
    }

    // Why the run stops before running a finished turn's calls: a repeated call, the last iteration, or no tool calls left.
    private static (RunStatus Status, StatusCode Code, string Message)? Stop(RunContext run, List<ToolCall> calls, int iteration, int maxIterations)
    {
        var maxRepeats = run.Request.Agent.Execution?.MaxRepeatedToolCalls is > 0 and var repeats ? repeats : Contracts.ExecutionDefaults.MaxRepeatedToolCalls;
        (RunStatus, StatusCode, string)? stop = null;
        foreach (var call in calls)
        {
            var count = run.Repeats.Count(call);
            if (count > maxRepeats && stop is null)
            {
                stop = (RunStatus.LoopDetected, StatusCode.Aborted, $"The model called {call.Name} with the same arguments {count} times (execution.max_repeated_tool_calls is {maxRepeats}).");
            }
        }

        if (stop is null && iteration >= maxIterations)
        {
            stop = (RunStatus.MaxIterations, StatusCode.ResourceExhausted, $"The run reached execution.max_iterations ({maxIterations}) with the model still calling tools.");
        }

        for (var i = 0; stop is null && i < calls.Count; i++)
        {
            if (run.Budget.TryReserveToolCall() is { } noMore)
            {
                stop = (RunStatus.BudgetExceeded, StatusCode.ResourceExhausted, noMore);
            }
        }

        return stop;
    }

    // The run has ended: its end is written, its metrics recorded, and the caller told.
    private async Task<Run> EndAsync(RunContext run, Activity? activity)
    {
        var record = run.State.Run;
        var now = timeProvider.GetUtcNow();
        record.EndTime = Timestamp.FromDateTimeOffset(now);
        record.Duration = Duration.FromTimeSpan(now - record.CreateTime.ToDateTimeOffset());
        CloseOpenToolCalls(run);
        record.EventsSummary.Events = (int)run.State.Sequence + 1; // and the last event, sent once the end is written
        var answer = record;
        if (await RunSaving.TrySaveAsync(run, downstream, options.Value, MemoryStore(run.Request.Agent), timeProvider, logger).ConfigureAwait(false))
        {
            run.Journal.Dispose();
        }
        else
        {
            // The store is down: the answer goes to the caller now, and its record follows once the store is back.
            answer = record.Clone();
            _ = RunSaving.KeepSavingAsync(run, downstream, options.Value, MemoryStore(run.Request.Agent), timeProvider, logger);
        }

        activity?.SetTag("gen_ai.usage.input_tokens", answer.Usage.InputTokens);
        activity?.SetTag("gen_ai.usage.output_tokens", answer.Usage.OutputTokens);
        activity?.SetTag("namra.run.cost_usd", answer.Cost?.TotalUsd);
        activity?.SetTag("namra.run.status", StatusName(answer.Status));
        if (answer.Status != RunStatus.Completed)
        {
            activity?.SetStatus(ActivityStatusCode.Error, answer.Error?.Message);
        }

        OrchestratorTelemetry.Record(answer, run.Request.Agent.Llm?.Model ?? "", answer.Duration.ToTimeSpan());
        await run.State.EmitFinalAsync(RunEvents.Ended(answer)).ConfigureAwait(false);
        run.State.Dispose();
        return answer;
    }

    // A run that ended between a turn's tool calls and their results still leaves a whole conversation: each call gets
    // a result saying it did not run (providers refuse a history with calls left unanswered).
    private static void CloseOpenToolCalls(RunContext run)
    {
        if (run.State.NewMessages is [.., { Role: Role.Assistant } last] && last.Content.Any(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolCall))
        {
            run.State.NewToolResults(last.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolCall)
                .Select(b => run.Results.TryGetValue(b.ToolCall.Id, out var result) ? result : RunReplay.NotRun(b.ToolCall)));
        }
    }

    private MemoryType MemoryStore(AgentDefinition agent) => MemoryStore(options.Value, agent);

    /// <summary>The store that keeps an agent's conversations and memories: the operator's override, else the agent's <c>memory.type</c>.</summary>
    internal static MemoryType MemoryStore(OrchestratorOptions options, AgentDefinition agent) =>
        Contracts.MemoryTypeNames.Parse(options.MemoryStoreOverride) is var forced and not MemoryType.Unspecified ? forced : agent.Memory?.Type ?? MemoryType.Unspecified;

    internal static string StatusName(RunStatus status) => status switch
    {
        RunStatus.Completed => "completed",
        RunStatus.Failed => "failed",
        RunStatus.Cancelled => "cancelled",
        RunStatus.TimedOut => "timed_out",
        RunStatus.MaxIterations => "max_iterations",
        RunStatus.BudgetExceeded => "budget_exceeded",
        RunStatus.LoopDetected => "loop_detected",
        RunStatus.CutOff => "cut_off",
        RunStatus.Refused => "refused",
        RunStatus.Running => "running",
        RunStatus.AwaitingApproval => "awaiting_approval",
        RunStatus.ApprovalExpired => "approval_expired",
        _ => "pending",
    };
}
