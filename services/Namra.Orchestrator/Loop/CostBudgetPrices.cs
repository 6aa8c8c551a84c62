using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// A cost budget needs a price for every model an agent may be served by (its model and fallback models); the
/// gateway, which owns prices, says which it has, resolved as it prices calls. An agent's own <c>llm.pricing</c> prices
/// them all.
/// </summary>
internal static class CostBudgetPrices
{
    public const string Field = "execution.budget.max_cost_usd";

    /// <summary>The first of the agent's models without a price when it has a cost budget; null when all are priced.</summary>
    public static async Task<Unpriced?> UnpricedModelAsync(Downstream downstream, AgentDefinition agent, CancellationToken cancellationToken)
    {
        if (agent.Execution?.Budget?.HasMaxCostUsd != true || agent.Llm is not { } llm)
        {
            return null;
        }

        // The embedding model of semantic memory too: its calls are paid from the same budget.
        var models = llm.Pricing is not null ? [] : llm.FallbackModels.Prepend(llm.Model).Distinct(StringComparer.Ordinal).Select(m => (llm.Provider, Model: m, Embedding: false)).ToList();
        if (RunMemory.IsOn(agent) && RunMemory.Embedder(agent) is { Model.Length: > 0 } embedder)
        {
            models.Add((embedder.Provider, embedder.Model, Embedding: true));
        }

        foreach (var (provider, model, embedding) in models)
        {
            var known = await downstream.LlmGateway.ListModelsAsync(
                new ListModelsRequest { Provider = provider, Model = model }, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (known.Models.Count == 0)
            {
                return new Unpriced(model, embedding);
            }
        }

        return null;
    }

    public static string Problem(Unpriced unpriced) => unpriced.Embedding
        ? $"The gateway has no price for the embedding model '{unpriced.Model}' of memory.semantic, so a cost budget cannot be kept: have the operator add the model to Namra:LlmGateway:Models, or use max_tokens."
        : $"The gateway has no price for model '{unpriced.Model}', so a cost budget cannot be kept: give the agent llm.pricing (input_per_mtok, output_per_mtok), have the operator add the model to Namra:LlmGateway:Models, or use max_tokens.";

    /// <summary>How to give the model a price, in a diagnostic's hint.</summary>
    public static string Hint(Unpriced unpriced) => unpriced.Embedding
        ? "add the embedding model to the gateway's Namra:LlmGateway:Models"
        : "add `llm.pricing: { input_per_mtok: ..., output_per_mtok: ... }`";

    /// <summary>A model without a price: one the agent chats with, or its memory's embedding model.</summary>
    public sealed record Unpriced(string Model, bool Embedding);
}
