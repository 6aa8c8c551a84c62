using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// One run's record as it grows, its new messages, and its event stream (sequenced, one writer at a time); with no
/// <c>emit</c>, nobody reads the events (a unary <c>Execute</c>): they are only counted.
/// </summary>
internal sealed class RunState(Run run, Func<RunEvent, Task>? emit, int maxEvents, TimeProvider timeProvider) : IDisposable
{
    private readonly SemaphoreSlim _emitting = new(1, 1);
    private readonly Lock _counting = new();
    private int _messageIndex;

    public Run Run => run;

    /// <summary>Whether a caller reads the events as they happen (so text deltas are worth producing).</summary>
    public bool Streamed => emit is not null;

    /// <summary>Messages this run added to the conversation, in order.</summary>
    public List<Message> NewMessages { get; } = [];

    /// <summary>The sequence number of the last event sent (events are numbered from 1): how many were sent.</summary>
    public long Sequence { get; private set; }

    public async Task EmitAsync(RunEvent item)
    {
        if (emit is null)
        {
            Count(capped: true);
            return;
        }

        await _emitting.WaitAsync().ConfigureAwait(false);
        try
        {
            if (Sequence >= maxEvents)
            {
                throw TooManyEvents();
            }

            await SendAsync(item).ConfigureAwait(false);
        }
        finally
        {
            _emitting.Release();
        }
    }

    /// <summary>The last event, sent even when the event cap was reached.</summary>
    public async Task EmitFinalAsync(RunEvent item)
    {
        if (emit is null)
        {
            Count(capped: false);
            return;
        }

        await _emitting.WaitAsync().ConfigureAwait(false);
        try
        {
            await SendAsync(item).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is RpcException or OperationCanceledException or InvalidOperationException)
        {
            // The caller has gone; the record says how the run ended.
        }
        finally
        {
            _emitting.Release();
        }
    }

    // An event nobody reads (a unary Execute) is only counted, under the same cap (the last event passes it);
    // parallel tool calls count at once.
    private void Count(bool capped)
    {
        lock (_counting)
        {
            if (capped && Sequence >= maxEvents)
            {
                throw TooManyEvents();
            }

            Sequence++;
        }
    }

    private Hosting.Errors.NamraException TooManyEvents() =>
        new(StatusCode.ResourceExhausted, $"The run produced more than {maxEvents:N0} events (Namra:Orchestrator:MaxRunEvents).");

    // Numbers and stamps the event, and hands it to the caller.
    private Task SendAsync(RunEvent item)
    {
        item.RunId = run.RunId;
        item.Sequence = ++Sequence;
        item.Time = Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow());
        return emit!(item);
    }

    /// <summary>A new message of this run, with an id that makes saving it again harmless.</summary>
    public Message NewMessage(Role role, params ContentBlock[] content) =>
        Keep(new Message { Role = role, Content = { content } });

    /// <summary>The message of a turn's tool results, in the order of its calls, fitted to the message limit (<see cref="ToolResultFit"/>).</summary>
    public Message NewToolResults(IEnumerable<ToolResult> results) => NewMessage(Role.Tool, ToolResultFit.Blocks(results));

    /// <summary>Adds a message to those this run saves, giving it the run's next message id.</summary>
    public Message Keep(Message message)
    {
        message.Id = $"{run.RunId}-{_messageIndex++}";
        message.CreateTime ??= Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow());
        NewMessages.Add(message);
        return message;
    }

    /// <summary>
    /// Adds a model call's usage and cost to the run's. A call whose cost is unknown (a model without a price, a
    /// provider that reported no usage) makes the run's cost unknown for good: unset, never a sum that counts it as $0,
    /// and the record says why (<c>cost_unknown</c>, the first reason given).
    /// </summary>
    public void AddUsage(TokenUsage? usage, Cost? cost, string model)
    {
        run.Usage.InputTokens += usage?.InputTokens ?? 0;
        run.Usage.OutputTokens += usage?.OutputTokens ?? 0;
        run.Usage.CacheCreationInputTokens += usage?.CacheCreationInputTokens ?? 0;
        run.Usage.CacheReadInputTokens += usage?.CacheReadInputTokens ?? 0;
        if (cost is null || usage is null)
        {
            CostUnknown(usage is null ? $"the provider reported no usage for {model}" : $"no price for {model}");
            return;
        }

        if (run.Cost is { } total)
        {
            total.TotalUsd += cost.TotalUsd;
            total.InputUsd += cost.InputUsd;
            total.OutputUsd += cost.OutputUsd;
            total.CacheWriteUsd += cost.CacheWriteUsd;
            total.CacheReadUsd += cost.CacheReadUsd;
        }
    }

    /// <summary>
    /// Adds the provider requests of a model call to the run's ledger. A request whose outcome is unknown may have
    /// been billed any amount up to its worst case: the run's cost is unknown from then on.
    /// </summary>
    public void Record(IEnumerable<ProviderAttempt> attempts, int iteration)
    {
        foreach (var attempt in attempts)
        {
            attempt.Iteration = iteration;
            run.Ledger.Add(attempt);
            if (attempt.Outcome == AttemptOutcome.Unknown)
            {
                CostUnknown($"a request to {attempt.Model} of unknown outcome"
                    + (attempt.ChargedTokens > 0 ? $", charged up to {attempt.ChargedTokens:N0} tokens" : "")
                    + (attempt.ChargedCost is { } charged ? $" (${charged.TotalUsd:0.######})" : ""));
            }
        }
    }

    // The run's cost is unknown from now on; the first reason is the one kept.
    private void CostUnknown(string because)
    {
        run.Cost = null;
        if (run.CostUnknown.Length == 0)
        {
            run.CostUnknown = because;
        }
    }

    /// <summary>
    /// Adds what a child run (an agent called as a tool) spent: its usage and cost to this run's, its provider requests
    /// to this run's ledger, marked with its run id. Children ending at once are counted one at a time.
    /// </summary>
    public void AddChild(Run child, int iteration)
    {
        lock (_counting)
        {
            if (child.Cost is null)
            {
                CostUnknown($"agent {child.Agent?.Name}: {child.CostUnknown}");
            }

            AddUsage(child.Usage ?? new TokenUsage(), child.Cost ?? new Cost(), "");
            Record(child.Ledger.Select(a =>
            {
                var attempt = a.Clone();
                attempt.RunId = attempt.RunId.Length > 0 ? attempt.RunId : child.RunId;
                return attempt;
            }), iteration);
        }
    }

    /// <summary>
    /// Adds a provider call made beside the model turns (an embedding) to the run's ledger, and what its answered requests
    /// used to the run's usage and cost. Calls ending at once are counted one at a time.
    /// </summary>
    public void AddSpending(IReadOnlyList<ProviderAttempt> attempts, int iteration)
    {
        lock (_counting)
        {
            Record(attempts, iteration);
            foreach (var attempt in attempts)
            {
                if (attempt.Outcome == AttemptOutcome.Completed)
                {
                    AddUsage(attempt.Usage, attempt.Cost, attempt.Model);
                }
            }
        }
    }

    public void CountTool(bool isError)
    {
        lock (_counting)
        {
            run.EventsSummary.ToolCalls++;
            if (isError)
            {
                run.EventsSummary.ToolErrors++;
            }
        }
    }

    public void Dispose() => _emitting.Dispose();

    /// <summary>Ends the run in a status other than completed; the first reason given is kept.</summary>
    public void Fail(RunStatus status, StatusCode code, string message, IEnumerable<Any>? details = null)
    {
        if (run.Status is RunStatus.Running or RunStatus.Completed)
        {
            run.Status = status;
            run.Error = new Google.Rpc.Status { Code = (int)code, Message = message, Details = { details ?? [] } };
        }
    }

    /// <summary>
    /// Ends the run with a failure, keeping its details: the provider's reason and request id (<c>ErrorInfo</c>), when
    /// to try again (<c>RetryInfo</c>), which field or budget (<c>BadRequest</c>, <c>QuotaFailure</c>), and for a
    /// service's failure the service at fault (<c>ResourceInfo</c>).
    /// </summary>
    public void Fail(RunStatus status, NamraException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        Fail(status, exception.StatusCode, exception.Message, exception.Details.Select(Any.Pack));
    }

    /// <inheritdoc cref="Fail(RunStatus, NamraException)"/>
    public void Fail(RunStatus status, DownstreamException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        Fail(status, exception.StatusCode, exception.Status.Detail, exception.GetRpcStatus()?.Details);
    }
}
