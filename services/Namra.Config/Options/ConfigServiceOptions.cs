using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Namra.Config.Parsing;

namespace Namra.Config.Options;

/// <summary>Settings of the config service; section <c>Namra:Config</c>.</summary>
[System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "[Range(typeof(TimeSpan), ...)] is metadata here: the options validation source generator checks it with its own strongly typed copy, no TypeConverter.")]
public sealed class ConfigServiceOptions : IValidatableObject
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Namra:Config";

    /// <summary>
    /// Folder of agent files (<c>*.yaml</c>, <c>*.yml</c>, <c>*.toml</c>, searched recursively) loaded at start-up and
    /// reloaded on change, such as a mounted ConfigMap. None when empty (the default).
    /// </summary>
    public string AgentsPath { get; set; } = "";

    /// <summary>
    /// Folder where an agent referenced but not registered (an agent called as a tool) is looked for, once, among its
    /// agent files; files that are not valid agents are passed over. <c>namra run</c> sets it to the folder of the file
    /// it runs, so a team of agents in one folder runs as it is. None when empty (the default).
    /// </summary>
    public string ReferencePath { get; set; } = "";

    /// <summary>How long the folder must be quiet after a change before it is reloaded. Default 500 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan ReloadDebounce { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Largest agent document, in bytes. Default 1 MiB.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxDocumentBytes { get; set; } = ParseLimits.Default.MaxDocumentBytes;

    /// <summary>Deepest nesting of mappings and lists. Default 32.</summary>
    [Range(4, 256)]
    public int MaxDepth { get; set; } = ParseLimits.Default.MaxDepth;

    /// <summary>Most values in a document after YAML alias expansion. Default 100,000.</summary>
    [Range(100, 10_000_000)]
    public int MaxNodes { get; set; } = ParseLimits.Default.MaxNodes;

    /// <summary>
    /// Environment variables that definitions sent over the API (inline text) may read with <c>${VAR}</c>: exact
    /// names, or prefixes ending in <c>*</c> (<c>AGENT_*</c>). None by default: the service's environment holds
    /// its own secrets, and a caller must not read them back through a definition. Files of the agents folder,
    /// which the operator controls, read the whole environment.
    /// </summary>
    public IList<string> InlineVariables { get; } = [];

    /// <summary>Whether inline definitions may read <paramref name="name"/>.</summary>
    public bool AllowsInlineVariable(string name) =>
        InlineVariables.Any(allowed => allowed.EndsWith('*')
            ? name.StartsWith(allowed[..^1], StringComparison.Ordinal)
            : name == allowed);

    /// <summary>The parse limits these settings describe.</summary>
    public ParseLimits ToLimits() => new() { MaxDocumentBytes = MaxDocumentBytes, MaxDepth = MaxDepth, MaxNodes = MaxNodes };

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (AgentsPath.Length > 0 && !Directory.Exists(AgentsPath))
        {
            yield return new ValidationResult($"'{AgentsPath}' is not an existing folder.", [nameof(AgentsPath)]);
        }

        if (ReferencePath.Length > 0 && !Directory.Exists(ReferencePath))
        {
            yield return new ValidationResult($"'{ReferencePath}' is not an existing folder.", [nameof(ReferencePath)]);
        }
    }
}

/// <summary>Validates <see cref="ConfigServiceOptions"/> at start-up (source-generated).</summary>
[OptionsValidator]
internal sealed partial class ConfigServiceOptionsValidator : IValidateOptions<ConfigServiceOptions>;
