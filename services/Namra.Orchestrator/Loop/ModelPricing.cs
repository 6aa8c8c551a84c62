using System.Collections.Concurrent;
using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>The gateway's price list, per provider, read once and kept for a few minutes, for budget reservations.</summary>
internal sealed class ModelPricing(Downstream downstream, TimeProvider timeProvider)
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    private readonly ConcurrentDictionary<LlmProvider, PriceList> _lists = new();

    /// <summary>The model's rates, or null when the gateway lists none (self-hosted, scripted).</summary>
    public async Task<Contracts.V1.ModelPricing?> RatesAsync(LlmConfig llm, DateTime deadline, CancellationToken cancellationToken)
    {
        if (llm.Provider is LlmProvider.Scripted or LlmProvider.OpenaiCompatible)
        {
            return null;
        }

        if (!_lists.TryGetValue(llm.Provider, out var list) || timeProvider.GetElapsedTime(list.Fetched) > Lifetime)
        {
            var models = await Downstream.CallAsync("llm-gateway", async () => await downstream.LlmGateway.ListModelsAsync(
                new ListModelsRequest { Provider = llm.Provider }, deadline: deadline, cancellationToken: cancellationToken), cancellationToken).ConfigureAwait(false);
            list = new PriceList(timeProvider.GetTimestamp(), models);
            _lists[llm.Provider] = list;
        }

        return list.For(llm.Model);
    }

    // One fetched list, and the rates each model name resolved to (model names come from agents: a bounded few).
    private sealed class PriceList(long fetched, ListModelsResponse models)
    {
        private const int MaxRemembered = 256;
        private readonly ConcurrentDictionary<string, Contracts.V1.ModelPricing?> _byModel = new(StringComparer.Ordinal);

        public long Fetched => fetched;

        public Contracts.V1.ModelPricing? For(string model)
        {
            if (_byModel.TryGetValue(model, out var known))
            {
                return known;
            }

            // A dated snapshot (claude-sonnet-4-5-20250929) is priced as the model it extends, as the gateway does.
            var rates = (models.Models.FirstOrDefault(m => m.Model == model)
                ?? models.Models.Where(m => model.StartsWith(m.Model + "-", StringComparison.Ordinal)).MaxBy(m => m.Model.Length))?.Pricing;
            if (_byModel.Count < MaxRemembered)
            {
                _byModel.TryAdd(model, rates);
            }

            return rates;
        }
    }
}
