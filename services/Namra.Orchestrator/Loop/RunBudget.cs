using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// A run's budget (<c>execution.budget</c>), enforced before each call: a model call reserves its worst case
/// (prompt tokens plus <c>max_tokens</c>, priced at the model's rates) and settles the real figure after; a tool
/// call reserves one of the allowed calls. Reservations of parallel calls add up, so a run never overshoots.
/// </summary>
internal sealed class RunBudget(Budget? budget)
{
    private readonly Lock _gate = new();
    private long _tokens;
    private long _reservedTokens;
    private double _cost;
    private double _reservedCost;
    private int _toolCalls;

    /// <summary>Tokens and dollars settled so far.</summary>
    public (long Tokens, double Cost) Spent
    {
        get
        {
            lock (_gate)
            {
                return (_tokens, _cost);
            }
        }
    }

    /// <summary>Reserves a model call's worst case, or says why it would break the budget.</summary>
    public string? TryReserveModelCall(long worstTokens, double worstCost)
    {
        lock (_gate)
        {
            if (budget?.HasMaxTokens == true && _tokens + _reservedTokens + worstTokens > budget.MaxTokens)
            {
                return $"The next model call could use up to {worstTokens:N0} tokens; the run has used {_tokens:N0} of its {budget.MaxTokens:N0}.";
            }

            if (budget?.HasMaxCostUsd == true && _cost + _reservedCost + worstCost > budget.MaxCostUsd)
            {
                return $"The next model call could cost up to ${worstCost:0.######}; the run has spent ${_cost:0.######} of its ${budget.MaxCostUsd:0.######}.";
            }

            _reservedTokens += worstTokens;
            _reservedCost += worstCost;
            return null;
        }
    }

    /// <summary>Replaces a model call's reservation with what it used.</summary>
    public void SettleModelCall(long worstTokens, double worstCost, TokenUsage? usage, Cost? cost)
    {
        lock (_gate)
        {
            _reservedTokens -= worstTokens;
            _reservedCost -= worstCost;
            _tokens += (usage?.InputTokens ?? 0) + (usage?.OutputTokens ?? 0) + (usage?.CacheCreationInputTokens ?? 0) + (usage?.CacheReadInputTokens ?? 0);
            _cost += cost?.TotalUsd ?? 0;
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
