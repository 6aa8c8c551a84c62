using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// A run's budget (<c>execution.budget</c>). Model calls are reserved by the gateway, which owns prices: each call
/// carries what the run has left (<see cref="Left"/>), and the gateway refuses a call whose worst case does not fit
/// before the provider is called. What a call used is settled here: its usage and cost, or its reserved worst case
/// when the provider reported none. A tool call takes one of the allowed calls.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification = "A SemaphoreSlim holds an operating system handle only once its AvailableWaitHandle is read, which it never is here.")]
internal sealed class RunBudget(Budget? budget)
{
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _calls = new(1, 1);
    private long _tokens;
    private double _cost;
    private int _toolCalls;

    // Set aside for child runs in flight (agents called as tools), until they end.
    private long _reservedTokens;
    private double _reservedCost;
    private int _reservedToolCalls;

    /// <summary>
    /// Holds the run's other provider calls (the embeddings of parallel <c>remember</c> calls) back while one is made: each
    /// is allowed all the run has left (<see cref="Left"/>), so two at once could together spend more. Nothing is held
    /// without a token or cost budget. Dispose to let the next go.
    /// </summary>
    public async Task<IDisposable?> OneCallAtATimeAsync(CancellationToken cancellationToken)
    {
        if (budget is null || !(budget.HasMaxTokens || budget.HasMaxCostUsd))
        {
            return null;
        }

        await _calls.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Release(_calls);
    }

    private sealed class Release(SemaphoreSlim calls) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                calls.Release();
            }
        }
    }

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
                left.MaxTokens = Math.Max(0, budget.MaxTokens - _tokens - _reservedTokens);
            }

            if (budget.HasMaxCostUsd)
            {
                left.MaxCostUsd = Math.Max(0, budget.MaxCostUsd - _cost - _reservedCost);
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
                return $"The provider counted {tokens:N0} tokens for the last call, which puts the run at {_tokens:N0}: {_tokens - budget.MaxTokens:N0} over its budget of {budget.MaxTokens:N0} (the call was reserved at {reservation?.Tokens ?? 0:N0}).";
            }

            if (budget?.HasMaxCostUsd == true && _cost > budget.MaxCostUsd)
            {
                return $"The last call cost ${dollars:0.######}, which puts the run at ${_cost:0.######}: ${_cost - budget.MaxCostUsd:0.######} over its budget of ${budget.MaxCostUsd:0.######}.";
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
        // The provider reported no usage: the worst case the gateway charged, or the call's.
        AttemptOutcome.Completed when attempt.ChargedTokens > 0 => (attempt.ChargedTokens, attempt.ChargedCost?.TotalUsd ?? 0),
        AttemptOutcome.Completed => (reservation?.Tokens ?? 0, reservation?.Cost?.TotalUsd ?? 0),
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

    /// <summary>
    /// Sets aside a child run's budget: for each limit, the smallest of the child's own, the call's cap, and an even
    /// share (among <paramref name="share"/> calls of agents in the turn) of what this run has left. What is set aside
    /// counts as spent until <see cref="SettleChild"/>; children running at once can never take the run past its
    /// budget. Returns why not when a limit of this run has nothing left to share.
    /// </summary>
    public (ChildReservation? Reservation, string? Refusal) ReserveChild(Budget? own, Budget? cap, int share)
    {
        share = Math.Max(1, share);
        long? ownTokens = own?.HasMaxTokens == true ? own.MaxTokens : null, capTokens = cap?.HasMaxTokens == true ? cap.MaxTokens : null;
        double? ownCost = own?.HasMaxCostUsd == true ? own.MaxCostUsd : null, capCost = cap?.HasMaxCostUsd == true ? cap.MaxCostUsd : null;
        long? ownCalls = own?.HasMaxToolCalls == true ? own.MaxToolCalls : null, capCalls = cap?.HasMaxToolCalls == true ? cap.MaxToolCalls : null;
        lock (_gate)
        {
            var child = new Budget();
            var reserved = new ChildReservation(child);
            if (budget?.HasMaxTokens == true)
            {
                var left = (budget.MaxTokens - _tokens - _reservedTokens) / share;
                if (left <= 0)
                {
                    return (null, $"the run has no tokens of its budget ({budget.MaxTokens:N0}) left for it.");
                }

                child.MaxTokens = reserved.Tokens = Smallest(Smallest(ownTokens, capTokens), left) ?? left;
            }
            else if (Smallest(ownTokens, capTokens) is { } tokens)
            {
                child.MaxTokens = tokens;
            }

            if (budget?.HasMaxCostUsd == true)
            {
                var left = (budget.MaxCostUsd - _cost - _reservedCost) / share;
                if (left <= 0)
                {
                    return (null, $"the run has no money of its budget (${budget.MaxCostUsd:0.######}) left for it.");
                }

                child.MaxCostUsd = reserved.Cost = Smallest(Smallest(ownCost, capCost), left) ?? left;
            }
            else if (Smallest(ownCost, capCost) is { } dollars)
            {
                child.MaxCostUsd = dollars;
            }

            if (budget?.HasMaxToolCalls == true)
            {
                // The call of the agent took one already; the child's calls come out of what is left.
                long left = Math.Max(0, (budget.MaxToolCalls - _toolCalls - _reservedToolCalls) / share);
                child.MaxToolCalls = reserved.ToolCalls = (int)(Smallest(Smallest(ownCalls, capCalls), left) ?? left);
            }
            else if (Smallest(ownCalls, capCalls) is { } calls)
            {
                child.MaxToolCalls = (int)calls;
            }

            _reservedTokens += reserved.Tokens;
            _reservedCost += reserved.Cost;
            _reservedToolCalls += reserved.ToolCalls;
            return (reserved, null);
        }

        static T? Smallest<T>(T? a, T? b) where T : struct, IComparable<T> =>
            a is { } x ? b is { } y ? (x.CompareTo(y) <= 0 ? x : y) : x : b;
    }

    /// <summary>Releases a child's reservation and counts what it spent: its provider requests (see <see cref="ChargeOf"/>) and its tool calls.</summary>
    public void SettleChild(ChildReservation reservation, IEnumerable<ProviderAttempt> ledger, int toolCalls)
    {
        ArgumentNullException.ThrowIfNull(reservation);
        lock (_gate)
        {
            if (reservation.Settled)
            {
                return;
            }

            reservation.Settled = true;
            _reservedTokens -= reservation.Tokens;
            _reservedCost -= reservation.Cost;
            _reservedToolCalls -= reservation.ToolCalls;
            foreach (var attempt in ledger)
            {
                var (tokens, dollars) = ChargeOf(attempt, null);
                _tokens += tokens;
                _cost += dollars;
            }

            _toolCalls += toolCalls;
        }
    }

    /// <summary>Takes one of the run's tool calls, or says the budget has none left.</summary>
    public string? TryReserveToolCall()
    {
        lock (_gate)
        {
            if (budget?.HasMaxToolCalls == true && _toolCalls + _reservedToolCalls >= budget.MaxToolCalls)
            {
                return $"The run has made all {budget.MaxToolCalls:N0} tool calls its budget allows.";
            }

            _toolCalls++;
            return null;
        }
    }
}

/// <summary>What a run set aside for a child run: the child's budget, and the part of each limit of the run it holds.</summary>
internal sealed class ChildReservation(Budget budget)
{
    /// <summary>The child's budget (its limits; none where neither run has one).</summary>
    public Budget Budget => budget;

    public long Tokens { get; set; }

    public double Cost { get; set; }

    public int ToolCalls { get; set; }

    public bool Settled { get; set; }
}
