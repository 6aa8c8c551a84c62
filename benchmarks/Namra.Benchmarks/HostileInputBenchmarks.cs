using System.Text;
using BenchmarkDotNet.Attributes;
using Namra.Config;

namespace Namra.Benchmarks;

/// <summary>
/// How fast hostile agent files are refused, against the load of a typical valid file in the same run:
/// a refusal must cost about what a normal load costs, never more than a few milliseconds.
/// </summary>
[MemoryDiagnoser]
public class HostileInputBenchmarks
{
    private readonly AgentLoader _loader = new();
    private string _typical = "";
    private string _billionLaughs = "";
    private string _deepYaml = "";
    private string _deepToml = "";
    private string _manyMistakes = "";

    [GlobalSetup]
    public void Setup()
    {
        _typical = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "agents", "research_assistant.yaml"));
        var laughs = new StringBuilder("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (var level = 'b'; level <= 'i'; level++)
        {
            laughs.Append(level).Append(": &").Append(level).Append(" [").Append(string.Join(",", Enumerable.Repeat($"*{(char)(level - 1)}", 9))).Append("]\n");
        }

        _billionLaughs = laughs.ToString();
        _deepYaml = "name: " + new string('[', 200_000) + new string(']', 200_000) + "\n";
        _deepToml = "name = " + new string('[', 200_000) + new string(']', 200_000) + "\n";
        _manyMistakes = "name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\n"
            + string.Concat(Enumerable.Range(0, 5000).Select(i => $"unknown_{i}: x\n"));
    }

    [Benchmark(Baseline = true, Description = "baseline: typical valid file")]
    public AgentLoadResult Typical() => _loader.Load(_typical, "agent.yaml");

    [Benchmark(Description = "billion laughs (10^9 values)")]
    public AgentLoadResult BillionLaughs() => _loader.Load(_billionLaughs, "lol.yaml");

    [Benchmark(Description = "YAML nested 200,000 deep")]
    public AgentLoadResult DeepYaml() => _loader.Load(_deepYaml, "deep.yaml");

    [Benchmark(Description = "TOML nested 200,000 deep")]
    public AgentLoadResult DeepToml() => _loader.Load(_deepToml, "deep.toml");

    [Benchmark(Description = "5,000 unknown fields")]
    public AgentLoadResult ManyMistakes() => _loader.Load(_manyMistakes, "many.yaml");
}
