using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Cancels a run wherever it is: one waiting for approval becomes resumable with the request on its record (the replica
/// that claims it ends it as cancelled); one running on this replica stops at once; one running on another reads the
/// request from its record within a second and stops what is in flight. Written under the etag the record was read
/// with, and read again when the record moved on.
/// </summary>
internal sealed class RunCancellation(Downstream downstream, ActiveRuns active, RunApprovals approvals)
{
    private const int MaxAttempts = 5;

    /// <summary>Cancels the run; <paramref name="read"/> sees the record as first read (for the audit log). Returns the record as cancelled.</summary>
    public async Task<Run> CancelAsync(string tenant, string runId, string reason, DateTime? deadline, CancellationToken cancellationToken, Action<Run>? read = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var record = (await downstream.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = runId, Tenant = tenant },
                deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false)).Run;
            if (attempt == 1)
            {
                read?.Invoke(record);
            }

            try
            {
                if (record.Status == RunStatus.AwaitingApproval)
                {
                    return await approvals.CancelWaitingAsync(record, reason, deadline, cancellationToken).ConfigureAwait(false);
                }

                if (record.Status is not (RunStatus.Running or RunStatus.Pending))
                {
                    return record;
                }

                if (active.TryCancel(record.Tenant, runId, reason))
                {
                    record.CancelRequested = true;
                    record.CancelReason = reason;
                    return record;
                }

                var updated = await downstream.Memory.UpdateRunRecordAsync(new UpdateRunRecordRequest
                {
                    Run = new Run { RunId = runId, Tenant = record.Tenant, CancelRequested = true, CancelReason = reason },
                    UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "cancel_requested", "cancel_reason" } },
                    Etag = record.Etag,
                }, deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
                return updated.Run;
            }
            catch (DownstreamException exception) when (exception.StatusCode == StatusCode.Aborted && attempt < MaxAttempts)
            {
                // The record moved on since it was read (a step, a decision, a claim): read it again.
            }
        }
    }
}
