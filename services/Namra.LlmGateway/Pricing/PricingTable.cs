using Namra.Contracts.V1;
using Namra.LlmGateway.Options;

namespace Namra.LlmGateway.Pricing;

/// <summary>Prices of one model, in US dollars per million tokens.</summary>
internal sealed record ModelPrice(LlmProvider Provider, string Model, decimal InputPerMTok, decimal OutputPerMTok, decimal CacheWritePerMTok, decimal CacheReadPerMTok)
{
    /// <summary>The cost of a call's usage; decimal arithmetic, so budgets add up exactly.</summary>
    public Cost CostOf(TokenUsage usage)
    {
        var input = usage.InputTokens * InputPerMTok / 1_000_000m;
        var output = usage.OutputTokens * OutputPerMTok / 1_000_000m;
        var cacheWrite = usage.CacheCreationInputTokens * CacheWritePerMTok / 1_000_000m;
        var cacheRead = usage.CacheReadInputTokens * CacheReadPerMTok / 1_000_000m;
        return new Cost
        {
            TotalUsd = (double)(input + output + cacheWrite + cacheRead),
            InputUsd = (double)input,
            OutputUsd = (double)output,
            CacheWriteUsd = (double)cacheWrite,
            CacheReadUsd = (double)cacheRead,
        };
    }

    /// <summary>
    /// The most <paramref name="inputTokens"/> of input and <paramref name="outputTokens"/> of output can cost:
    /// input at the highest of the input and cache rates (a provider decides what it caches), output at its rate.
    /// </summary>
    public Cost WorstCostOf(long inputTokens, long outputTokens)
    {
        var input = inputTokens * Math.Max(InputPerMTok, Math.Max(CacheWritePerMTok, CacheReadPerMTok)) / 1_000_000m;
        var output = outputTokens * OutputPerMTok / 1_000_000m;
        return new Cost { TotalUsd = (double)(input + output), InputUsd = (double)input, OutputUsd = (double)output };
    }

    public ModelPricing ToProto() => new()
    {
        InputPerMtok = (double)InputPerMTok,
        OutputPerMtok = (double)OutputPerMTok,
        CacheWritePerMtok = (double)CacheWritePerMTok,
        CacheReadPerMtok = (double)CacheReadPerMTok,
    };
}

/// <summary>
/// Prices per provider and model: the published list prices below, overridden or extended by
/// <c>Namra:LlmGateway:Models</c> (custom and self-hosted models). A model matches its own entry, or the
/// entry it extends with a snapshot suffix (<c>claude-sonnet-4-5-20250929</c> is priced as
/// <c>claude-sonnet-4-5</c>, <c>gpt-4o-2024-08-06</c> as <c>gpt-4o</c>). A model without a price has an unknown cost, never zero.
/// </summary>
internal sealed partial class PricingTable
{
    // List prices in USD per million tokens (input, output, cache write, cache read), as the providers publish them.
    private static readonly ModelPrice[] BuiltIn =
    [
        new(LlmProvider.Anthropic, "claude-opus-4-1", 15m, 75m, 18.75m, 1.50m),
        new(LlmProvider.Anthropic, "claude-opus-4", 15m, 75m, 18.75m, 1.50m),
        new(LlmProvider.Anthropic, "claude-sonnet-4-5", 3m, 15m, 3.75m, 0.30m),
        new(LlmProvider.Anthropic, "claude-sonnet-4", 3m, 15m, 3.75m, 0.30m),
        new(LlmProvider.Anthropic, "claude-3-7-sonnet", 3m, 15m, 3.75m, 0.30m),
        new(LlmProvider.Anthropic, "claude-haiku-4-5", 1m, 5m, 1.25m, 0.10m),
        new(LlmProvider.Anthropic, "claude-3-5-haiku", 0.80m, 4m, 1m, 0.08m),
        new(LlmProvider.Openai, "gpt-4.1", 2m, 8m, 0m, 0.50m),
        new(LlmProvider.Openai, "gpt-4.1-mini", 0.40m, 1.60m, 0m, 0.10m),
        new(LlmProvider.Openai, "gpt-4.1-nano", 0.10m, 0.40m, 0m, 0.025m),
        new(LlmProvider.Openai, "gpt-4o", 2.50m, 10m, 0m, 1.25m),
        new(LlmProvider.Openai, "gpt-4o-mini", 0.15m, 0.60m, 0m, 0.075m),
        new(LlmProvider.Openai, "o4-mini", 1.10m, 4.40m, 0m, 0.275m),
        new(LlmProvider.Openai, "text-embedding-3-small", 0.02m, 0m, 0m, 0m),
        new(LlmProvider.Openai, "text-embedding-3-large", 0.13m, 0m, 0m, 0m),
        new(LlmProvider.Scripted, "scripted", 0m, 0m, 0m, 0m),
    ];

    private readonly ModelPrice[] _prices;

    // Models are named by callers: answers are kept for the first few hundred names asked about, found again for others.
    private readonly Hosting.BoundedMemo<(LlmProvider Provider, string Model), ModelPrice?> _found = new(256);

    public PricingTable(IEnumerable<ModelPriceOptions> configured)
    {
        var overrides = configured.Select(c => c.ToPrice()).ToList();
        _prices = [.. overrides, .. BuiltIn.Where(b => !overrides.Exists(o => o.Provider == b.Provider && o.Model == b.Model))];
    }

    public IReadOnlyList<ModelPrice> All => _prices;

    /// <summary>
    /// The price a call of <paramref name="model"/> is billed at: the agent's own <c>llm.pricing</c> when it gives one,
    /// else the table's; null when unknown.
    /// </summary>
    public ModelPrice? PriceOf(LlmConfig llm, string model)
    {
        ArgumentNullException.ThrowIfNull(llm);
        return llm.Pricing is { } own
            ? new ModelPrice(llm.Provider, model, (decimal)own.InputPerMtok, (decimal)own.OutputPerMtok, (decimal)own.CacheWritePerMtok, (decimal)own.CacheReadPerMtok)
            : Find(llm.Provider, model);
    }

    /// <summary>The price of a model, or null when unknown. The scripted provider is free whatever its model name.</summary>
    public ModelPrice? Find(LlmProvider provider, string model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return _found.GetOrAdd((provider, model), key => Search(key.Provider, key.Model));
    }

    private ModelPrice? Search(LlmProvider provider, string model)
    {
        if (provider == LlmProvider.Scripted)
        {
            return _prices.First(p => p.Provider == LlmProvider.Scripted);
        }

        ModelPrice? best = null;
        foreach (var price in _prices)
        {
            if (price.Provider != provider)
            {
                continue;
            }

            if (price.Model == model)
            {
                return price;
            }

            if (model.StartsWith(price.Model, StringComparison.Ordinal) && DatedSuffix().IsMatch(model.AsSpan(price.Model.Length))
                && (best is null || price.Model.Length > best.Model.Length))
            {
                best = price;
            }
        }

        return best;
    }

    // What providers append to a model name for a snapshot: -20250929, -2024-08-06, -latest.
    [System.Text.RegularExpressions.GeneratedRegex(@"^-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$")]
    private static partial System.Text.RegularExpressions.Regex DatedSuffix();
}
