using System.Text.Json.Nodes;
using Namra.Config.Parsing;

namespace Namra.Config.Tests;

/// <summary>Paths in the repository and small helpers shared by the config tests.</summary>
internal static class TestFiles
{
    public static string RepositoryRoot => Testing.RepositoryPaths.Root;

    public static string ExamplesFolder => Path.Combine(RepositoryRoot, "examples", "agents");

    public static string SchemaFile => Path.Combine(RepositoryRoot, "schemas", "agent.schema.json");

    /// <summary>A loader that sees only the variables given, never the machine's environment.</summary>
    public static AgentLoader Loader(IDictionary<string, string>? environment = null, ParseLimits? limits = null) =>
        new(limits, name => environment is not null && environment.TryGetValue(name, out var value) ? value : null);

    /// <summary>The document as the JSON an editor's schema validator sees (numbers, booleans and null typed as YAML 1.2 says).</summary>
    public static JsonNode? ToJson(string content, string fileName)
    {
        var diagnostics = new DiagnosticBag(fileName);
        var parsed = AgentLoader.DetectFormat(fileName, content) == Contracts.V1.AgentFormat.Toml
            ? new TomlDocumentReader(ParseLimits.Default).Read(content, diagnostics)
            : new YamlDocumentReader(ParseLimits.Default).Read(content, diagnostics);
        return parsed.Root is null ? throw new InvalidOperationException("Not parseable: " + string.Join("; ", diagnostics.Items)) : ToJson(parsed.Root);
    }

    private static JsonNode? ToJson(ConfigNode node) => node switch
    {
        MappingNode mapping => new JsonObject(mapping.Entries.Select(e => KeyValuePair.Create(e.Key, ToJson(e.Value)))),
        SequenceNode sequence => new JsonArray([.. sequence.Items.Select(ToJson)]),
        ScalarNode { Kind: ScalarKind.Integer } s => JsonValue.Create(long.Parse(s.Text, System.Globalization.CultureInfo.InvariantCulture)),
        ScalarNode { Kind: ScalarKind.Float } s => JsonValue.Create(double.Parse(s.Text, System.Globalization.CultureInfo.InvariantCulture)),
        ScalarNode { Kind: ScalarKind.Boolean } s => JsonValue.Create(s.Text == "true"),
        ScalarNode { Kind: ScalarKind.Null } => null,
        ScalarNode s => JsonValue.Create(s.Text),
        _ => throw new InvalidOperationException(),
    };
}
