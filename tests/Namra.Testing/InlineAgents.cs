using Namra.Contracts.V1;

namespace Namra.Testing;

/// <summary>Agent definitions sent inline, as a caller of the public API sends them.</summary>
public static class InlineAgents
{
    /// <summary>A YAML definition as an <see cref="AgentSource"/>.</summary>
    public static AgentSource Yaml(string yaml) => new() { Inline = new InlineAgent { Content = yaml, Format = AgentFormat.Yaml, FileName = "inline.yaml" } };
}
