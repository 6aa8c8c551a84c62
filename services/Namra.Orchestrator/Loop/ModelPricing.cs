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
        private readonly Hosting.BoundedMemo<string, Contracts.V1.ModelPricing?> _byModel = new(256, StringComparer.Ordinal);

        public long Fetched => fetched;

        // A dated snapshot (claude-sonnet-4-5-20250929) is priced as the model it extends, as the gateway does.
        public Contracts.V1.ModelPricing? For(string model) => _byModel.GetOrAdd(model, name =>
            (models.Models.FirstOrDefault(m => m.Model == name)
                ?? models.Models.Where(m => name.StartsWith(m.Model + "-", StringComparison.Ordinal)).MaxBy(m => m.Model.Length))?.Pricing);
    }
}
