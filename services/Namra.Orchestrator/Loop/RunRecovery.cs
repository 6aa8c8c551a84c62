using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Every replica looks for running runs whose lease has lapsed (their replica is gone) and claims each with the
/// record's etag, so under contention exactly one replica wins; the winner journals that it resumed the run and goes
/// on with it (<see cref="RunLoop.ResumeAsync"/>). A run with no journal to resume from ends as failed. A run waiting for
/// approval past its <c>approval_timeout</c> is claimed the same way, and ends as <c>APPROVAL_EXPIRED</c>.
/// </summary>
internal sealed partial class RunRecovery(
    Downstream downstream,
    RunLoop loop,
    Replica replica,
    Access.TenantLimits limits,
    IOptions<OrchestratorOptions> options,
    TimeProvider timeProvider,
    ILogger<RunRecovery> logger) : BackgroundService
{
    private const int PageSize = 100;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.RecoverRuns)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.RecoveryInterval, timeProvider);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            try
            {
                await ScanAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (RpcException exception) when (!stoppingToken.IsCancellationRequested)
            {
                ScanFailed(logger, exception.Status.Detail); // the memory service is down for now: the next tick tries again
            }
        }
    }

    /// <summary>
    /// Claims a run made resumable on this replica (a decision, a cancel while it waited) at once, in the background; a
    /// replica that is first, or a failure, leaves it to the next scan.
    /// </summary>
    public void ClaimSoon(string tenant, string runId) => _ = Task.Run(async () =>
    {
        try
        {
            var run = (await downstream.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = runId, Tenant = tenant }, deadline: Deadline()).ConfigureAwait(false)).Run;
            if (run.Status == RunStatus.Running && Lapsed(run) && await TryClaimAsync(run, CancellationToken.None).ConfigureAwait(false) is ({ } record, { } journal))
            {
                await ResumeAsync(record, journal).ConfigureAwait(false);
            }
        }
        catch (RpcException exception)
        {
            ScanFailed(logger, exception.Status.Detail);
        }
    }, CancellationToken.None);

    /// <summary>One pass over the running runs, and the waiting ones past their time; returns how many this replica claimed.</summary>
    public async Task<int> ScanAsync(CancellationToken cancellationToken) =>
        await ScanAsync(RunStatus.Running, Lapsed, cancellationToken).ConfigureAwait(false)
        + await ScanAsync(RunStatus.AwaitingApproval, Expired, cancellationToken).ConfigureAwait(false);

    private async Task<int> ScanAsync(RunStatus status, Func<Run, bool> claimable, CancellationToken cancellationToken)
    {
        var claimed = 0;
        var token = "";
        do
        {
            var page = await downstream.Memory.ListRunRecordsAsync(new ListRunRecordsRequest { Status = status, PageSize = PageSize, PageToken = token, AllTenants = true },
                deadline: Deadline(), cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var run in page.Runs.Where(claimable))
            {
                try
                {
                    if (await TryClaimAsync(run, cancellationToken).ConfigureAwait(false) is ({ } record, { } journal))
                    {
                        claimed++;
                        _ = Task.Run(() => ResumeAsync(record, journal), CancellationToken.None);
                    }
                }
                catch (RpcException exception) when (exception.StatusCode != StatusCode.Unavailable && !cancellationToken.IsCancellationRequested)
                {
                    // One run that cannot be read or claimed (its journal too large to send, say) holds up none of the others.
                    ResumeFailed(logger, exception, run.RunId);
                }
            }

            token = page.NextPageToken;
        }
        while (token.Length > 0);
        return claimed;
    }

    // A run whose lease lapsed, held by another replica: this one never claims its own (it may be writing the run's end
    // while the store comes back).
    private bool Lapsed(Run run)
    {
        if (run.Lease?.Owner == replica.Id)
        {
            return false;
        }

        var expires = run.Lease?.ExpireTime?.ToDateTimeOffset() ?? (run.UpdateTime?.ToDateTimeOffset() ?? default) + options.Value.LeaseDuration;
        return expires < timeProvider.GetUtcNow();
    }

    // A run waiting for approval whose time to be decided is up.
    private bool Expired(Run run) => run.ApprovalDeadline is { } deadline && deadline.ToDateTimeOffset() <= timeProvider.GetUtcNow();

    // Claims the run with the etag it was read with, journaling the claim; null when another replica was first.
    private async Task<(Run? Record, List<RunJournalEntry>? Journal)> TryClaimAsync(Run run, CancellationToken cancellationToken)
    {
        var journal = await RunJournal.ReadAsync(downstream, run, Deadline(), cancellationToken).ConfigureAwait(false);
        var resumed = new RunJournalEntry
        {
            Sequence = run.JournalLength + 1,
            Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow()),
            Resumed = new RunResumed { Owner = replica.Id, InFlightToolCallIds = { RunReplay.InFlight(journal) } },
        };
        // A run whose replica was lost had an owner; one made resumable by a decision, or waiting past its time, had none.
        var lost = run.Lease?.Owner is { Length: > 0 };
        run.Lease = new RunLease { Owner = replica.Id, ExpireTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow() + options.Value.LeaseDuration) };
        run.Status = RunStatus.Running; // a waiting run claimed past its approval timeout ends here
        if (lost)
        {
            run.Resumes++;
        }

        try
        {
            var claimed = await downstream.Memory.UpdateRunRecordAsync(new UpdateRunRecordRequest { Run = run, Etag = run.Etag, Journal = { resumed } },
                deadline: Deadline(), cancellationToken: cancellationToken).ConfigureAwait(false);
            journal.Add(resumed);
            if (lost)
            {
                Claimed(logger, run.RunId, run.Resumes);
                OrchestratorTelemetry.Recovered.Add(1, OrchestratorTelemetry.AgentLabel(run.Agent?.Name ?? ""));
            }

            return (claimed.Run, journal);
        }
        catch (RpcException exception) when (exception.StatusCode == StatusCode.Aborted)
        {
            return (null, null); // another replica claimed it, or its own replica renewed the lease just now
        }
    }

    private async Task ResumeAsync(Run run, List<RunJournalEntry> journal)
    {
        try
        {
            if (journal is [{ StepCase: RunJournalEntry.StepOneofCase.Began }, ..])
            {
                await using var slot = await limits.ResumedAsync(Contracts.Tenants.OrDefault(run.Tenant), run.Agent?.Name ?? "", run.RunId).ConfigureAwait(false);
                await loop.ResumeAsync(run, journal).ConfigureAwait(false);
            }
            else
            {
                await EndWithoutJournalAsync(run).ConfigureAwait(false);
            }
        }
        catch (RunHandedOverException)
        {
            // this replica is shutting down; another one claims the run
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            ResumeFailed(logger, exception, run.RunId); // its lease lapses again, and a replica tries again
        }
    }

    // A run recorded before runs had journals (or by a replica that wrote none) cannot be resumed: it ends, saying why.
    private async Task EndWithoutJournalAsync(Run run)
    {
        run.Status = RunStatus.Failed;
        run.Error = new Google.Rpc.Status { Code = (int)StatusCode.Aborted, Message = "The run was interrupted: the orchestrator replica running it was lost, and it has no journal to resume from." };
        run.EndTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow());
        run.Lease = null;
        await downstream.Memory.UpdateRunRecordAsync(new UpdateRunRecordRequest
        {
            Run = run, Etag = run.Etag,
            Journal = { new RunJournalEntry { Sequence = run.JournalLength + 1, Ended = new RunEnded { Status = RunStatus.Failed } } },
        }, deadline: Deadline()).ConfigureAwait(false);
    }

    private DateTime Deadline() => timeProvider.GetUtcNow().UtcDateTime + options.Value.SaveTimeout;

    [LoggerMessage(EventId = 6010, Level = LogLevel.Warning, Message = "Run {RunId}: its lease had lapsed; this replica resumes it (resume {Resumes})")]
    private static partial void Claimed(ILogger logger, string runId, int resumes);

    [LoggerMessage(EventId = 6011, Level = LogLevel.Warning, Message = "Looking for runs to recover failed: {Detail}")]
    private static partial void ScanFailed(ILogger logger, string detail);

    [LoggerMessage(EventId = 6012, Level = LogLevel.Error, Message = "Run {RunId} could not be resumed")]
    private static partial void ResumeFailed(ILogger logger, Exception exception, string runId);
}
