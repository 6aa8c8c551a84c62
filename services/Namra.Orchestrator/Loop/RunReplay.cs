using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Rebuilds a run from its journal on the replica that resumes it: its messages (with the ids they were saved
/// under), the repeat guard and budget as they stood, and the tool calls of its last turn still to finish. Completed
/// model turns and tool results are replayed, never sent again.
/// </summary>
internal static class RunReplay
{
    public static void Apply(RunContext run, IReadOnlyList<RunJournalEntry> journal)
    {
        List<ToolCall> calls = [];
        var done = new Dictionary<string, ToolResult>(StringComparer.Ordinal);
        var decisions = new Dictionary<string, ToolApproval>(StringComparer.Ordinal);
        var toolCalls = 0;
        foreach (var entry in journal)
        {
            switch (entry.StepCase)
            {
                case RunJournalEntry.StepOneofCase.Began:
                    run.State.Keep(entry.Began.Input.Clone());
                    break;
                case RunJournalEntry.StepOneofCase.ModelTurn:
                    KeepResults(run, calls, done);
                    run.State.Keep(entry.ModelTurn.Message.Clone());
                    calls = [.. entry.ModelTurn.Message.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolCall).Select(b => b.ToolCall)];
                    done.Clear();
                    decisions.Clear();
                    foreach (var call in calls)
                    {
                        run.Repeats.Count(call);
                    }

                    toolCalls += calls.Count;
                    run.NextIteration = entry.ModelTurn.Iteration + 1;
                    break;
                case RunJournalEntry.StepOneofCase.ToolFinished:
                    done[entry.ToolFinished.ToolCallId] = entry.ToolFinished;
                    break;
                case RunJournalEntry.StepOneofCase.HandedOff:
                    RunLoop.Apply(run, entry.HandedOff.Agent, entry.HandedOff.Ref, entry.HandedOff.History);
                    break;
                case RunJournalEntry.StepOneofCase.ApprovalsRequested:
                case RunJournalEntry.StepOneofCase.ApprovalsDecided:
                    foreach (var approval in entry.StepCase == RunJournalEntry.StepOneofCase.ApprovalsRequested ? entry.ApprovalsRequested.Approvals : entry.ApprovalsDecided.Approvals)
                    {
                        decisions[approval.ToolCall.Id] = approval;
                    }

                    break;
            }
        }

        // A denied call's result is the denial (journaled when the run goes on); an approved one runs with the arguments its
        // approver set, if any; an undecided one does not run.
        foreach (var approval in decisions.Values)
        {
            if (approval.State == ApprovalState.Pending)
            {
                run.Pending.Add(approval.ToolCall.Id);
            }
            else if (approval.State == ApprovalState.Denied && !done.ContainsKey(approval.ToolCall.Id))
            {
                done[approval.ToolCall.Id] = Approvals.Denied(approval);
                run.Denied.Add(done[approval.ToolCall.Id]);
            }
            else if (approval is { State: ApprovalState.Approved, ArgumentsJson.Length: > 0 } && calls.FindIndex(c => c.Id == approval.ToolCall.Id) is var at and >= 0)
            {
                calls[at] = new ToolCall(calls[at]) { ArgumentsJson = approval.ArgumentsJson };
                run.Edited.Add(approval.ToolCall.Id);
            }
        }

        foreach (var (id, result) in done)
        {
            run.Results[id] = result;
        }

        run.Budget.Restore(run.State.Run.Ledger, toolCalls);
        if (calls.Count > 0 && calls.All(c => done.ContainsKey(c.Id)))
        {
            KeepResults(run, calls, done);
        }
        else if (calls.Count > 0)
        {
            run.Unfinished = (calls, done, [.. InFlight(journal)]);
        }
    }

    /// <summary>The tool calls of a model turn still in flight: started and without a result.</summary>
    public static IReadOnlyList<string> InFlight(IReadOnlyList<RunJournalEntry> journal)
    {
        var inFlight = new List<string>();
        foreach (var entry in journal)
        {
            switch (entry.StepCase)
            {
                case RunJournalEntry.StepOneofCase.ModelTurn:
                    inFlight.Clear();
                    break;
                case RunJournalEntry.StepOneofCase.ToolsStarted:
                    inFlight.AddRange(entry.ToolsStarted.ToolCallIds);
                    break;
                case RunJournalEntry.StepOneofCase.ToolFinished:
                    inFlight.Remove(entry.ToolFinished.ToolCallId);
                    break;
            }
        }

        return inFlight;
    }

    /// <summary>The result of a call the run ended without running.</summary>
    public static ToolResult NotRun(ToolCall call) =>
        new() { ToolCallId = call.Id, IsError = true, Content = "The call was not run: the run ended first." };

    // The results of a turn's calls, in the order of the calls, as the message that follows the turn.
    private static void KeepResults(RunContext run, List<ToolCall> calls, Dictionary<string, ToolResult> done)
    {
        if (calls.Count > 0)
        {
            run.State.NewToolResults(calls.Select(c => done.TryGetValue(c.Id, out var result) ? result : NotRun(c)));
        }
    }
}
