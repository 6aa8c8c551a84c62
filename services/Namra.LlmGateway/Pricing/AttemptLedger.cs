using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.LlmGateway.Providers;

namespace Namra.LlmGateway.Pricing;

/// <summary>
/// The requests one model call sent to its provider, retries and fallbacks included, each with what became of it:
/// answered (its usage is billed), refused with an error (not billed) or unknown (sent, and the connection or the
/// stream broke: it may be billed, up to the call's worst case). Returned with the answer, or in the error's details,
/// so the run's ledger holds every request made for it.
/// </summary>
internal sealed class AttemptLedger(LlmProvider provider, CallReservation reservation, CallBudget? budget = null)
{
    private readonly List<ProviderAttempt> _attempts = [];
    private readonly Lock _gate = new();

    /// <summary>
    /// Records a request about to be sent for <paramref name="model"/>. After a request of unknown outcome (charged its
    /// worst case), another is sent only when both worst cases fit the caller's budget: otherwise a retry or a fallback
    /// could take the run past it. Refused with RESOURCE_EXHAUSTED and a <c>QuotaFailure</c> naming the budget.
    /// </summary>
    public ProviderAttempt Begin(string model)
    {
        var attempt = new ProviderAttempt { Provider = provider, Model = model, Outcome = AttemptOutcome.Unknown };
        lock (_gate)
        {
            if (budget is not null)
            {
                CallReservations.CheckAnother(reservation, budget, provider,
                    _attempts.Where(a => a.Outcome == AttemptOutcome.Unknown).Sum(a => a.ChargedTokens),
                    _attempts.Where(a => a.Outcome == AttemptOutcome.Unknown).Sum(a => a.ChargedCost?.TotalUsd ?? 0));
            }

            _attempts.Add(attempt);
        }

        return attempt;
    }

    /// <summary>The request failed: refused by the provider (not billed), never sent, or unknown (charged its worst case).</summary>
    public void Failed(ProviderAttempt attempt, Exception exception)
    {
        attempt.Error = exception.Message;
        attempt.RequestId = ProviderErrors.RequestIdOf(exception);
        if (ProviderErrors.IsProviderAnswer(exception) || NeverSent(exception))
        {
            attempt.Outcome = AttemptOutcome.Failed;
            return;
        }

        Unknown(attempt);
    }

    /// <summary>The request was sent and what became of it is not known: its worst case is charged.</summary>
    public void Unknown(ProviderAttempt attempt)
    {
        attempt.Outcome = AttemptOutcome.Unknown;
        attempt.ChargedTokens = reservation.Tokens;
        attempt.ChargedCost = reservation.Cost;
    }

    /// <summary>
    /// The provider answered the whole call: what it counted and what that cost. A provider that reported no usage may
    /// have billed up to the call's worst case, which is charged.
    /// </summary>
    public void Completed(ProviderAttempt attempt, string requestId, TokenUsage? usage, Cost? cost, string responseId = "")
    {
        attempt.Outcome = AttemptOutcome.Completed;
        attempt.RequestId = requestId;
        attempt.ResponseId = responseId;
        attempt.Usage = usage;
        attempt.Cost = cost;
        if (usage is null)
        {
            attempt.ChargedTokens = reservation.Tokens;
            attempt.ChargedCost = reservation.Cost;
        }
    }

    /// <summary>
    /// What a provider counted, when it can be believed: a count below zero (a broken provider, or a compatible server's
    /// bug) would give spending back to the caller's budget, so it is taken as no count at all, and the call is charged
    /// its worst case (<see cref="Completed"/>).
    /// </summary>
    public static TokenUsage? Believable(TokenUsage? usage) =>
        usage is { InputTokens: >= 0, OutputTokens: >= 0, CacheCreationInputTokens: >= 0, CacheReadInputTokens: >= 0 } ? usage : null;

    public IReadOnlyList<ProviderAttempt> All
    {
        get
        {
            lock (_gate)
            {
                return [.. _attempts];
            }
        }
    }

    /// <summary>
    /// The failure a caller gets, with the attempts in its details: none at all says no request was sent (a rate
    /// limit, an open circuit), which a caller cannot tell from a gateway lost mid-call otherwise.
    /// </summary>
    public Exception WithAttempts(Exception exception) => exception is NamraException namra
        ? new NamraException(namra.StatusCode, namra.Message, [.. namra.Details, new ProviderAttempts { Attempts = { All } }], namra)
        : exception;

    // A connection that could not be made carried no request.
    private static bool NeverSent(Exception exception) =>
        exception.InnerException is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError };
}
