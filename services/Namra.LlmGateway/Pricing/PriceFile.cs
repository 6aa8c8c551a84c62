using System.Text.Json;
using Namra.Contracts.V1;

namespace Namra.LlmGateway.Pricing;

/// <summary>
/// The gateway's published prices (<c>prices.json</c>, carried in its assembly): a version date, the list price of
/// each model with the page it was read from and the day, and the aliases providers document. Only published prices
/// belong here; a model that has none stays unknown.
/// </summary>
internal sealed record PriceFile(string Version, IReadOnlyList<ModelPrice> Prices, IReadOnlyDictionary<(LlmProvider, string), string> Aliases)
{
    public static PriceFile Read(Stream stream)
    {
        using var json = JsonDocument.Parse(stream);
        var root = json.RootElement;
        var prices = new List<ModelPrice>();
        foreach (var entry in root.GetProperty("models").EnumerateArray())
        {
            var where = $"prices.json: {entry.GetProperty("provider").GetString()} {entry.GetProperty("model").GetString()}";
            if (entry.GetProperty("source").GetString() is not { Length: > 0 } || entry.GetProperty("as_of").GetString() is not { Length: > 0 })
            {
                throw new InvalidDataException($"{where} has no source or date.");
            }

            var price = Rates(entry, Provider(entry.GetProperty("provider").GetString()!), entry.GetProperty("model").GetString()!);
            if (entry.TryGetProperty("long_prompt", out var longPrompt))
            {
                price = price with { LongPrompt = Rates(longPrompt, price.Provider, price.Model), LongPromptTokens = longPrompt.GetProperty("above_tokens").GetInt64() };
            }
            if (price.InputPerMTok < 0 || price.OutputPerMTok < 0 || price.CacheWritePerMTok < 0 || price.CacheReadPerMTok < 0)
            {
                throw new InvalidDataException($"{where} has a negative price.");
            }

            if (prices.Exists(p => p.Provider == price.Provider && p.Model == price.Model))
            {
                throw new InvalidDataException($"{where} is listed twice.");
            }

            prices.Add(price);
        }

        var aliases = new Dictionary<(LlmProvider, string), string>();
        foreach (var alias in root.GetProperty("aliases").EnumerateArray())
        {
            var provider = Provider(alias.GetProperty("provider").GetString()!);
            var target = alias.GetProperty("model").GetString()!;
            if (!prices.Exists(p => p.Provider == provider && p.Model == target))
            {
                throw new InvalidDataException($"prices.json: alias {alias.GetProperty("alias").GetString()} names {target}, which has no price.");
            }

            aliases.Add((provider, alias.GetProperty("alias").GetString()!), target);
        }

        return new PriceFile(root.GetProperty("version").GetString()!, prices, aliases);
    }

    private static ModelPrice Rates(JsonElement entry, LlmProvider provider, string model) =>
        new(provider, model, entry.GetProperty("input").GetDecimal(), entry.GetProperty("output").GetDecimal(),
            entry.GetProperty("cache_write").GetDecimal(), entry.GetProperty("cache_read").GetDecimal());

    private static LlmProvider Provider(string name) => name switch
    {
        "anthropic" => LlmProvider.Anthropic,
        "openai" => LlmProvider.Openai,
        _ => throw new InvalidDataException($"prices.json: unknown provider {name}."),
    };
}
