using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// "A run never overshoots its budget", against a provider that counts as many tokens as it honestly can (every
/// byte it is sent a token, and every turn the whole of max_tokens), with parallel tool calls every turn, the
/// gateway in the orchestrator's process and in a process of its own; and against one whose count is broken.
/// </summary>
public sealed class BudgetGuaranteeTests
{
    private static string Agent(string budget) => $$"""
        name: greedy
        version: 1.0.0
        llm: { provider: anthropic, model: {{AnthropicWire.Model}}, max_tokens: 300 }
        system_prompt: "Use the calculator for every step. Ünïcödé and emoji 🚀 count as several bytes each."
        tools:
          - name: calculator
            type: builtin.calculator
        execution:
          max_iterations: 100
          budget: {{budget}}
        """;

    [Theory]
    [InlineData(false, "{ max_tokens: 40000 }")]
    [InlineData(true, "{ max_tokens: 40000 }")]
    [InlineData(false, "{ max_cost_usd: 0.25 }")]
    [InlineData(true, "{ max_cost_usd: 0.25 }")]
    public async Task AProviderCountingAllItCan_NeverTakesARunPastItsBudget(bool split, string budget)
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        var turn = 0;
        anthropic.Responder = request => Turn(Interlocked.Increment(ref turn), CountingProvider.InputTokens(request.Body), CountingProvider.MaxTokens(request.Body));
        await using var services = await ProviderServices.StartAsync(anthropic, split);

        var run = (await services.Client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Agent(budget)), Input = "Keep adding numbers: 1 + 1, then 2 + 2, and so on." })).Run;

        Assert.Equal(RunStatus.BudgetExceeded, run.Status);
        Assert.True(anthropic.Requests.Count > 3, $"only {anthropic.Requests.Count} calls were made");
        Assert.Contains("The next model call could", run.Error.Message, StringComparison.Ordinal); // refused before, not found after
        var tokens = run.Usage.InputTokens + run.Usage.OutputTokens + run.Usage.CacheCreationInputTokens + run.Usage.CacheReadInputTokens;
        if (budget.Contains("max_tokens", StringComparison.Ordinal))
        {
            Assert.InRange(tokens, 1, 40_000);
        }
        else
        {
            Assert.InRange(run.Cost.TotalUsd, 0.000001, 0.25);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AProviderWhoseCountIsBroken_StopsTheRunAtOnce_SayingByHowMuch(bool split)
    {
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Responder = request => Turn(1, 10 * CountingProvider.InputTokens(request.Body) + 20_000, CountingProvider.MaxTokens(request.Body));
        await using var services = await ProviderServices.StartAsync(anthropic, split);

        var run = (await services.Client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Agent("{ max_tokens: 20000 }")), Input = "Add 1 + 1." })).Run;

        Assert.Equal(RunStatus.BudgetExceeded, run.Status);
        Assert.Single(anthropic.Requests);
        Assert.Matches(@"The provider counted [\d,]+ tokens for the last call, which puts the run at [\d,]+: [\d,]+ over its budget of 20,000", run.Error.Message);
    }

    // A turn that calls the calculator twice in parallel and reports the usage given.
    private static SseReply Turn(int number, int inputTokens, int outputTokens) => new([
        AnthropicWire.MessageStart(id: $"msg_{number}", inputTokens: inputTokens),
        .. AnthropicWire.ToolUseBlock(0, $"toolu_{number}a", "calculator", $"{{\"expression\":\"{number} + {number}\"}}"),
        .. AnthropicWire.ToolUseBlock(1, $"toolu_{number}b", "calculator", $"{{\"expression\":\"{number} * {number}\"}}"),
        AnthropicWire.MessageDelta("tool_use", outputTokens),
        AnthropicWire.MessageStop()]);
}
