using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Agents called as tools (<c>type: agent</c>). Each call is a child run of the agent, on this replica: its budget is
/// set aside from the caller's before it starts (the smallest of its own, the entry's cap and its share of what the
/// caller has left), its deadline is within the caller's, cancelling the caller cancels it, its events go to the
/// caller's stream, its spans under the call's, its record names the caller's run and call; its answer is the result.
/// A call sent again after its replica was lost finds the child by its id (the caller's run id and the call id) and
/// waits for it instead of starting another.
/// </summary>
internal sealed class ChildRuns(
    Downstream downstream,
    ResolvedAgents resolved,
    ArgumentValidator validator,
    IServiceProvider services,
    IOptions<OrchestratorOptions> options,
    TimeProvider timeProvider)
{
    /// <summary>The arguments an agent takes as a tool: the task, as text.</summary>
    public const string InputSchema =
        """{"type":"object","properties":{"input":{"type":"string","description":"The task for the agent, with everything it needs to know: it sees nothing else of this conversation."}},"required":["input"],"additionalProperties":false}""";

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan CancelTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The tool the model sees for an entry: the entry's name, its description (or the agent's), and <see cref="InputSchema"/>.</summary>
    public async Task<ToolDefinition> DescribeAsync(ToolConfig entry, CancellationToken cancellationToken)
    {
        var child = await ResolveAsync(entry, cancellationToken).ConfigureAwait(false);
        var description = entry.Description.Length > 0 ? entry.Description
            : $"Asks the agent {child.Ref.Name}" + (child.Agent.Description.Length > 0 ? $" ({child.Agent.Description.TrimEnd('.')})" : "") + " and returns its answer.";
        return new ToolDefinition { Name = entry.Name, Description = description, InputSchemaJson = SchemaOf(child.Agent), Source = entry.Name, Idempotent = false };
    }

    /// <summary>
    /// Runs one call of an agent: the <paramref name="index"/>-th of <paramref name="count"/> calls of agents in its
    /// turn (they share what the caller has left). <paramref name="resumed"/> when the call was in flight on a lost replica.
    /// </summary>
    public async Task<ToolResult> RunAsync(RunContext parent, ToolConfig entry, ToolCall call, bool resumed, int index, int count, CancellationToken cancellationToken)
    {
        var maxCalls = options.Value.MaxAgentCallsPerTurn;
        if (index >= maxCalls)
        {
            return Error(call, $"The agent was not called: one turn may call at most {maxCalls} agents (Namra:Orchestrator:MaxAgentCallsPerTurn), and this turn called {count}.");
        }

        var depth = parent.Request.Depth + 1;
        if (depth > options.Value.MaxAgentDepth)
        {
            return Error(call, $"The agent was not called: agents may call agents {options.Value.MaxAgentDepth} deep (Namra:Orchestrator:MaxAgentDepth), and this call would be {depth} deep.");
        }

        ResolveAgentResponse child;
        try
        {
            child = await ResolveAsync(entry, cancellationToken).ConfigureAwait(false);
        }
        catch (DownstreamException exception) when (exception.StatusCode is StatusCode.NotFound or StatusCode.FailedPrecondition or StatusCode.InvalidArgument)
        {
            return Error(call, $"The agent {entry.Agent?.Agent} cannot run: {exception.Status.Detail}");
        }

        var (input, problem) = InputOf(child.Agent, call);
        if (input is null)
        {
            return Error(call, problem ?? "The agent was not called: its arguments were not understood.");
        }

        if (!Access.Principal.Allows(parent.Request.AgentPatterns, child.Ref.Name))
        {
            return Error(call, $"The agent {child.Ref.Name} was not called: the key that started this run may run only the agents {string.Join(", ", parent.Request.AgentPatterns)}.");
        }

        var runId = ChildRunId(parent.Request.RunId, call.Id);
        using var activity = OrchestratorTelemetry.ActivitySource.StartActivity($"execute_tool {call.Name}");
        activity?.SetTag("gen_ai.operation.name", "execute_tool");
        activity?.SetTag("gen_ai.tool.name", call.Name);
        activity?.SetTag("gen_ai.tool.call.id", call.Id);
        activity?.SetTag("gen_ai.tool.type", "agent");
        activity?.SetTag("gen_ai.agent.name", child.Ref.Name);
        activity?.SetTag("namra.run.id", parent.Request.RunId);
        activity?.SetTag("namra.child_run.id", runId);

        var (reservation, refusal) = parent.Budget.ReserveChild(child.Agent.Execution?.Budget, entry.Agent?.Budget, count);
        if (reservation is null)
        {
            return Error(call, $"The agent {child.Ref.Name} was not called: {refusal}");
        }

        Run ended;
        try
        {
            ended = (resumed ? await ExistingAsync(parent, runId, cancellationToken).ConfigureAwait(false) : null) is { } existing
                ? await EndOfAsync(existing, parent.Deadline, cancellationToken).ConfigureAwait(false)
                : await StartAsync(parent, child, reservation.Budget, call, runId, input, depth, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidArgumentException exception)
        {
            // Refused before it started (a cost budget on a model without a price): nothing was spent.
            parent.Budget.SettleChild(reservation, [], 0);
            return Error(call, $"The agent {child.Ref.Name} cannot run: {exception.Message}");
        }
        catch
        {
            // Stopped with the caller (cancelled, timed out): what the child spent is on its own record; this run keeps
            // the reservation counted, the worst case.
            activity?.SetStatus(ActivityStatusCode.Error);
            throw;
        }

        parent.Budget.SettleChild(reservation, ended.Ledger, ended.EventsSummary?.ToolCalls ?? 0);
        parent.State.AddChild(ended, parent.State.Run.Iterations);
        activity?.SetTag("namra.child_run.status", RunLoop.StatusName(ended.Status));
        if (ended.Status != RunStatus.Completed)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ended.Error?.Message);
            return Error(call, $"The agent {child.Ref.Name} did not answer: its run {ended.RunId} ended {RunLoop.StatusName(ended.Status)}" +
                (ended.Error is { Message.Length: > 0 } error ? $" ({error.Message})" : "") + ".");
        }

        return new ToolResult { ToolCallId = call.Id, Content = ended.Answer };
    }

    // The child run: the agent's definition with the budget set aside and a timeout within the caller's deadline.
    private async Task<Run> StartAsync(RunContext parent, ResolveAgentResponse child, Budget budget, ToolCall call, string runId, string input, int depth, CancellationToken cancellationToken)
    {
        var definition = child.Agent.Clone();
        definition.Execution ??= new ExecutionConfig();
        definition.Execution.Budget = budget;
        var own = definition.Execution.Timeout?.ToTimeSpan() is { } configured && configured > TimeSpan.Zero ? configured : Contracts.ExecutionDefaults.Timeout;
        var left = parent.Deadline - timeProvider.GetUtcNow().UtcDateTime;
        definition.Execution.Timeout = Duration.FromTimeSpan(left < own ? (left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1)) : own);
        var request = new RunRequest(definition, child.Ref, input, SessionId: "", new Dictionary<string, string>(), runId, Untrusted: false, parent.Request.Tenant)
        {
            AgentPatterns = parent.Request.AgentPatterns,
            ParentRunId = parent.Request.RunId,
            ParentToolCallId = call.Id,
            Depth = depth,
        };
        Func<RunEvent, Task>? emit = parent.State.Streamed
            ? item => parent.State.EmitAsync(new RunEvent { Child = new ChildRunEvent { ToolCallId = call.Id, Event = item } })
            : null;
        try
        {
            var run = await services.GetRequiredService<RunLoop>().RunAsync(request, emit, cancellationToken).ConfigureAwait(false);

            // Waiting for a person to approve its calls (its approval_required is in this run's stream): this run waits
            // with it, and goes on once a decision resumes it, on whichever replica.
            return run.Status == RunStatus.AwaitingApproval ? await EndOfAsync(run, parent.Deadline, cancellationToken).ConfigureAwait(false) : run;
        }
        catch (DownstreamException exception) when (exception.StatusCode == StatusCode.AlreadyExists)
        {
            // The call was started before (its result was not journaled when the caller's replica was lost).
            var existing = await ExistingAsync(parent, runId, cancellationToken).ConfigureAwait(false)
                ?? throw new NamraException(StatusCode.Aborted, $"The child run {runId} exists and cannot be read.", innerException: exception);
            return await EndOfAsync(existing, parent.Deadline, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<Run?> ExistingAsync(RunContext parent, string runId, CancellationToken cancellationToken)
    {
        try
        {
            return (await downstream.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = runId, Tenant = parent.Request.Tenant },
                deadline: parent.Deadline, cancellationToken: cancellationToken).ConfigureAwait(false)).Run;
        }
        catch (DownstreamException exception) when (exception.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
    }

    // A child run that this replica does not drive (resumed elsewhere, or waiting for a person): waited for until it ends.
    // When the caller stops first, so does the child.
    private async Task<Run> EndOfAsync(Run run, DateTime deadline, CancellationToken cancellationToken)
    {
        try
        {
            while (run.Status is RunStatus.Running or RunStatus.Pending or RunStatus.AwaitingApproval)
            {
                await Task.Delay(PollInterval, timeProvider, cancellationToken).ConfigureAwait(false);
                run = (await downstream.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = run.RunId, Tenant = run.Tenant },
                    deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false)).Run;
            }

            return run;
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            using var limit = new CancellationTokenSource(CancelTimeout, timeProvider);
            try
            {
                await services.GetRequiredService<RunCancellation>().CancelAsync(run.Tenant, run.RunId, "The run that called it stopped.", null, limit.Token).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is DownstreamException or NamraException or OperationCanceledException)
            {
                // Not cancelled now: it ends at its own deadline, within the caller's.
            }

            throw;
        }
    }

    private Task<ResolveAgentResponse> ResolveAsync(ToolConfig entry, CancellationToken cancellationToken) => ResolveAsync(entry.Agent?.Agent ?? "", cancellationToken);

    /// <summary>The agent <paramref name="reference"/> names, as the config service resolves it (kept a short while).</summary>
    public Task<ResolveAgentResponse> ResolveAsync(string reference, CancellationToken cancellationToken)
    {
        var source = new AgentSource { Reference = reference };
        return resolved.ResolveAsync(source, () => downstream.Config.ResolveAgentAsync(new ResolveAgentRequest { Source = source }, cancellationToken: cancellationToken).ResponseAsync);
    }

    /// <summary>
    /// The child run's id: the caller's run id and the call id, the same for every delivery of the call; hashed when that
    /// is not a run id (too long, or characters a run id does not take).
    /// </summary>
    public static string ChildRunId(string parentRunId, string callId)
    {
        var id = $"{parentRunId}.{callId}";
        if (id.Length <= 128 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            return id;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)));
        return hash[..32] + "." + hash[32..48];
    }

    // The tool's arguments: those the agent declares (input_schema), else its one input text.
    private static string SchemaOf(AgentDefinition agent) => agent.InputSchema is { } schema ? JsonFormatter.Default.Format(schema) : InputSchema;

    // The child run's input: the call's arguments as JSON when the agent declares them (checked against its schema),
    // else the text of `input`; or why the call cannot be made.
    private (string? Input, string? Problem) InputOf(AgentDefinition agent, ToolCall call)
    {
        if (agent.InputSchema is null)
        {
            return ToolArguments.Text(call, "input", Contracts.MessageLimits.MaxInputBytes) is { } text ? (text, null) : (null, "Call the agent with {\"input\": \"...\"}: the task for it, as text.");
        }

        try
        {
            using var arguments = JsonDocument.Parse(call.ArgumentsJson.Length > 0 ? call.ArgumentsJson : "{}", new JsonDocumentOptions { MaxDepth = 64 });
            var problems = validator.Validate(SchemaOf(agent), arguments.RootElement);
            return problems.Count > 0 ? (null, "The arguments do not match the agent's input_schema: " + string.Join("; ", problems))
                : arguments.RootElement.GetRawText().Length > Contracts.MessageLimits.MaxInputBytes ? (null, "The arguments are too large to be an agent's input.")
                : (arguments.RootElement.GetRawText(), null);
        }
        catch (JsonException exception)
        {
            return (null, $"The arguments are not JSON: {exception.Message}");
        }
    }

    private static ToolResult Error(ToolCall call, string message) => new() { ToolCallId = call.Id, IsError = true, Content = message };
}
