using System.Collections.Concurrent;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Runs the tool calls of a model turn in parallel (up to <c>execution.max_parallel_tool_calls</c>), journaling each
/// result as it arrives, so a replica that resumes the run sends again only the calls still in flight. Calls of agents
/// are child runs (<see cref="ChildRuns"/>); the others go to the tool executor.
/// </summary>
internal sealed class ToolCalls(Downstream downstream, ChildRuns children, RunMemory memory, IOptions<OrchestratorOptions> options, TimeProvider timeProvider)
{
    /// <summary>
    /// Runs <paramref name="calls"/>; those in <paramref name="resumed"/> were in flight on a replica that was lost. Each
    /// result is written as it arrives when <paramref name="journalEach"/>, else kept for the run's next write.
    /// </summary>
    public async Task<ToolResult[]> RunAsync(RunContext run, IReadOnlyList<ToolCall> calls, IReadOnlySet<string> resumed, bool journalEach, CancellationToken cancellationToken)
    {
        foreach (var call in calls)
        {
            await run.State.EmitAsync(new RunEvent { ToolCall = call }).ConfigureAwait(false);
        }

        // The turn's calls of agents share what the run has left, evenly.
        var agentCalls = calls.Where(c => run.Entries.GetValueOrDefault(c.Name)?.Type == ToolType.Agent).Select((c, i) => (c.Id, i)).ToDictionary(p => p.Id, p => p.i, StringComparer.Ordinal);
        var maxParallel = run.Request.Agent.Execution?.MaxParallelToolCalls ?? 0;
        using var gate = new SemaphoreSlim(maxParallel > 0 ? maxParallel : Contracts.ExecutionDefaults.MaxParallelToolCalls);
        var running = new ConcurrentDictionary<string, (ToolCall Call, long Started)>();
        // Disposing the timer ends the reports without an exception (a cancelled wait throws one, costly to capture).
        using var ticks = run.State.Streamed && options.Value.ToolProgressInterval > TimeSpan.Zero ? new PeriodicTimer(options.Value.ToolProgressInterval, timeProvider) : null;
        var progress = ticks is null ? Task.CompletedTask : ReportRunningAsync(run.State, running, ticks, cancellationToken);
        try
        {
            return await Task.WhenAll(calls.Select(async call =>
            {
                await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                running[call.Id] = (call, timeProvider.GetTimestamp());
                try
                {
                    var result = run.Handoffs.TryGetValue(call.Name, out var target) ? HandOff(run, target, call)
                        : call.Name == Contracts.SemanticMemory.RememberTool && RunMemory.IsOn(run) ? await memory.RememberAsync(run, call, cancellationToken).ConfigureAwait(false)
                        : agentCalls.TryGetValue(call.Id, out var index)
                        ? await children.RunAsync(run, run.Entries[call.Name], call, resumed.Contains(call.Id), index, agentCalls.Count, cancellationToken).ConfigureAwait(false)
                        : await ExecuteAsync(run, call, resumed.Contains(call.Id), cancellationToken).ConfigureAwait(false);
                    if (run.Edited.Contains(call.Id))
                    {
                        // The model asked with other arguments: it reads what ran, now and in any replay.
                        result.Content = $"A person approved this call with other arguments: {call.ArgumentsJson}\n\n{result.Content}";
                    }

                    running.TryRemove(call.Id, out _);
                    run.State.CountTool(result.IsError);
                    run.Results[call.Id] = result;
                    var finished = new RunJournalEntry { ToolFinished = result };
                    if (journalEach)
                    {
                        await run.Journal.WriteAsync(run.Deadline, cancellationToken, finished).ConfigureAwait(false);
                    }
                    else
                    {
                        run.Journal.Add(finished);
                    }

                    await run.State.EmitAsync(new RunEvent { ToolResult = result }).ConfigureAwait(false);
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
            ticks?.Dispose();
            await progress.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    // While tools run, a streamed run says so at an interval: a client (namra run --json, a UI) sees the run alive.
    private async Task ReportRunningAsync(RunState state, ConcurrentDictionary<string, (ToolCall Call, long Started)> running, PeriodicTimer ticks, CancellationToken cancellationToken)
    {
        while (await ticks.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
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

    // A call that hands the conversation over: the first of the turn is made once the turn's calls are done (RunLoop).
    private ToolResult HandOff(RunContext run, ResolveAgentResponse target, ToolCall call)
    {
        lock (run.Handoffs)
        {
            if (run.PendingHandoff is { } first)
            {
                return new ToolResult { ToolCallId = call.Id, IsError = true, Content = $"Not handed over: this turn hands the conversation to {first.Target.Ref.Name} already." };
            }

            if (run.HandoffCount >= options.Value.MaxHandoffs)
            {
                return new ToolResult
                {
                    ToolCallId = call.Id,
                    IsError = true,
                    Content = $"Not handed over: the conversation was handed over {run.HandoffCount} times in this run, the most allowed (Namra:Orchestrator:MaxHandoffs). Answer it yourself.",
                };
            }

            run.PendingHandoff = (target, call, ToolArguments.Text(call, "reason") ?? "");
            return new ToolResult { ToolCallId = call.Id, Content = $"Handed to {target.Ref.Name}, which answers from the next turn." };
        }
    }

    private async Task<ToolResult> ExecuteAsync(RunContext run, ToolCall call, bool resumed, CancellationToken cancellationToken)
    {
        if (!run.Entries.TryGetValue(call.Name, out var entry))
        {
            return new ToolResult { ToolCallId = call.Id, IsError = true, Content = $"There is no tool named '{call.Name}'. The tools are: {string.Join(", ", run.Entries.Keys)}." };
        }

        try
        {
            var response = await downstream.ToolExecutor.ExecuteToolAsync(new ExecuteToolRequest
            {
                Tool = entry,
                Call = call,
                Context = run.ToolContext,
                Resumed = resumed,
            }, deadline: run.Deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
            return response.Result;
        }
        catch (DownstreamException exception) when (exception.StatusCode is StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.PermissionDenied or StatusCode.NotFound)
        {
            // The call was wrong, not the service: the model reads why and may correct it.
            return new ToolResult { ToolCallId = call.Id, IsError = true, Content = $"The tool call was refused: {exception.Status.Detail}" };
        }
    }
}
