using Namra.Contracts.V1;

namespace Namra.Testing;

/// <summary>Agent definitions sent inline, as a caller of the public API sends them.</summary>
public static class InlineAgents
{
    /// <summary>An agent (<c>calc_agent</c>) whose scripted model answers "2." at once, without tools.</summary>
    public const string ScriptedAnswer = "name: calc_agent\nversion: 1.0.0\nllm:\n  provider: scripted\n  model: scripted\n  script:\n    - text: \"2.\"\n";

    /// <summary>A YAML definition as an <see cref="AgentSource"/>.</summary>
    public static AgentSource Yaml(string yaml) => new() { Inline = new InlineAgent { Content = yaml, Format = AgentFormat.Yaml, FileName = "inline.yaml" } };
}
