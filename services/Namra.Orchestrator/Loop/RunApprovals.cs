using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Decisions on the tool calls a waiting run needs approved, on any replica. Each decision is journaled with the
/// record, under its etag, so two people deciding at once cannot both decide the same call. Once no call is left
/// undecided (or the run is cancelled), the run becomes resumable: running, with a lease that has lapsed, and this
/// replica claims it at once (any other would within its recovery interval).
/// </summary>
internal sealed class RunApprovals(Downstream downstream, RunRecovery recovery, ResolvedAgents resolved, ArgumentValidator validator, TimeProvider timeProvider)
{
    private const int MaxAttempts = 5;

    /// <summary>Approves or denies calls (all those waiting when <paramref name="ids"/> is empty).</summary>
    public async Task<Run> DecideAsync(string tenant, string runId, IReadOnlyList<string> ids, bool approve, string reason, string decidedBy,
        IReadOnlyDictionary<string, string> arguments, DateTime deadline, CancellationToken cancellationToken)
    {
        using var activity = OrchestratorTelemetry.ActivitySource.StartActivity(approve ? "approve_tool_calls" : "deny_tool_calls");
        activity?.SetTag("namra.run.id", runId);
        activity?.SetTag("namra.approval.decision", approve ? "approved" : "denied");
        for (var attempt = 1; ; attempt++)
        {
            var run = (await downstream.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = runId, Tenant = tenant }, deadline: deadline, cancellationToken: cancellationToken)
                .ConfigureAwait(false)).Run;
            if (run.Status != RunStatus.AwaitingApproval)
            {
                throw new NamraException(StatusCode.FailedPrecondition, $"Run {runId} is not waiting for approval: it is {RunLoop.StatusName(run.Status)}.");
            }

            var now = timeProvider.GetUtcNow();
            if (run.ApprovalDeadline?.ToDateTimeOffset() <= now)
            {
                throw new NamraException(StatusCode.FailedPrecondition, $"Run {runId} waited past its approval_timeout ({run.ApprovalDeadline.ToDateTimeOffset():u}): it ends as approval_expired.");
            }

            var chosen = ids.Count > 0 ? ids : [.. run.Approvals.Where(a => a.State == ApprovalState.Pending).Select(a => a.ToolCall.Id)];
            var decided = new List<ToolApproval>();
            foreach (var id in chosen.Distinct(StringComparer.Ordinal))
            {
                // The call waiting under this id (a model may reuse ids across turns), else the last one decided.
                var approval = run.Approvals.FirstOrDefault(a => a.ToolCall.Id == id && a.State == ApprovalState.Pending)
                    ?? run.Approvals.LastOrDefault(a => a.ToolCall.Id == id)
                    ?? throw new InvalidArgumentException("tool_call_ids", $"Run {runId} waits on no tool call '{id}'; it waits on {string.Join(", ", run.Approvals.Where(a => a.State == ApprovalState.Pending).Select(a => a.ToolCall.Id))}.");
                if (approval.State != ApprovalState.Pending)
                {
                    throw new NamraException(StatusCode.FailedPrecondition,
                        $"The call '{id}' was {(approval.State == ApprovalState.Approved ? "approved" : "denied")} already{(approval.DecidedBy.Length > 0 ? $" by {approval.DecidedBy}" : "")} at {approval.DecideTime?.ToDateTimeOffset():u}.");
                }

                approval.State = approve ? ApprovalState.Approved : ApprovalState.Denied;
                approval.DecidedBy = decidedBy;
                approval.DecisionReason = reason;
                approval.DecideTime = Timestamp.FromDateTimeOffset(now);
                if (arguments.TryGetValue(id, out var edited))
                {
                    approval.ArgumentsJson = await CheckedAsync(run, approval.ToolCall, edited, deadline, cancellationToken).ConfigureAwait(false);
                }

                decided.Add(approval.Clone());
            }

            if (arguments.Keys.FirstOrDefault(key => !decided.Exists(a => a.ToolCall.Id == key)) is { } stray)
            {
                throw new InvalidArgumentException($"arguments_json[{stray}]", "Arguments are set only for calls this request approves.");
            }

            var resumable = run.Approvals.All(a => a.State != ApprovalState.Pending);
            if (resumable)
            {
                Resumable(run, now);
            }

            try
            {
                var updated = await downstream.Memory.UpdateRunRecordAsync(new UpdateRunRecordRequest
                {
                    Run = run,
                    Etag = run.Etag,
                    Journal = { new RunJournalEntry { Sequence = run.JournalLength + 1, Time = Timestamp.FromDateTimeOffset(now), ApprovalsDecided = new ApprovalsDecided { Approvals = { decided } } } },
                }, deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
                Record(run, decided, now);
                activity?.SetTag("gen_ai.agent.name", run.Agent?.Name);
                activity?.SetTag("gen_ai.tool.name", string.Join(",", decided.Select(a => a.ToolCall.Name).Distinct(StringComparer.Ordinal)));
                activity?.SetTag("namra.approval.calls", decided.Count);
                activity?.SetTag("namra.run.resumable", resumable);
                if (resumable)
                {
                    recovery.ClaimSoon(tenant, runId);
                }

                return updated.Run;
            }
            catch (DownstreamException exception) when (exception.StatusCode == StatusCode.Aborted && attempt < MaxAttempts)
            {
                // Someone else decided, or the run moved on, since it was read: read it again.
            }
        }
    }

    /// <summary>
    /// Cancels a run that waits for approval (as read, under its etag): it becomes resumable with the cancel request on
    /// its record, and the replica that claims it ends it as cancelled, its waiting calls answered as not run.
    /// </summary>
    public async Task<Run> CancelWaitingAsync(Run run, string reason, DateTime? deadline, CancellationToken cancellationToken)
    {
        run.CancelRequested = true;
        run.CancelReason = reason;
        Resumable(run, timeProvider.GetUtcNow());
        var updated = await downstream.Memory.UpdateRunRecordAsync(new UpdateRunRecordRequest { Run = run, Etag = run.Etag }, deadline: deadline, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        recovery.ClaimSoon(run.Tenant, run.RunId);
        return updated.Run;
    }

    // Running with a lease that has lapsed: any replica claims it. The time it waited does not count against its timeout.
    private static void Resumable(Run run, DateTimeOffset now)
    {
        var since = run.Approvals.Select(a => a.RequestTime.ToDateTimeOffset()).Where(t => t <= now).DefaultIfEmpty(now).Max();
        run.ApprovalWait = Duration.FromTimeSpan((run.ApprovalWait?.ToTimeSpan() ?? TimeSpan.Zero) + (now - since));
        run.Status = RunStatus.Running;
        run.Lease = new RunLease { Owner = "", ExpireTime = Timestamp.FromDateTimeOffset(now) };
    }

    // Arguments a person set instead of the model's: a JSON object the tool's schema accepts.
    private async Task<string> CheckedAsync(Run run, ToolCall call, string json, DateTime deadline, CancellationToken cancellationToken)
    {
        var field = $"arguments_json[{call.Id}]";
        JsonElement arguments;
        try
        {
            using var document = JsonDocument.Parse(json);
            arguments = document.RootElement.Clone();
        }
        catch (JsonException exception)
        {
            throw new InvalidArgumentException(field, $"Not JSON: {exception.Message}");
        }

        if (arguments.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidArgumentException(field, "Arguments are a JSON object.");
        }

        // The agent and its tools are in the first step.
        var journal = await downstream.Memory.GetRunJournalAsync(new GetRunJournalRequest { RunId = run.RunId, Tenant = run.Tenant, PageSize = 1 }, deadline: deadline, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        if (journal.Entries is not [{ Began: { } began }, ..])
        {
            throw new NamraException(StatusCode.FailedPrecondition, $"Run {run.RunId} has no journal to check the arguments against.");
        }

        var tools = await resolved.ToolsAsync(run.Agent, began.Untrusted, () => downstream.ToolExecutor.ListToolsAsync(
            new ListToolsRequest { Tools = { began.Agent.Tools }, Context = new ToolCallContext { RunId = run.RunId, AgentName = began.Agent.Name, Untrusted = began.Untrusted } },
            deadline: deadline, cancellationToken: cancellationToken).ResponseAsync).ConfigureAwait(false);
        if (tools.Tools.FirstOrDefault(t => t.Name == call.Name) is { } tool && validator.Validate(tool.InputSchemaJson, arguments) is { Count: > 0 } problems)
        {
            throw new InvalidArgumentException(field, $"The arguments do not match {call.Name}'s schema: {string.Join("; ", problems)}.");
        }

        return arguments.GetRawText();
    }

    private static void Record(Run run, List<ToolApproval> decided, DateTimeOffset now)
    {
        var agent = OrchestratorTelemetry.AgentLabel(run.Agent?.Name ?? "");
        foreach (var approval in decided)
        {
            OrchestratorTelemetry.ApprovalsDecided.Add(1, agent, approval.State == ApprovalState.Approved ? "approved" : "denied");
            OrchestratorTelemetry.ApprovalWait.Record((now - approval.RequestTime.ToDateTimeOffset()).TotalSeconds, agent);
        }
    }
}
