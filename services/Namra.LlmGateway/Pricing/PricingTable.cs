using Namra.Contracts.V1;
using Namra.LlmGateway.Options;

namespace Namra.LlmGateway.Pricing;

/// <summary>
/// Prices of one model, in US dollars per million tokens. Some models bill a whole request at higher rates once its
/// prompt (input, cache writes and reads) passes a length: <see cref="LongPrompt"/>.
/// </summary>
internal sealed record ModelPrice(LlmProvider Provider, string Model, decimal InputPerMTok, decimal OutputPerMTok, decimal CacheWritePerMTok, decimal CacheReadPerMTok)
{
    /// <summary>The rates of a request whose prompt is longer than <see cref="LongPromptTokens"/>; null when the model has one tier.</summary>
    public ModelPrice? LongPrompt { get; init; }

    /// <summary>The prompt length above which <see cref="LongPrompt"/> rates apply to the whole request.</summary>
    public long LongPromptTokens { get; init; }

    /// <summary>The cost of a call's usage; decimal arithmetic, so budgets add up exactly.</summary>
    public Cost CostOf(TokenUsage usage)
    {
        ArgumentNullException.ThrowIfNull(usage);
        if (LongPrompt is { } longer && usage.InputTokens + usage.CacheCreationInputTokens + usage.CacheReadInputTokens > LongPromptTokens)
        {
            return longer.CostOf(usage);
        }

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
        if (LongPrompt is { } longer && inputTokens > LongPromptTokens)
        {
            return longer.WorstCostOf(inputTokens, outputTokens);
        }

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
/// Prices per provider and model: the published list prices of <c>prices.json</c> (each with its source and date),
/// overridden or extended by <c>Namra:LlmGateway:Models</c> (custom and self-hosted models) and, per agent, by
/// <c>llm.pricing</c>. A model matches, in order: its own entry; the model an alias of the file names
/// (<c>claude-3-opus-latest</c>); the entry it extends with a dated snapshot suffix (<c>claude-sonnet-4-5-20250929</c>
/// is priced as <c>claude-sonnet-4-5</c>, <c>gpt-4o-2024-08-06</c> as <c>gpt-4o</c>). Nothing else is guessed: a model
/// without a price has an unknown cost, never zero.
/// </summary>
internal sealed partial class PricingTable : IDisposable
{
    // The published list prices, from the versioned file beside this one (prices.json): each with its source and date.
    private static readonly Lazy<PriceFile> Published = new(() =>
    {
        using var stream = typeof(PricingTable).Assembly.GetManifestResourceStream("Namra.LlmGateway.Pricing.prices.json")
            ?? throw new InvalidOperationException("The gateway's price file is missing from its assembly.");
        return PriceFile.Read(stream);
    });

    /// <summary>The version (date) of the published prices the gateway carries.</summary>
    public static string PublishedVersion => Published.Value.Version;

    private readonly ModelPrice[] _prices;
    private readonly IReadOnlyDictionary<(LlmProvider, string), string> _aliases;

    // Models are named by callers: answers are kept for the first few hundred names asked about, found again for others.
    private readonly Hosting.BoundedCache _found = new(256);

    public void Dispose() => _found.Dispose();

    public PricingTable(IEnumerable<ModelPriceOptions> configured)
    {
        var overrides = configured.Select(c => c.ToPrice()).ToList();
        var published = Published.Value;
        _prices = [.. overrides, .. published.Prices.Where(b => !overrides.Exists(o => o.Provider == b.Provider && o.Model == b.Model))];
        _aliases = published.Aliases;
    }

    public IReadOnlyList<ModelPrice> All => _prices;

    /// <summary>
    /// The price a call of <paramref name="model"/> is billed at: the table's, or the agent's own <c>llm.pricing</c>
    /// for a model the table has no price for; null when unknown. For a model the table prices, an agent may raise a
    /// rate, never lower it: a definition (an inline one from any caller) must not spend a budget or a tenant's dollar
    /// quota at a discount it gave itself. Operators price models for everyone with <c>Namra:LlmGateway:Models</c>.
    /// </summary>
    public ModelPrice? PriceOf(LlmConfig llm, string model)
    {
        ArgumentNullException.ThrowIfNull(llm);
        var listed = Find(llm.Provider, model);
        if (llm.Pricing is not { } own)
        {
            return listed;
        }

        var given = new ModelPrice(llm.Provider, model, (decimal)own.InputPerMtok, (decimal)own.OutputPerMtok, (decimal)own.CacheWritePerMtok, (decimal)own.CacheReadPerMtok);
        return listed is null || llm.Provider == LlmProvider.Scripted ? given : AtLeast(listed, given);
    }

    // The listed price with each rate raised to the given one where that is higher, its long-prompt tier too.
    private static ModelPrice AtLeast(ModelPrice listed, ModelPrice given) => listed with
    {
        Model = given.Model,
        InputPerMTok = Math.Max(given.InputPerMTok, listed.InputPerMTok),
        OutputPerMTok = Math.Max(given.OutputPerMTok, listed.OutputPerMTok),
        CacheWritePerMTok = Math.Max(given.CacheWritePerMTok, listed.CacheWritePerMTok),
        CacheReadPerMTok = Math.Max(given.CacheReadPerMTok, listed.CacheReadPerMTok),
        LongPrompt = listed.LongPrompt is { } longer ? AtLeast(longer, given) : null,
    };

    /// <summary>The price of a model, or null when unknown. The scripted provider is free whatever its model name.</summary>
    public ModelPrice? Find(LlmProvider provider, string model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return _found.GetOrAdd((provider, model), key => Search(key.provider, key.model));
    }

    private ModelPrice? Search(LlmProvider provider, string model)
    {
        if (provider == LlmProvider.Scripted)
        {
            return ScriptedPrice;
        }

        // A provider's alias (claude-3-opus-latest) names the model it points to, as the provider's own list says.
        if (_aliases.TryGetValue((provider, model), out var target))
        {
            model = target;
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

    private static readonly ModelPrice ScriptedPrice = new(LlmProvider.Scripted, "scripted", 0m, 0m, 0m, 0m);

    // What providers append to a model name for a dated snapshot: -20250929, -2024-08-06. (Moving aliases such as
    // -latest are listed by name in the price file: a snapshot keeps its price, an alias may move to another.)
    [System.Text.RegularExpressions.GeneratedRegex(@"^-(\d{8}|\d{4}-\d{2}-\d{2})$")]
    private static partial System.Text.RegularExpressions.Regex DatedSuffix();
}
