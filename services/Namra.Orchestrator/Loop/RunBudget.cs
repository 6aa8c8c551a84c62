using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// A run's budget (<c>execution.budget</c>). Model calls are reserved by the gateway, which owns prices: each call
/// carries what the run has left (<see cref="Left"/>), and the gateway refuses a call whose worst case does not fit
/// before the provider is called. What a call used is settled here: its usage and cost, or its reserved worst case
/// when the provider reported none. A tool call takes one of the allowed calls.
/// </summary>
internal sealed class RunBudget(Budget? budget)
{
    private readonly Lock _gate = new();
    private long _tokens;
    private double _cost;
    private int _toolCalls;

    /// <summary>What the next model call may spend; null when the run has no model budget.</summary>
    public CallBudget? Left()
    {
        if (budget is null || !(budget.HasMaxTokens || budget.HasMaxCostUsd))
        {
            return null;
        }

        lock (_gate)
        {
            var left = new CallBudget();
            if (budget.HasMaxTokens)
            {
                left.MaxTokens = Math.Max(0, budget.MaxTokens - _tokens);
            }

            if (budget.HasMaxCostUsd)
            {
                left.MaxCostUsd = Math.Max(0, budget.MaxCostUsd - _cost);
            }

            return left;
        }
    }

    /// <summary>
    /// Counts what a model call used: its usage and cost, or, where the provider reported none, the worst case it
    /// was reserved at. Returns why the run must stop when the provider counted more than the budget allowed (a
    /// reservation bounds what a provider can count honestly; a broken count is stopped at once).
    /// </summary>
    public string? Settle(IReadOnlyList<ProviderAttempt> attempts, TokenUsage? usage, Cost? cost, CallReservation? reservation)
    {
        ArgumentNullException.ThrowIfNull(attempts);
        lock (_gate)
        {
            // Every request the gateway made for the call counts: answered ones at what they used, lost ones at their
            // worst case, refused ones at nothing.
            var (tokens, dollars) = attempts.Count > 0
                ? attempts.Select(a => ChargeOf(a, reservation)).Aggregate((0L, 0.0), (sum, c) => (sum.Item1 + c.Tokens, sum.Item2 + c.Cost))
                : ChargeOf(new ProviderAttempt { Outcome = AttemptOutcome.Completed, Usage = usage, Cost = cost }, reservation);
            _tokens += tokens;
            _cost += dollars;
            if (budget?.HasMaxTokens == true && _tokens > budget.MaxTokens)
            {
                return $"The provider counted {tokens:N0} tokens for the last model call, which puts the run at {_tokens:N0}: {_tokens - budget.MaxTokens:N0} over its budget of {budget.MaxTokens:N0} (the call was reserved at {reservation?.Tokens ?? 0:N0}).";
            }

            if (budget?.HasMaxCostUsd == true && _cost > budget.MaxCostUsd)
            {
                return $"The last model call cost ${(cost ?? reservation?.Cost)?.TotalUsd ?? 0:0.######}, which puts the run at ${_cost:0.######}: ${_cost - budget.MaxCostUsd:0.######} over its budget of ${budget.MaxCostUsd:0.######}.";
            }

            return null;
        }
    }

    /// <summary>Charges the requests of a call that failed: those whose outcome is unknown at their worst case.</summary>
    public void Charge(IEnumerable<ProviderAttempt> attempts)
    {
        lock (_gate)
        {
            foreach (var attempt in attempts)
            {
                var (tokens, dollars) = ChargeOf(attempt, null);
                _tokens += tokens;
                _cost += dollars;
            }
        }
    }

    /// <summary>What one provider request counts for: what it used, its worst case when that is unknown, nothing when refused.</summary>
    public static (long Tokens, double Cost) ChargeOf(ProviderAttempt attempt, CallReservation? reservation) => attempt.Outcome switch
    {
        AttemptOutcome.Completed when attempt.Usage is { } used =>
            (used.Total, attempt.Cost?.TotalUsd ?? reservation?.Cost?.TotalUsd ?? 0),
        AttemptOutcome.Completed => (reservation?.Tokens ?? 0, reservation?.Cost?.TotalUsd ?? 0), // the provider reported no usage
        AttemptOutcome.Unknown => (attempt.ChargedTokens, attempt.ChargedCost?.TotalUsd ?? 0),
        _ => (0, 0),
    };

    /// <summary>
    /// Counts what a resumed run spent before: its ledger's requests (answered ones at what they used, lost ones at
    /// their worst case) and the tool calls its turns made.
    /// </summary>
    public void Restore(IEnumerable<ProviderAttempt> ledger, int toolCalls)
    {
        Charge(ledger);
        lock (_gate)
        {
            _toolCalls += toolCalls;
        }
    }

    /// <summary>Takes one of the run's tool calls, or says the budget has none left.</summary>
    public string? TryReserveToolCall()
    {
        lock (_gate)
        {
            if (budget?.HasMaxToolCalls == true && _toolCalls >= budget.MaxToolCalls)
            {
                return $"The run has made all {budget.MaxToolCalls:N0} tool calls its budget allows.";
            }

            _toolCalls++;
            return null;
        }
    }
}
