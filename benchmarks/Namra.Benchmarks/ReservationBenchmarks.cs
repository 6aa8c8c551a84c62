using BenchmarkDotNet.Attributes;
using Namra.Contracts.V1;
using Namra.LlmGateway.Pricing;
using Namra.LlmGateway.Providers;

namespace Namra.Benchmarks;

/// <summary>
/// What reserving a model call's worst case costs, per call, on the hot path's ten-message conversation with a tool:
/// the gateway's bound (every UTF-8 byte a token) and price lookup, against the estimate (four characters a token)
/// the orchestrator reserved with before; the floor is writing the Anthropic request, which every call does anyway.
/// </summary>
[MemoryDiagnoser]
public class ReservationBenchmarks
{
    private readonly HotPathBenchmarks _hotPath = new();
    private readonly PricingTable _pricing = new([]);
    private readonly CallBudget _budget = new() { MaxTokens = 1_000_000, MaxCostUsd = 100 };
    private ChatRequest _request = null!;

    [GlobalSetup]
    public void Setup()
    {
        _hotPath.Setup();
        _request = _hotPath.Request;
        _pricing.Find(LlmProvider.Anthropic, _request.Llm.Model);
    }

    [GlobalCleanup]
    public void Cleanup() => _hotPath.Cleanup();

    [Benchmark(Baseline = true, Description = "floor: the Anthropic request written")]
    public int Request() => _hotPath.Anthropic();

    [Benchmark(Description = "before: character estimate of the input")]
    public long Estimate() => Contracts.TokenEstimator.EstimateInput(_request.SystemPrompt, _request.Messages, _request.Tools) + _request.Llm.MaxTokens;

    [Benchmark(Description = "now: byte bound, priced, checked against the budget")]
    public long Reserve() => CallReservations.Reserve(_request, _pricing, _budget).Tokens;
}
