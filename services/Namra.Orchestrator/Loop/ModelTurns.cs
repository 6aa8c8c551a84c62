using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Asks the gateway for one model turn: streamed when a caller reads text deltas, whole otherwise. What a failed
/// turn cost, and why a turn must not be acted on, are read here too.
/// </summary>
internal sealed class ModelTurns(Downstream downstream)
{
    public async Task<GenerateCompleted> GenerateAsync(RunContext run, CallBudget? budget, int iteration, CancellationToken cancellationToken)
    {
        var agent = run.Agent;
        var context = new CallContext { RunId = run.Request.RunId, AgentName = agent.Name, Iteration = iteration };
        var toolChoice = run.Tools.Count > 0 ? ToolChoice.Auto : ToolChoice.Unspecified;
        run.State.Run.EventsSummary.LlmCalls++;
        if (!run.State.Streamed)
        {
            // Nobody reads text deltas: one response instead of a stream of them (a fraction of the calls' cost).
            var whole = new GenerateRequest { Llm = agent.Llm, SystemPrompt = run.SystemPrompt, Messages = { run.ModelMessages }, Tools = { run.Tools }, ToolChoice = toolChoice, Context = context, Budget = budget };
            var response = await downstream.LlmGateway.GenerateAsync(whole, deadline: run.Deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
            return new GenerateCompleted
            {
                Message = response.Message, StopReason = response.StopReason, Usage = response.Usage, Cost = response.Cost, Model = response.Model, ResponseId = response.ResponseId,
                Reservation = response.Reservation, RequestId = response.RequestId, Attempts = { response.Attempts },
            };
        }

        var call = new StreamGenerateRequest { Llm = agent.Llm, SystemPrompt = run.SystemPrompt, Messages = { run.ModelMessages }, Tools = { run.Tools }, ToolChoice = toolChoice, Context = context, Budget = budget };
        // A model turn is billed once it reaches a gateway: the channel sends it again only when no gateway was reached
        // (a replica that is gone refuses the connection). A gateway lost mid-turn ends it.
        return await StreamTurnAsync(run.State, call, run.Deadline, cancellationToken).ConfigureAwait(false);
    }

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

    /// <summary>Why a turn the model did not finish is not acted on; null when it finished.</summary>
    public static (RunStatus Status, StatusCode Code, string Message)? Unfinished(StopReason reason, int maxTokens) => reason switch
    {
        StopReason.MaxTokens => (RunStatus.CutOff, StatusCode.ResourceExhausted,
            $"The model's turn was cut off at llm.max_tokens ({maxTokens:N0}) before it finished; its tool calls, if any, were not run. Raise llm.max_tokens."),
        StopReason.ContentFilter => (RunStatus.Refused, StatusCode.FailedPrecondition, "The provider's content filter stopped the model's turn; its tool calls, if any, were not run."),
        StopReason.Refusal => (RunStatus.Refused, StatusCode.FailedPrecondition, "The model refused to continue; its tool calls, if any, were not run."),
        _ => null,
    };

    /// <summary>
    /// The provider requests of a failed model call, from the gateway's error details. A gateway lost mid-call sends
    /// none: the turn may have reached the provider, so it is an attempt of unknown outcome, charged all the call was
    /// allowed (what the run had left: the gateway makes no call whose worst case does not fit).
    /// </summary>
    public static List<ProviderAttempt> FailedAttempts(DownstreamException exception, LlmConfig llm, CallBudget? left)
    {
        if (exception.NeverReachedTheService)
        {
            return [];
        }

        if (RpcDetails.Of<ProviderAttempts>(exception) is [var reported, ..])
        {
            return [.. reported.Attempts];
        }

        var inner = exception.Cause;
        return inner.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Unknown
            ? [Unanswered(llm, left, $"The {exception.Service} service was lost mid-call ({inner.StatusCode}): whether the provider was called is not known.")]
            : [];
    }

    /// <summary>
    /// A model call left without its answer (the gateway lost, the run cancelled or out of time while it was in flight):
    /// it may have reached the provider, so it is an attempt of unknown outcome, charged all the call was allowed.
    /// </summary>
    public static ProviderAttempt Unanswered(LlmConfig llm, CallBudget? left, string why) => new()
    {
        Provider = llm.Provider,
        Model = llm.Model,
        Outcome = AttemptOutcome.Unknown,
        Error = why,
        ChargedTokens = left?.HasMaxTokens == true ? left.MaxTokens : 0,
        ChargedCost = left?.HasMaxCostUsd == true ? new Cost { TotalUsd = left.MaxCostUsd } : null,
    };

    /// <summary>The gateway's refusal of a call that does not fit the run's budget: its QuotaFailure names the budget.</summary>
    public static string? BudgetRefusal(DownstreamException exception) =>
        exception.StatusCode == StatusCode.ResourceExhausted
        && RpcDetails.Of<Google.Rpc.QuotaFailure>(exception).SelectMany(quota => quota.Violations)
            .FirstOrDefault(v => v.Subject.StartsWith("execution.budget.", StringComparison.Ordinal)) is { } violation
            ? violation.Description
            : null;
}
