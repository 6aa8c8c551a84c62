using System.Collections.Concurrent;
using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>The gateway's price list, per provider, read once and kept for a few minutes, for budget reservations.</summary>
internal sealed class ModelPricing(Downstream downstream, TimeProvider timeProvider)
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    private readonly ConcurrentDictionary<LlmProvider, (long Fetched, ListModelsResponse Models)> _lists = new();

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
            list = (timeProvider.GetTimestamp(), models);
            _lists[llm.Provider] = list;
        }

        // A dated snapshot (claude-sonnet-4-5-20250929) is priced as the model it extends, as the gateway does.
        return (list.Models.Models.FirstOrDefault(m => m.Model == llm.Model)
            ?? list.Models.Models.Where(m => llm.Model.StartsWith(m.Model + "-", StringComparison.Ordinal)).MaxBy(m => m.Model.Length))?.Pricing;
    }
}
