using Namra.Contracts.V1;

namespace Namra.Contracts;

/// <summary>The events a run's record says: how it ended, or what it waits for. The run sends them, and so does whoever reads the record for a caller.</summary>
public static class RunEvents
{
    /// <summary>The last event of an ended run: <c>run_completed</c>, or <c>run_failed</c> with its status and error.</summary>
    public static RunEvent Ended(Run run)
    {
        System.ArgumentNullException.ThrowIfNull(run);
        return run.Status == RunStatus.Completed
            ? new RunEvent { RunCompleted = new RunCompleted { Answer = run.Answer, Usage = run.Usage, Cost = run.Cost, CostUnknown = run.CostUnknown, Duration = run.Duration, Iterations = run.Iterations } }
            : new RunEvent { RunFailed = new RunFailed { Status = run.Status, Error = run.Error, PartialAnswer = run.Answer, Usage = run.Usage, Cost = run.Cost, CostUnknown = run.CostUnknown, Duration = run.Duration } };
    }

    /// <summary>What a waiting run waits for: its calls not yet decided, and until when.</summary>
    public static RunEvent Waiting(Run run)
    {
        System.ArgumentNullException.ThrowIfNull(run);
        var waiting = new ApprovalRequired { ApprovalDeadline = run.ApprovalDeadline };
        foreach (var approval in run.Approvals)
        {
            if (approval.State == ApprovalState.Pending)
            {
                waiting.Approvals.Add(approval);
            }
        }

        return new RunEvent { ApprovalRequired = waiting };
    }
}
