using Grpc.Core;
using Microsoft.Extensions.Options;
using Namra.Contracts;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Loop;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator;

/// <summary>
/// The <c>namra.v1.AgentService</c> endpoint, the public API: resolves the agent with the config service, runs
/// the loop, and reads run records from the memory service, so any replica answers for any run.
/// </summary>
internal sealed class AgentGrpcService(RunLoop loop, Downstream downstream, RunCancellation cancellation, ResolvedAgents resolved, RunApprovals approvals, Access.TenantLimits limits,
    Access.TenantQuotas quotas, IOptions<OrchestratorOptions> options)
    : AgentService.AgentServiceBase
{
    private const int MaxDecisionText = 4096;

    public override async Task<ExecuteResponse> Execute(ExecuteRequest request, ServerCallContext context)
    {
        var run = await StartAsync(request.Agent, request.Input, request.SessionId, request.Labels, request.RunId, emit: null, context).ConfigureAwait(false);
        Access.AuditLog.Note(context, Access.AuditLog.Facts.Of(run));
        return new ExecuteResponse { Run = run };
    }

    public override async Task ExecuteStream(ExecuteStreamRequest request, IServerStreamWriter<ExecuteStreamResponse> responseStream, ServerCallContext context)
    {
        var run = await StartAsync(request.Agent, request.Input, request.SessionId, request.Labels, request.RunId,
            item => responseStream.WriteAsync(new ExecuteStreamResponse { Event = item }, context.CancellationToken), context).ConfigureAwait(false);
        Access.AuditLog.Note(context, Access.AuditLog.Facts.Of(run));
    }

    public override async Task<GetRunResponse> GetRun(GetRunRequest request, ServerCallContext context)
    {
        Require(request.RunId, "run_id");
        var record = await downstream.Memory.GetRunRecordAsync(
            new GetRunRecordRequest { RunId = request.RunId, Tenant = TenantOf(context) }, deadline: context.Deadline, cancellationToken: context.CancellationToken).ConfigureAwait(false);
        Access.AuditLog.Note(context, new Access.AuditLog.Facts(record.Run.Agent?.Name ?? "", record.Run.RunId));
        return new GetRunResponse { Run = record.Run };
    }

    public override async Task<CancelRunResponse> CancelRun(CancelRunRequest request, ServerCallContext context)
    {
        Require(request.RunId, "run_id");
        var run = await cancellation.CancelAsync(TenantOf(context), request.RunId, request.Reason, context.Deadline, context.CancellationToken,
            record => Access.AuditLog.Note(context, new Access.AuditLog.Facts(record.Agent?.Name ?? "", record.RunId))).ConfigureAwait(false);
        return new CancelRunResponse { Run = run };
    }

    public override async Task<ApproveToolCallsResponse> ApproveToolCalls(ApproveToolCallsRequest request, ServerCallContext context)
    {
        CheckDecision(request.RunId, request.Reason, request.DecidedBy);
        var run = await approvals.DecideAsync(TenantOf(context), request.RunId, request.ToolCallIds, approve: true, request.Reason, DecidedBy(request.DecidedBy, context), request.ArgumentsJson,
            context.Deadline, context.CancellationToken).ConfigureAwait(false);
        Access.AuditLog.Note(context, new Access.AuditLog.Facts(run.Agent?.Name ?? "", run.RunId));
        return new ApproveToolCallsResponse { Run = run };
    }

    public override async Task<DenyToolCallsResponse> DenyToolCalls(DenyToolCallsRequest request, ServerCallContext context)
    {
        CheckDecision(request.RunId, request.Reason, request.DecidedBy);
        var run = await approvals.DecideAsync(TenantOf(context), request.RunId, request.ToolCallIds, approve: false, request.Reason, DecidedBy(request.DecidedBy, context),
            new Dictionary<string, string>(), context.Deadline, context.CancellationToken).ConfigureAwait(false);
        Access.AuditLog.Note(context, new Access.AuditLog.Facts(run.Agent?.Name ?? "", run.RunId));
        return new DenyToolCallsResponse { Run = run };
    }

    // Who decided, for the record: as the caller says, and with keys, the key that was used (a caller cannot pass as another key).
    private static string DecidedBy(string given, ServerCallContext context) => Access.AccessInterceptor.Of(context) is var principal && principal == Access.Principal.Unrestricted
        ? given
        : given.Length > 0 ? $"{given} (key {principal.Id})" : $"key {principal.Id}";

    // Every read and change of runs is the caller's tenant's: another tenant's run is not found.
    private static string TenantOf(ServerCallContext context) => Access.AccessInterceptor.Of(context).Tenant;

    private static void CheckDecision(string runId, string reason, string decidedBy)
    {
        Require(runId, "run_id");
        if (reason.Length > MaxDecisionText)
        {
            throw new InvalidArgumentException("reason", $"At most {MaxDecisionText} characters; it has {reason.Length}.");
        }

        if (decidedBy.Length > 256)
        {
            throw new InvalidArgumentException("decided_by", $"At most 256 characters; it has {decidedBy.Length}.");
        }
    }

    public override async Task<ListRunsResponse> ListRuns(ListRunsRequest request, ServerCallContext context)
    {
        var full = request.View == RunView.Full;
        var maxPage = full ? MaxFullPage : 1000;
        if (request.PageSize is < 0 || request.PageSize > maxPage)
        {
            throw new InvalidArgumentException("page_size", $"1 to {maxPage} in the {(full ? "full" : "basic")} view (0 for {(full ? MaxFullPage : 100)}); it was {request.PageSize}.");
        }

        if (!Enum.IsDefined(request.Status))
        {
            throw new InvalidArgumentException("status", $"{(int)request.Status} is not a run status.");
        }

        if (!Enum.IsDefined(request.View))
        {
            throw new InvalidArgumentException("view", $"{(int)request.View} is not a view: RUN_VIEW_BASIC or RUN_VIEW_FULL.");
        }

        var records = await downstream.Memory.ListRunRecordsAsync(new ListRunRecordsRequest
        {
            PageSize = request.PageSize > 0 ? request.PageSize : full ? MaxFullPage : 0,
            PageToken = request.PageToken,
            Tenant = TenantOf(context),
            AgentName = request.AgentName,
            SessionId = request.SessionId,
            Status = request.Status,
        }, deadline: context.Deadline, cancellationToken: context.CancellationToken).ConfigureAwait(false);
        if (!full)
        {
            foreach (var run in records.Runs)
            {
                run.Input = "";
                run.Answer = "";
                run.Ledger.Clear();
            }
        }

        return new ListRunsResponse { Runs = { records.Runs }, NextPageToken = records.NextPageToken };
    }

    private const int MaxFullPage = 10;

    public override Task<GetUsageResponse> GetUsage(GetUsageRequest request, ServerCallContext context) =>
        quotas.UsageAsync(TenantOf(context), context.CancellationToken);

    // The operator (a caller of the default tenant) reads every tenant's entries; any other caller its own tenant's.
    public override async Task<ListAuditResponse> ListAudit(ListAuditRequest request, ServerCallContext context)
    {
        var tenant = TenantOf(context);
        var listed = await downstream.Memory.ListAuditEntriesAsync(new ListAuditEntriesRequest
        {
            AfterSequence = request.AfterSequence, PageSize = request.PageSize, Tenant = tenant == Tenants.Default ? "" : tenant,
        }, deadline: context.Deadline, cancellationToken: context.CancellationToken).ConfigureAwait(false);
        return new ListAuditResponse { Entries = { listed.Entries }, More = listed.More };
    }

    public override async Task<ValidateAgentResponse> ValidateAgent(ValidateAgentRequest request, ServerCallContext context)
    {
        if (request.Agent is null)
        {
            throw new InvalidArgumentException("agent", "Send the agent definition to validate.");
        }

        var result = await downstream.Config.ValidateAgentDefinitionAsync(
            new ValidateAgentDefinitionRequest { Agent = request.Agent }, deadline: context.Deadline, cancellationToken: context.CancellationToken).ConfigureAwait(false);
        var response = new ValidateAgentResponse { Valid = result.Valid, Diagnostics = { result.Diagnostics }, Ref = result.Ref };
        if (result.Valid)
        {
            // What the file cannot say by itself: whether the gateway can price a cost budget's models.
            var agent = await downstream.Config.ResolveAgentAsync(
                new ResolveAgentRequest { Source = new AgentSource { Inline = request.Agent } }, deadline: context.Deadline, cancellationToken: context.CancellationToken).ConfigureAwait(false);
            if (await CostBudgetPrices.UnpricedModelAsync(downstream, agent.Agent, context.CancellationToken).ConfigureAwait(false) is { } unpriced)
            {
                response.Valid = false;
                response.Diagnostics.Add(new Diagnostic
                {
                    Severity = Severity.Error, Code = "NAMRA0110", Message = CostBudgetPrices.Problem(unpriced), File = request.Agent.FileName,
                    FieldPath = CostBudgetPrices.Field, Hint = CostBudgetPrices.Hint(unpriced),
                });
            }
        }

        return response;
    }

    private async Task<Run> StartAsync(AgentSource? source, string input, string sessionId, IDictionary<string, string> labels, string runId,
        Func<RunEvent, Task>? emit, ServerCallContext context)
    {
        if (source is null || source.SourceCase == AgentSource.SourceOneofCase.None)
        {
            throw new InvalidArgumentException("agent", "Name the agent (reference: name@version) or send it inline.");
        }

        // In bytes, as the memory service stores it: a non-ASCII input within a character limit could run in full,
        // model calls and tools included, and then fail to save.
        if (input.Length == 0 || (input.Length > MessageLimits.MaxInputBytes / 3 && System.Text.Encoding.UTF8.GetByteCount(input) > MessageLimits.MaxInputBytes))
        {
            throw new InvalidArgumentException("input", $"Send 1 to {MessageLimits.MaxInputBytes:N0} bytes of input (UTF-8); this is {System.Text.Encoding.UTF8.GetByteCount(input):N0}.");
        }

        if (runId.Length > 128 || runId.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')))
        {
            throw new InvalidArgumentException("run_id", "At most 128 letters, digits, '-', '_' or '.'.");
        }

        var agent = await resolved.ResolveAsync(source, () => downstream.Config.ResolveAgentAsync(
            new ResolveAgentRequest { Source = source }, deadline: context.Deadline, cancellationToken: context.CancellationToken).ResponseAsync).ConfigureAwait(false);
        var principal = Access.AccessInterceptor.Of(context);
        if (!principal.MayRun(agent.Ref.Name))
        {
            throw new NamraException(StatusCode.PermissionDenied, $"The key '{principal.Id}' may run only the agents {string.Join(", ", principal.AgentPatterns)}; not {agent.Ref.Name}.",
                [new Google.Rpc.ErrorInfo { Reason = "AGENT_NOT_ALLOWED", Domain = "namra.dev", Metadata = { ["agent"] = agent.Ref.Name, ["key"] = principal.Id } }]);
        }

        // An inline definition from the network is the caller's, and carries its tools' authority only for a caller granted
        // run_inline_tools (or every caller, with OrchestratorOptions.TrustInlineAgents); otherwise the tool executor
        // judges its tools.
        var untrusted = source.SourceCase == AgentSource.SourceOneofCase.Inline && !options.Value.TrustInlineAgents && !principal.Has(Access.Permission.RunInlineTools)
            && !InProcessCalls.IsInProcess(context);
        var request = new RunRequest(agent.Agent, agent.Ref, input, sessionId, new Dictionary<string, string>(labels),
            runId.Length > 0 ? runId : Guid.CreateVersion7().ToString("N"), untrusted, principal.Tenant) { AgentPatterns = principal.AgentPatterns };
        if (runId.Length > 0 && await ExistingRunAsync(request, context).ConfigureAwait(false) is { } existing)
        {
            return await RepeatAsync(existing, emit, context).ConfigureAwait(false);
        }

        // A tenant at its spending quota starts nothing; one within it is counted among its runs until the run ends or waits.
        await quotas.AdmitAsync(principal.Tenant, agent.Agent, context.CancellationToken).ConfigureAwait(false);
        await using var slot = await limits.AdmitRunAsync(principal.Tenant, agent.Ref.Name, request.RunId, context).ConfigureAwait(false);
        try
        {
            return await loop.RunAsync(request, emit, context.CancellationToken).ConfigureAwait(false);
        }
        catch (DownstreamException exception) when (exception.StatusCode == StatusCode.AlreadyExists)
        {
            // The same request arrived twice at once, and the other delivery created the run first.
            return await RepeatAsync(await ExistingRunAsync(request, context).ConfigureAwait(false)
                ?? throw new NamraException(StatusCode.AlreadyExists, exception.Message, innerException: exception), emit, context).ConfigureAwait(false);
        }
    }

    // Execute is idempotent by run_id: the run a repeated request names, when there is one; the same id for another
    // request (another agent, input or session) is ALREADY_EXISTS.
    private async Task<Run?> ExistingRunAsync(RunRequest request, ServerCallContext context)
    {
        Run existing;
        try
        {
            existing = (await downstream.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = request.RunId, Tenant = request.Tenant },
                deadline: context.Deadline, cancellationToken: context.CancellationToken).ConfigureAwait(false)).Run;
        }
        catch (DownstreamException exception) when (exception.StatusCode == StatusCode.NotFound)
        {
            return null;
        }

        var same = existing.Agent?.Name == request.Ref.Name && existing.Agent?.Version == request.Ref.Version
            && existing.Agent?.ContentHash == request.Ref.ContentHash && existing.Input == request.Input && existing.SessionId == request.SessionId;
        return same ? existing : throw new NamraException(StatusCode.AlreadyExists,
            $"run_id '{request.RunId}' names another run (agent {existing.Agent?.Name}@{existing.Agent?.Version}, another input or session); a repeated request gets its run, a new request needs a new id.");
    }

    // A repeated request gets the run: at once when it has ended, else when it ends (on whichever replica runs it).
    private async Task<Run> RepeatAsync(Run run, Func<RunEvent, Task>? emit, ServerCallContext context)
    {
        while (run.Status is RunStatus.Running or RunStatus.Pending)
        {
            await Task.Delay(RepeatPollInterval, context.CancellationToken).ConfigureAwait(false);
            run = (await downstream.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = run.RunId, Tenant = run.Tenant },
                deadline: context.Deadline, cancellationToken: context.CancellationToken).ConfigureAwait(false)).Run;
        }

        if (emit is not null && run.Status == RunStatus.AwaitingApproval)
        {
            // A stream repeated while the run waits gets what it waits for.
            var waiting = RunEvents.Waiting(run);
            (waiting.RunId, waiting.Sequence, waiting.Time) = (run.RunId, Math.Max(1, run.EventsSummary?.Events ?? 0), run.UpdateTime);
            await emit(waiting).ConfigureAwait(false);
        }
        else if (emit is not null)
        {
            // A stream repeated gets the run's last event, as it was numbered and timed: how it ended.
            var last = RunEvents.Ended(run);
            (last.RunId, last.Sequence, last.Time) = (run.RunId, Math.Max(1, run.EventsSummary?.Events ?? 0), run.EndTime ?? run.UpdateTime);
            await emit(last).ConfigureAwait(false);
        }

        return run;
    }

    private static readonly TimeSpan RepeatPollInterval = TimeSpan.FromMilliseconds(200);

    private static void Require(string value, string field)
    {
        if (value.Length == 0)
        {
            throw new InvalidArgumentException(field, "Required.");
        }
    }
}
