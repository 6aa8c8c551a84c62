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
    public void TheExampleAgents_NameModelsWithAPublishedPrice()
    {
        // A model past its end of life leaves the price file; an example naming it would fail for every new user.
        var named = Directory.EnumerateFiles(Namra.Testing.RepositoryPaths.Combine("examples", "agents"), "*.yaml")
            .Select(file => (File: Path.GetFileName(file), Text: File.ReadAllText(file)))
            .Select(agent => (agent.File, Provider: System.Text.RegularExpressions.Regex.Match(agent.Text, @"(?m)^  provider: (\S+)").Groups[1].Value,
                Model: System.Text.RegularExpressions.Regex.Match(agent.Text, @"(?m)^  model: (\S+)").Groups[1].Value))
            .Where(agent => agent.Provider is "anthropic" or "openai")
            .ToList();

        Assert.NotEmpty(named);
        Assert.All(named, agent => Assert.True(
            _table.Find(agent.Provider == "anthropic" ? LlmProvider.Anthropic : LlmProvider.Openai, agent.Model) is not null, $"{agent.File}: {agent.Model} has no published price"));
    }

    [Fact]
    public void AnAgentsPricing_PricesAModelWithoutAListPrice_AndMayRaiseAListedRate_NeverLowerIt()
    {
        var free = new ModelPricing { InputPerMtok = 0, OutputPerMtok = 0, CacheWritePerMtok = 0, CacheReadPerMtok = 0 };
        var dear = new ModelPricing { InputPerMtok = 30, OutputPerMtok = 1, CacheWritePerMtok = 0, CacheReadPerMtok = 0 };

        var selfHosted = _table.PriceOf(new LlmConfig { Provider = LlmProvider.OpenaiCompatible, Pricing = dear }, "llama3.1:8b")!;
        var discounted = _table.PriceOf(new LlmConfig { Provider = LlmProvider.Anthropic, Pricing = free }, "claude-sonnet-4-5")!;
        var raised = _table.PriceOf(new LlmConfig { Provider = LlmProvider.Anthropic, Pricing = dear }, "claude-sonnet-4-5")!;

        Assert.Equal((30m, 1m), (selfHosted.InputPerMTok, selfHosted.OutputPerMTok));
        Assert.Equal((3m, 15m, 3.75m, 0.30m), (discounted.InputPerMTok, discounted.OutputPerMTok, discounted.CacheWritePerMTok, discounted.CacheReadPerMTok));
        Assert.Equal((30m, 15m), (raised.InputPerMTok, raised.OutputPerMTok));
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
    [InlineData(LlmProvider.Anthropic, "claude-opus-4-5", "claude-opus-4-5", 5.0)] // not claude-opus-4's $15: a prefix is no match
    [InlineData(LlmProvider.Anthropic, "claude-opus-4-5-20251101", "claude-opus-4-5", 5.0)]
    [InlineData(LlmProvider.Anthropic, "claude-opus-4-20250514", "claude-opus-4", 15.0)]
    [InlineData(LlmProvider.Anthropic, "claude-3-opus-latest", "claude-3-opus", 15.0)] // an alias the provider documents
    [InlineData(LlmProvider.Anthropic, "claude-3-opus-20240229", "claude-3-opus", 15.0)]
    [InlineData(LlmProvider.Anthropic, "claude-haiku-4-5-20251001", "claude-haiku-4-5", 1.0)]
    public void Find_ResolvesSnapshotsAndAliasesByExplicitRules(LlmProvider provider, string model, string entry, double input)
    {
        var price = _table.Find(provider, model)!;

        Assert.Equal((entry, (decimal)input), (price.Model, price.InputPerMTok));
    }

    [Theory]
    [InlineData(LlmProvider.Anthropic, "claude-sonnet-4-5-latest")] // no such alias is published: not guessed
    [InlineData(LlmProvider.Anthropic, "claude-opus-4-5-preview")]
    [InlineData(LlmProvider.Anthropic, "claude-opus")]
    [InlineData(LlmProvider.Openai, "gpt-4o-latest")]
    public void Find_GuessesNothingBeyondThoseRules(LlmProvider provider, string model) =>
        Assert.Null(_table.Find(provider, model));

    [Theory]
    [InlineData(100_000, 0.01 + 0.0005)] // at the limit: $0.10 in, $0.50 out per million
    [InlineData(100_001, 0.0500005 + 0.0025)] // past it, the whole request at $0.50 / $2.50
    public void CostOf_ALongPrompt_BillsTheWholeRequestAtTheHigherRates(long inputTokens, double expected)
    {
        var price = _table.Find(LlmProvider.Anthropic, "claude-haiku-5-5")!;

        Assert.Equal(expected, price.CostOf(new TokenUsage { InputTokens = inputTokens, OutputTokens = 1000 }).TotalUsd, 10);
    }

    [Fact]
    public void WorstCostOf_AnInputBoundPastTheLimit_UsesTheHigherRates()
    {
        var price = _table.Find(LlmProvider.Openai, "gpt-6-sol")!;

        // 300,000 tokens of input at the highest long-prompt input rate ($5, cache writes) and 1,000 out at $15.
        Assert.Equal(1.5 + 0.015, price.WorstCostOf(300_000, 1000).TotalUsd, 10);
    }

    [Fact]
    public void ThePublishedFile_GivesEveryPriceASourceAndADate()
    {
        // The reader refuses an entry without them; this reads the file the gateway carries.
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}$", PricingTable.PublishedVersion);
        Assert.Contains(_table.All, p => p.Model == "claude-opus-4-5");
    }

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
