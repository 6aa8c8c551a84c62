using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Loop;

/// <summary>What to run: a resolved agent, the user's input, and where the conversation lives.</summary>
internal sealed record RunRequest(AgentDefinition Agent, AgentRef Ref, string Input, string SessionId, IReadOnlyDictionary<string, string> Labels, string RunId);

/// <summary>
/// The ReAct loop with native tool calling: the model answers (streamed), every tool call of its turn runs in
/// parallel, the results go back, until it answers without calls. It stops cleanly at <c>max_iterations</c>,
/// at the timeout (the deadline goes with every downstream call), on cancellation, at the budget (reserved
/// before each call) and when the model repeats a tool call; whatever way it ends, the new messages and the run
/// record are saved and the last event says how it ended.
/// </summary>
internal sealed class RunLoop(
    Downstream downstream,
    ResolvedAgents resolved,
    ActiveRuns active,
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

        using var activity = OrchestratorTelemetry.ActivitySource.StartActivity($"invoke_agent {agent.Name}");
        activity?.SetTag("gen_ai.operation.name", "invoke_agent");
        activity?.SetTag("gen_ai.agent.name", agent.Name);
        activity?.SetTag("gen_ai.agent.version", agent.Version);
        activity?.SetTag("gen_ai.request.model", agent.Llm?.Model);
        activity?.SetTag("gen_ai.conversation.id", request.SessionId.Length > 0 ? request.SessionId : null);
        activity?.SetTag("namra.run.id", request.RunId);

        var started = timeProvider.GetTimestamp();
        var timeout = agent.Execution?.Timeout?.ToTimeSpan() is { } configured && configured > TimeSpan.Zero ? configured : TimeSpan.FromSeconds(60);
        var deadline = timeProvider.GetUtcNow().UtcDateTime + timeout;
        using var registration = active.Register(request.RunId, callerToken);
        using var timeLimit = new CancellationTokenSource(timeout, timeProvider);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(registration.Token, timeLimit.Token);

        var run = new Run
        {
            RunId = request.RunId,
            Agent = request.Ref,
            SessionId = request.SessionId,
            Status = RunStatus.Running,
            Input = request.Input,
            CreateTime = Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow()),
            Labels = { request.Labels.ToDictionary() },
            TraceId = activity?.TraceId.ToHexString() ?? "",
            Usage = new TokenUsage(),
            Cost = new Cost(),
            EventsSummary = new RunEventsSummary(),
        };
        foreach (var (key, value) in agent.Labels)
        {
            run.Labels.TryAdd(key, value);
        }

        using var state = new RunState(run, emit, options.Value.MaxRunEvents, timeProvider);
        try
        {
            await Downstream.CallAsync("memory", async () =>
                (await downstream.Memory.CreateRunRecordAsync(new CreateRunRecordRequest { Run = run }, deadline: deadline, cancellationToken: stop.Token)).Run, stop.Token).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled or StatusCode.DeadlineExceeded }
            && timeLimit.IsCancellationRequested && !registration.Token.IsCancellationRequested)
        {
            // The run's own deadline, reached while the memory service did not answer: a deadline naming the service,
            // never a cancellation the caller did not ask for.
            throw new NamraException(StatusCode.DeadlineExceeded,
                $"The memory service did not answer before the run's deadline ({timeout.TotalSeconds:0.###} s); the run was not started.",
                [new Google.Rpc.ResourceInfo { ResourceType = "namra.v1.MemoryService", ResourceName = "memory", Description = "did not answer CreateRunRecord in time" }]);
        }

        await state.EmitAsync(new RunEvent { RunStarted = new RunStarted { Agent = request.Ref, SessionId = request.SessionId, Model = agent.Llm?.Model ?? "" } }).ConfigureAwait(false);

        try
        {
            await LoopAsync(request, state, deadline, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            if (timeLimit.IsCancellationRequested && !registration.Token.IsCancellationRequested)
            {
                state.Fail(RunStatus.TimedOut, StatusCode.DeadlineExceeded, $"The run did not finish within its timeout of {timeout.TotalSeconds:0.###} s.");
            }
            else
            {
                state.Fail(RunStatus.Cancelled, StatusCode.Cancelled, registration.Reason ?? "The caller cancelled the run.");
            }
        }
        catch (RpcException exception) when (exception.StatusCode == StatusCode.Cancelled || stop.IsCancellationRequested)
        {
            state.Fail(timeLimit.IsCancellationRequested ? RunStatus.TimedOut : RunStatus.Cancelled,
                timeLimit.IsCancellationRequested ? StatusCode.DeadlineExceeded : StatusCode.Cancelled,
                timeLimit.IsCancellationRequested ? $"The run did not finish within its timeout of {timeout.TotalSeconds:0.###} s." : registration.Reason ?? "The caller cancelled the run.");
        }
        catch (NamraException exception)
        {
            state.Fail(exception is DownstreamException { StatusCode: StatusCode.DeadlineExceeded } ? RunStatus.TimedOut : RunStatus.Failed, exception);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            Log.RunFailed(logger, exception, request.RunId);
            state.Fail(RunStatus.Failed, StatusCode.Internal, $"The run failed unexpectedly (trace id {run.TraceId}); the orchestrator's logs have the details.");
        }

        var elapsed = timeProvider.GetElapsedTime(started);
        run.EndTime = Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow());
        run.Duration = Duration.FromTimeSpan(elapsed);
        await SaveAsync(request, state).ConfigureAwait(false);

        activity?.SetTag("gen_ai.usage.input_tokens", run.Usage.InputTokens);
        activity?.SetTag("gen_ai.usage.output_tokens", run.Usage.OutputTokens);
        activity?.SetTag("namra.run.cost_usd", run.Cost?.TotalUsd);
        activity?.SetTag("namra.run.status", StatusName(run.Status));
        if (run.Status != RunStatus.Completed)
        {
            activity?.SetStatus(ActivityStatusCode.Error, run.Error?.Message);
        }

        OrchestratorTelemetry.Record(run, elapsed);
        await state.EmitFinalAsync(run.Status == RunStatus.Completed
            ? new RunEvent { RunCompleted = new RunCompleted { Answer = run.Answer, Usage = run.Usage, Cost = run.Cost, Duration = run.Duration, Iterations = run.Iterations } }
            : new RunEvent { RunFailed = new RunFailed { Status = run.Status, Error = run.Error, PartialAnswer = run.Answer, Usage = run.Usage, Cost = run.Cost, Duration = run.Duration } }).ConfigureAwait(false);
        return run;
    }

    private async Task LoopAsync(RunRequest request, RunState state, DateTime deadline, CancellationToken cancellationToken)
    {
        var agent = request.Agent;
        var run = state.Run;
        var execution = agent.Execution ?? new ExecutionConfig();
        var maxIterations = execution.MaxIterations > 0 ? execution.MaxIterations : 10;
        var maxRepeats = execution.MaxRepeatedToolCalls > 0 ? execution.MaxRepeatedToolCalls : 3;
        var budget = new RunBudget(execution.Budget);
        var store = MemoryStore(agent);

        // The agent's tools, and which entry serves each.
        var tools = new List<ToolDefinition>();
        var entries = new Dictionary<string, ToolConfig>(StringComparer.Ordinal);
        if (agent.Tools.Count > 0)
        {
            var listed = await resolved.ToolsAsync(request.Ref, () => Downstream.CallAsync("tool-executor", async () => await downstream.ToolExecutor.ListToolsAsync(
                new ListToolsRequest { Tools = { agent.Tools } }, deadline: deadline, cancellationToken: cancellationToken), cancellationToken)).ConfigureAwait(false);
            foreach (var tool in listed.Tools)
            {
                if (!entries.TryAdd(tool.Name, agent.Tools.First(t => t.Name == tool.Source)))
                {
                    throw new NamraException(StatusCode.FailedPrecondition, $"Two of the agent's tools are named '{tool.Name}'; rename one entry's tools.");
                }

                tools.Add(tool);
            }
        }

        // The conversation so far, then the new input.
        var messages = new List<Message>();
        if (request.SessionId.Length > 0)
        {
            var history = await Downstream.CallAsync("memory", async () => await downstream.Memory.GetHistoryAsync(new GetHistoryRequest
            {
                SessionId = request.SessionId,
                MaxMessages = agent.Memory?.MaxMessages ?? 0,
                MaxTokens = agent.Memory?.MaxHistoryTokens ?? 0,
                Store = store,
            }, deadline: deadline, cancellationToken: cancellationToken), cancellationToken).ConfigureAwait(false);
            messages.AddRange(history.Messages);
        }

        var input = state.NewMessage(Role.User, new ContentBlock { Text = request.Input });
        messages.Add(input);

        var repeats = new Dictionary<string, int>(StringComparer.Ordinal);
        var lastCancelPoll = timeProvider.GetTimestamp();
        for (var iteration = 1; ; iteration++)
        {
            if (iteration > 1 && timeProvider.GetElapsedTime(lastCancelPoll) >= options.Value.CancelPollInterval)
            {
                await CheckCancelRequestedAsync(request.RunId, deadline, cancellationToken).ConfigureAwait(false);
                lastCancelPoll = timeProvider.GetTimestamp();
            }

            cancellationToken.ThrowIfCancellationRequested();
            using var turn = OrchestratorTelemetry.ActivitySource.StartActivity($"iteration {iteration}");
            turn?.SetTag("namra.run.iteration", iteration);
            run.Iterations = iteration;
            await state.EmitAsync(new RunEvent { Iteration = new Iteration { Number = iteration, MaxIterations = maxIterations } }).ConfigureAwait(false);

            // The gateway reserves the call's worst case within what the run has left, and refuses before calling
            // the provider when it does not fit.
            GenerateCompleted completed;
            try
            {
                completed = await GenerateAsync(request, state, messages, tools, budget.Left(), iteration, deadline, cancellationToken).ConfigureAwait(false);
            }
            catch (DownstreamException exception) when (BudgetRefusal(exception) is { } refusal)
            {
                state.Fail(RunStatus.BudgetExceeded, StatusCode.ResourceExhausted, refusal);
                return;
            }
            catch (DownstreamException exception)
            {
                // The requests the failed call made are the run's too: on its ledger, and charged when their outcome is unknown.
                var attempts = FailedAttempts(exception, agent.Llm!, budget.Left());
                budget.Charge(attempts);
                state.Record(attempts, iteration);
                throw;
            }

            var overshoot = budget.Settle(completed.Attempts, completed.Usage, completed.Cost, completed.Reservation);
            state.Record(completed.Attempts, iteration);
            state.AddUsage(completed.Usage, completed.Cost);
            await state.EmitAsync(new RunEvent { Usage = new UsageUpdate { Usage = run.Usage, Cost = run.Cost } }).ConfigureAwait(false);
            if (overshoot is not null)
            {
                state.Fail(RunStatus.BudgetExceeded, StatusCode.ResourceExhausted, overshoot);
                return;
            }

            var reply = completed.Message ?? new Message { Role = Role.Assistant };
            var calls = reply.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolCall).Select(b => b.ToolCall).ToList();
            var text = string.Concat(reply.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.Text).Select(b => b.Text));
            if (text.Length > 0)
            {
                run.Answer = text;
            }

            // A turn the model did not finish is not acted on: none of its tool calls run, and the run says why it ended.
            var unfinished = Unfinished(completed.StopReason, agent.Llm?.MaxTokens ?? 0);
            if (calls.Count == 0 && unfinished is null)
            {
                messages.Add(state.Keep(reply));
                run.Status = RunStatus.Completed;
                return;
            }

            // Stop before running this turn's calls; the saved reply keeps only its text, so the conversation stays whole.
            var (stopStatus, stopCode, stopReason) = unfinished ?? (RunStatus.Failed, StatusCode.Internal, null);
            foreach (var call in calls)
            {
                var key = call.Name + "\n" + Canonical(call.ArgumentsJson);
                repeats[key] = repeats.GetValueOrDefault(key) + 1;
                if (repeats[key] > maxRepeats && stopReason is null)
                {
                    (stopStatus, stopCode, stopReason) = (RunStatus.LoopDetected, StatusCode.Aborted,
                        $"The model called {call.Name} with the same arguments {repeats[key]} times (execution.max_repeated_tool_calls is {maxRepeats}).");
                }
            }

            if (stopReason is null && iteration >= maxIterations)
            {
                (stopStatus, stopCode, stopReason) = (RunStatus.MaxIterations, StatusCode.ResourceExhausted,
                    $"The run reached execution.max_iterations ({maxIterations}) with the model still calling tools.");
            }

            if (stopReason is null)
            {
                foreach (var _ in calls)
                {
                    if (budget.TryReserveToolCall() is { } noMore)
                    {
                        (stopStatus, stopCode, stopReason) = (RunStatus.BudgetExceeded, StatusCode.ResourceExhausted, noMore);
                        break;
                    }
                }
            }

            if (stopReason is not null)
            {
                var textOnly = new Message { Role = Role.Assistant, Content = { reply.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.Text) } };
                if (textOnly.Content.Count > 0)
                {
                    messages.Add(state.Keep(textOnly));
                }

                state.Fail(stopStatus, stopCode, stopReason);
                return;
            }

            messages.Add(state.Keep(reply));
            var results = await RunToolsAsync(request, state, calls, entries, execution.MaxParallelToolCalls, deadline, cancellationToken).ConfigureAwait(false);
            messages.Add(state.NewMessage(Role.Tool, [.. results.Select(r => new ContentBlock { ToolResult = r })]));
        }
    }

    private static (RunStatus Status, StatusCode Code, string? Message)? Unfinished(StopReason reason, int maxTokens) => reason switch
    {
        StopReason.MaxTokens => (RunStatus.CutOff, StatusCode.ResourceExhausted,
            $"The model's turn was cut off at llm.max_tokens ({maxTokens:N0}) before it finished; its tool calls, if any, were not run. Raise llm.max_tokens."),
        StopReason.ContentFilter => (RunStatus.Refused, StatusCode.FailedPrecondition, "The provider's content filter stopped the model's turn; its tool calls, if any, were not run."),
        StopReason.Refusal => (RunStatus.Refused, StatusCode.FailedPrecondition, "The model refused to continue; its tool calls, if any, were not run."),
        _ => null,
    };

    // CancelRun on another replica can only set the record's flag; the replica running the run reads it between turns.
    private async Task CheckCancelRequestedAsync(string runId, DateTime deadline, CancellationToken cancellationToken)
    {
        var record = await Downstream.CallAsync("memory", async () => await downstream.Memory.GetRunRecordAsync(
            new GetRunRecordRequest { RunId = runId }, deadline: deadline, cancellationToken: cancellationToken), cancellationToken).ConfigureAwait(false);
        if (record.Run.CancelRequested)
        {
            active.TryCancel(runId, "Cancelled by CancelRun.");
        }
    }

    // The provider requests of a failed model call, from the gateway's error details. A gateway lost mid-call sends
    // none: the turn may have reached the provider, so it is an attempt of unknown outcome, charged all the call was
    // allowed (what the run had left: the gateway makes no call whose worst case does not fit).
    private static List<ProviderAttempt> FailedAttempts(DownstreamException exception, LlmConfig llm, CallBudget? left)
    {
        if (exception.InnerException is not RpcException inner || CallFailures.NeverReachedTheService(inner))
        {
            return [];
        }

        if (RpcDetails.Of<ProviderAttempts>(inner) is [var reported, ..])
        {
            return [.. reported.Attempts];
        }

        return inner.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Unknown
            ? [new ProviderAttempt
            {
                Provider = llm.Provider,
                Model = llm.Model,
                Outcome = AttemptOutcome.Unknown,
                Error = $"The llm-gateway service was lost mid-call ({inner.StatusCode}): whether the provider was called is not known.",
                ChargedTokens = left?.HasMaxTokens == true ? left.MaxTokens : 0,
                ChargedCost = left?.HasMaxCostUsd == true ? new Cost { TotalUsd = left.MaxCostUsd } : null,
            }]
            : [];
    }

    // The gateway's refusal of a call that does not fit the run's budget: its QuotaFailure names the budget.
    private static string? BudgetRefusal(DownstreamException exception) =>
        exception is { StatusCode: StatusCode.ResourceExhausted, InnerException: RpcException inner }
        && RpcDetails.Of<Google.Rpc.QuotaFailure>(inner).SelectMany(quota => quota.Violations)
            .FirstOrDefault(v => v.Subject.StartsWith("execution.budget.", StringComparison.Ordinal)) is { } violation
            ? violation.Description
            : null;

    private async Task<GenerateCompleted> GenerateAsync(RunRequest request, RunState state, List<Message> messages, List<ToolDefinition> tools, CallBudget? budget, int iteration, DateTime deadline, CancellationToken cancellationToken)
    {
        var agent = request.Agent;
        var context = new CallContext { RunId = request.RunId, AgentName = agent.Name, Iteration = iteration };
        var toolChoice = tools.Count > 0 ? ToolChoice.Auto : ToolChoice.Unspecified;
        state.Run.EventsSummary.LlmCalls++;
        if (!state.Streamed)
        {
            // Nobody reads text deltas: one response instead of a stream of them (a fraction of the calls' cost).
            var whole = new GenerateRequest { Llm = agent.Llm, SystemPrompt = agent.SystemPrompt, Messages = { messages }, Tools = { tools }, ToolChoice = toolChoice, Context = context, Budget = budget };
            var response = await Downstream.CallAsync("llm-gateway", async () =>
                await downstream.LlmGateway.GenerateAsync(whole, deadline: deadline, cancellationToken: cancellationToken), cancellationToken).ConfigureAwait(false);
            return new GenerateCompleted
            {
                Message = response.Message, StopReason = response.StopReason, Usage = response.Usage, Cost = response.Cost, Model = response.Model, ResponseId = response.ResponseId,
                Reservation = response.Reservation, RequestId = response.RequestId, Attempts = { response.Attempts },
            };
        }

        var call = new StreamGenerateRequest { Llm = agent.Llm, SystemPrompt = agent.SystemPrompt, Messages = { messages }, Tools = { tools }, ToolChoice = toolChoice, Context = context, Budget = budget };
        return await Downstream.CallAsync("llm-gateway", async () =>
        {
            // A model turn is billed once it reaches a gateway: it is sent again only when no gateway was reached (a
            // replica that is gone refuses the connection; the channel picks another). A gateway lost mid-turn ends it.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    return await StreamTurnAsync(state, call, deadline, cancellationToken).ConfigureAwait(false);
                }
                catch (RpcException exception) when (attempt < MaxGatewayConnectAttempts && CallFailures.NeverReachedTheService(exception)
                    && !cancellationToken.IsCancellationRequested)
                {
                    // try another connection
                }
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    private const int MaxGatewayConnectAttempts = 3;

    private async Task<GenerateCompleted> StreamTurnAsync(RunState state, StreamGenerateRequest call, DateTime deadline, CancellationToken cancellationToken)
    {
        using var stream = downstream.LlmGateway.StreamGenerate(call, deadline: deadline, cancellationToken: cancellationToken);
        await foreach (var item in stream.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            switch (item.EventCase)
            {
                case StreamGenerateResponse.EventOneofCase.TextDelta:
                    await state.EmitAsync(new RunEvent { TextDelta = item.TextDelta }).ConfigureAwait(false);
                    break;
                case StreamGenerateResponse.EventOneofCase.Completed:
                    return item.Completed;
            }
        }

        throw new NamraException(StatusCode.Unavailable, "The llm-gateway service ended the model's stream before it completed.");
    }

    private async Task<ToolResult[]> RunToolsAsync(RunRequest request, RunState state, List<ToolCall> calls, Dictionary<string, ToolConfig> entries, int maxParallel, DateTime deadline, CancellationToken cancellationToken)
    {
        foreach (var call in calls)
        {
            await state.EmitAsync(new RunEvent { ToolCall = call }).ConfigureAwait(false);
        }

        using var gate = new SemaphoreSlim(maxParallel > 0 ? maxParallel : 8);
        var running = new ConcurrentDictionary<string, (ToolCall Call, long Started)>();
        using var progressEnds = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var progress = state.Streamed && options.Value.ToolProgressInterval > TimeSpan.Zero
            ? ReportRunningToolsAsync(state, running, progressEnds.Token)
            : Task.CompletedTask;
        try
        {
            return await Task.WhenAll(calls.Select(async call =>
            {
                await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                running[call.Id] = (call, timeProvider.GetTimestamp());
                try
                {
                    var result = await ExecuteToolAsync(request, call, entries, deadline, cancellationToken).ConfigureAwait(false);
                    running.TryRemove(call.Id, out _);
                    state.CountTool(result.IsError);
                    await state.EmitAsync(new RunEvent { ToolResult = result }).ConfigureAwait(false);
                    return result;
                }
                finally
                {
                    running.TryRemove(call.Id, out _);
                    gate.Release();
                }
            })).ConfigureAwait(false);
        }
        finally
        {
            await progressEnds.CancelAsync().ConfigureAwait(false);
            await progress.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    // While tools run, a streamed run says so at an interval: a client (namra run --json, a UI) sees the run alive.
    private async Task ReportRunningToolsAsync(RunState state, ConcurrentDictionary<string, (ToolCall Call, long Started)> running, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.Value.ToolProgressInterval, timeProvider);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var (id, (call, started)) in running)
            {
                await state.EmitAsync(new RunEvent
                {
                    ToolRunning = new ToolRunning { ToolCallId = id, Name = call.Name, Elapsed = Duration.FromTimeSpan(timeProvider.GetElapsedTime(started)) },
                }).ConfigureAwait(false);
            }
        }
    }

    private async Task<ToolResult> ExecuteToolAsync(RunRequest request, ToolCall call, Dictionary<string, ToolConfig> entries, DateTime deadline, CancellationToken cancellationToken)
    {
        if (!entries.TryGetValue(call.Name, out var entry))
        {
            return new ToolResult { ToolCallId = call.Id, IsError = true, Content = $"There is no tool named '{call.Name}'. The tools are: {string.Join(", ", entries.Keys)}." };
        }

        try
        {
            var response = await downstream.ToolExecutor.ExecuteToolAsync(new ExecuteToolRequest
            {
                Tool = entry,
                Call = call,
                Context = new ToolCallContext { RunId = request.RunId, AgentName = request.Agent.Name },
            }, deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
            return response.Result;
        }
        catch (RpcException exception) when (exception.StatusCode is StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.PermissionDenied or StatusCode.NotFound
            && !cancellationToken.IsCancellationRequested)
        {
            // The call was wrong, not the service: the model reads why and may correct it.
            return new ToolResult { ToolCallId = call.Id, IsError = true, Content = $"The tool call was refused: {exception.Status.Detail}" };
        }
        catch (RpcException exception) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DownstreamException("tool-executor", exception);
        }
    }

    private async Task SaveAsync(RunRequest request, RunState state)
    {
        // Saved whatever way the run ended, with a token of its own: a cancelled run is saved too.
        using var save = new CancellationTokenSource(options.Value.SaveTimeout);
        var deadline = timeProvider.GetUtcNow().UtcDateTime + options.Value.SaveTimeout;
        try
        {
            if (request.SessionId.Length > 0 && state.NewMessages.Count > 0)
            {
                var memory = request.Agent.Memory;
                await downstream.Memory.AppendMessagesAsync(new AppendMessagesRequest
                {
                    SessionId = request.SessionId,
                    AgentName = request.Agent.Name,
                    Messages = { state.NewMessages },
                    Store = MemoryStore(request.Agent),
                    Retention = new SessionRetention { Ttl = memory?.Ttl },
                }, deadline: deadline, cancellationToken: save.Token).ConfigureAwait(false);
            }

            state.Run.EventsSummary.Events = (int)state.Sequence + 1;
            await downstream.Memory.UpdateRunRecordAsync(new UpdateRunRecordRequest { Run = state.Run }, deadline: deadline, cancellationToken: save.Token).ConfigureAwait(false);
        }
        catch (RpcException exception)
        {
            Log.SaveFailed(logger, exception, request.RunId);
            if (state.Run.Status == RunStatus.Completed)
            {
                state.Fail(RunStatus.Failed, exception.StatusCode == StatusCode.OK ? StatusCode.Unavailable : exception.StatusCode,
                    $"The answer could not be saved: the memory service failed ({exception.Status.Detail}).");
            }
        }
    }

    private MemoryType MemoryStore(AgentDefinition agent) => options.Value.MemoryStoreOverride switch
    {
        "in_memory" => MemoryType.InMemory,
        "sqlite" => MemoryType.Sqlite,
        "redis" => MemoryType.Redis,
        "postgres" => MemoryType.Postgres,
        _ => agent.Memory?.Type ?? MemoryType.Unspecified,
    };

    private static string Canonical(string json)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(json.Length > 0 ? json : "{}");
            var builder = new StringBuilder();
            Write(document.RootElement, builder);
            return builder.ToString();
        }
        catch (System.Text.Json.JsonException)
        {
            return json;
        }

        static void Write(System.Text.Json.JsonElement element, StringBuilder builder)
        {
            if (element.ValueKind == System.Text.Json.JsonValueKind.Object)
            {
                builder.Append('{');
                foreach (var property in element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    builder.Append(property.Name).Append(':');
                    Write(property.Value, builder);
                    builder.Append(',');
                }

                builder.Append('}');
            }
            else
            {
                builder.Append(element.GetRawText());
            }
        }
    }

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
        _ => "pending",
    };
}
