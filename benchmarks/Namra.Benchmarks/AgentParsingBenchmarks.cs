using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Namra.Config;
using YamlDotNet.RepresentationModel;

namespace Namra.Benchmarks;

/// <summary>
/// Parse + validate of a typical agent file (the research assistant example: three tools, memory, budget,
/// labels) against a baseline measured in the same run: the bare YAML or TOML parse any loader must do.
/// The ratio is the cost of Namra's validation, defaults, diagnostics and content hash on top.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class AgentParsingBenchmarks
{
    private readonly AgentLoader _loader = new();
    private string _yaml = "";
    private string _toml = "";

    [GlobalSetup]
    public void Setup()
    {
        _yaml = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "agents", "research_assistant.yaml"));
        _toml = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "agents", "local_llm.toml"));
    }

    [Benchmark(Baseline = true, Description = "baseline: YamlDotNet parse only")]
    [BenchmarkCategory("yaml")]
    public YamlStream YamlParseOnly()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(_yaml));
        return stream;
    }

    [Benchmark(Description = "Namra: YAML parse + validate + hash")]
    [BenchmarkCategory("yaml")]
    public AgentLoadResult YamlLoad() => _loader.Load(_yaml, "research_assistant.yaml");

    [Benchmark(Baseline = true, Description = "baseline: Tomlyn parse only")]
    [BenchmarkCategory("toml")]
    public Tomlyn.Syntax.DocumentSyntax TomlParseOnly() => Tomlyn.Parsing.SyntaxParser.Parse(_toml, "local_llm.toml");

    [Benchmark(Description = "Namra: TOML parse + validate + hash")]
    [BenchmarkCategory("toml")]
    public AgentLoadResult TomlLoad() => _loader.Load(_toml, "local_llm.toml");
}
