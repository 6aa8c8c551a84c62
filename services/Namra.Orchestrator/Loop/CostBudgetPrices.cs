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
    public static async Task<string?> UnpricedModelAsync(Downstream downstream, AgentDefinition agent, CancellationToken cancellationToken)
    {
        if (agent.Execution?.Budget?.HasMaxCostUsd != true || agent.Llm is not { } llm || llm.Pricing is not null)
        {
            return null;
        }

        foreach (var model in llm.FallbackModels.Prepend(llm.Model).Distinct(StringComparer.Ordinal))
        {
            var known = await downstream.LlmGateway.ListModelsAsync(
                new ListModelsRequest { Provider = llm.Provider, Model = model }, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (known.Models.Count == 0)
            {
                return model;
            }
        }

        return null;
    }

    public static string Problem(string model) =>
        $"The gateway has no price for model '{model}', so a cost budget cannot be kept: give the agent llm.pricing (input_per_mtok, output_per_mtok), have the operator add the model to Namra:LlmGateway:Models, or use max_tokens.";
}
