using Namra.Contracts.V1;
using Namra.LlmGateway.Options;
using Namra.LlmGateway.Pricing;

namespace Namra.LlmGateway.Tests;

public sealed class PricingTableTests
{
    private readonly PricingTable _table = new([]);

    [Fact]
    public void CostOf_ClaudeSonnet45_IsTheListPrice()
    {
        // 1,000 input + 500 output tokens at $3 / $15 per million = $0.0105.
        var price = _table.Find(LlmProvider.Anthropic, "claude-sonnet-4-5-20250929")!;

        var cost = price.CostOf(new TokenUsage { InputTokens = 1000, OutputTokens = 500 });

        Assert.Equal(0.0105, cost.TotalUsd, 10);
        Assert.Equal((0.003, 0.0075), (cost.InputUsd, cost.OutputUsd));
    }

    [Fact]
    public void CostOf_CountsCacheWritesAndReadsAtTheirOwnPrices()
    {
        var cost = _table.Find(LlmProvider.Anthropic, "claude-sonnet-4-5")!
            .CostOf(new TokenUsage { CacheCreationInputTokens = 1_000_000, CacheReadInputTokens = 1_000_000 });

        Assert.Equal((3.75, 0.30, 4.05), (cost.CacheWriteUsd, cost.CacheReadUsd, cost.TotalUsd));
    }

    [Theory]
    [InlineData(LlmProvider.Anthropic, "claude-sonnet-4-5-20250929", "claude-sonnet-4-5")]
    [InlineData(LlmProvider.Openai, "gpt-4o-mini-2024-07-18", "gpt-4o-mini")]
    [InlineData(LlmProvider.Openai, "gpt-4o-2024-08-06", "gpt-4o")]
    [InlineData(LlmProvider.Scripted, "anything", "scripted")]
    public void Find_MatchesDatedVariantsToTheLongestEntry(LlmProvider provider, string model, string expected) =>
        Assert.Equal(expected, _table.Find(provider, model)!.Model);

    [Theory]
    [InlineData(LlmProvider.OpenaiCompatible, "llama3.1:8b")]
    [InlineData(LlmProvider.Openai, "gpt-5-unknown")]
    [InlineData(LlmProvider.Anthropic, "claude-sonnet-4-5x")]
    public void Find_WhenModelIsUnknown_ReturnsNullSoCostIsUnknownNotZero(LlmProvider provider, string model) =>
        Assert.Null(_table.Find(provider, model));

    [Fact]
    public void Configured_PricesOverrideAndExtendTheList()
    {
        var table = new PricingTable(
        [
            new ModelPriceOptions { Provider = "openai_compatible", Model = "llama3.1:8b", InputPerMTok = 0.05m, OutputPerMTok = 0.10m },
            new ModelPriceOptions { Provider = "openai", Model = "gpt-4o", InputPerMTok = 1m, OutputPerMTok = 2m },
        ]);

        Assert.Equal(0.15, table.Find(LlmProvider.OpenaiCompatible, "llama3.1:8b")!.CostOf(new TokenUsage { InputTokens = 1_000_000, OutputTokens = 1_000_000 }).TotalUsd, 10);
        Assert.Equal(1m, table.Find(LlmProvider.Openai, "gpt-4o")!.InputPerMTok);
        Assert.Single(table.All, p => p.Model == "gpt-4o");
    }
}
