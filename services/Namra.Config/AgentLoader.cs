using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Namra.Config.Parsing;
using Namra.Config.Validation;
using Namra.Contracts.V1;

namespace Namra.Config;

/// <summary>The outcome of loading an agent file: the definition when it is valid, and every diagnostic.</summary>
/// <param name="Agent">The validated definition with defaults applied; null when there is any error.</param>
/// <param name="Ref">Name, version and content hash; null when invalid.</param>
/// <param name="Diagnostics">Every problem found, errors and warnings, in document order.</param>
/// <param name="Source">The text that was loaded, for printing source lines under diagnostics.</param>
public sealed record AgentLoadResult(AgentDefinition? Agent, AgentRef? Ref, IReadOnlyList<AgentDiagnostic> Diagnostics, string Source)
{
    /// <summary>True when the definition has no error (warnings allowed).</summary>
    public bool IsValid => Agent is not null;
}

/// <summary>
/// Parses YAML or TOML agent files into validated <see cref="AgentDefinition"/>s, reporting every problem at
/// once with file, line, column, field path and hint. Bounded: document size, nesting depth, alias expansion.
/// Thread-safe; one instance serves any number of files.
/// </summary>
public sealed partial class AgentLoader
{
    private readonly ParseLimits _limits;
    private readonly Func<string, string?> _environment;
    private readonly string _unsetVariableHint;
    private readonly YamlDocumentReader _yaml;
    private readonly TomlDocumentReader _toml;

    /// <summary>Creates a loader.</summary>
    /// <param name="limits">Parsing bounds; <see cref="ParseLimits.Default"/> when null.</param>
    /// <param name="environment">Looks up variables for <c>${VAR}</c>; the process environment when null.</param>
    /// <param name="unsetVariableHint">The hint for a variable the lookup does not give; "set it, or give a default" when null.</param>
    public AgentLoader(ParseLimits? limits = null, Func<string, string?>? environment = null, string? unsetVariableHint = null)
    {
        _limits = limits ?? ParseLimits.Default;
        _environment = environment ?? Environment.GetEnvironmentVariable;
        _unsetVariableHint = unsetVariableHint ?? "";
        _yaml = new YamlDocumentReader(_limits);
        _toml = new TomlDocumentReader(_limits);
    }

    /// <summary>The limits this loader enforces.</summary>
    public ParseLimits Limits => _limits;

    /// <summary>Loads a definition from text.</summary>
    /// <param name="content">The YAML or TOML text.</param>
    /// <param name="fileName">Name used in diagnostics and for format detection; may be empty.</param>
    /// <param name="format">The format; detected from the file name, then the content, when unspecified.</param>
    public AgentLoadResult Load(string content, string fileName = "", AgentFormat format = AgentFormat.Unspecified)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(fileName);
        var diagnostics = new DiagnosticBag(fileName);
        var bytes = Encoding.UTF8.GetByteCount(content);
        if (bytes > _limits.MaxDocumentBytes)
        {
            diagnostics.Error(DiagnosticCodes.DocumentTooLarge, SourcePosition.Document, "",
                $"The document is {bytes:N0} bytes; the limit is {_limits.MaxDocumentBytes:N0}.", "agent files are small; move large prompts or data elsewhere");
            return new AgentLoadResult(null, null, diagnostics.Items, "");
        }

        var parsed = DetectFormat(fileName, content, format) == AgentFormat.Toml
            ? _toml.Read(content, diagnostics)
            : _yaml.Read(content, diagnostics);
        if (parsed.Root is null)
        {
            if (!diagnostics.HasErrors)
            {
                diagnostics.Error(DiagnosticCodes.MissingField, SourcePosition.Document, "", "The agent file is empty.", "run `namra init` for a working example");
            }

            return new AgentLoadResult(null, null, diagnostics.Items, content);
        }

        var walker = new SchemaWalker(diagnostics, _environment, _unsetVariableHint);
        var agent = new AgentDefinitionBuilder(walker, diagnostics).Build(parsed.Root);
        var ordered = diagnostics.Items
            .OrderBy(d => d.Code == DiagnosticCodes.TooManyProblems) // the "and more" note stays last
            .ThenBy(d => d.Position.Line).ThenBy(d => d.Position.Column).ToList();
        return agent is null
            ? new AgentLoadResult(null, null, ordered, content)
            : new AgentLoadResult(agent, RefOf(agent), ordered, content);
    }

    /// <summary>Loads a definition from a file, refusing files over the size limit before reading them.</summary>
    public async Task<AgentLoadResult> LoadFileAsync(string path, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(path);
        var diagnostics = new DiagnosticBag(path);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            var problem = Directory.Exists(path) ? "is a folder, not an agent file" : "does not exist";
            diagnostics.Error(DiagnosticCodes.FileUnreadable, SourcePosition.Document, "", $"The file {problem}.");
            return new AgentLoadResult(null, null, diagnostics.Items, "");
        }

        if (info.Length > _limits.MaxDocumentBytes)
        {
            diagnostics.Error(DiagnosticCodes.DocumentTooLarge, SourcePosition.Document, "",
                $"The file is {info.Length:N0} bytes; the limit is {_limits.MaxDocumentBytes:N0}.", "agent files are small; move large prompts or data elsewhere");
            return new AgentLoadResult(null, null, diagnostics.Items, "");
        }

        string content;
        try
        {
            content = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            diagnostics.Error(DiagnosticCodes.FileUnreadable, SourcePosition.Document, "", $"The file cannot be read: {exception.Message}");
            return new AgentLoadResult(null, null, diagnostics.Items, "");
        }

        return Load(content, path);
    }

    /// <summary>
    /// The identity of a definition: name, version and the SHA-256 of its canonical form, the protobuf encoding of
    /// the validated definition (defaults filled in, free-form keys in ordinal order, maps sorted), which needs no
    /// reflection over descriptors and so costs a CLI's cold start nothing.
    /// </summary>
    public static AgentRef RefOf(AgentDefinition agent)
    {
        ArgumentNullException.ThrowIfNull(agent);
        var hash = SHA256.HashData(agent.ToByteArray());
        return new AgentRef { Name = agent.Name, Version = agent.Version, ContentHash = "sha256:" + Convert.ToHexStringLower(hash) };
    }

    /// <summary>Whether <paramref name="name"/> is a valid agent name: lower case letters, digits, <c>_</c> and <c>-</c>, starting with a letter.</summary>
    public static bool IsValidAgentName(string name) => Regex.IsMatch(name, AgentSchema.NamePattern);

    /// <summary>YAML or TOML, from the explicit format, the file extension, or the first meaningful line.</summary>
    public static AgentFormat DetectFormat(string fileName, string content, AgentFormat format = AgentFormat.Unspecified)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(content);
        if (format != AgentFormat.Unspecified)
        {
            return format;
        }

        var extension = Path.GetExtension(fileName).ToLowerInvariant();
        if (extension is ".toml")
        {
            return AgentFormat.Toml;
        }

        if (extension is ".yaml" or ".yml")
        {
            return AgentFormat.Yaml;
        }

        return TomlFirstLine().IsMatch(content) ? AgentFormat.Toml : AgentFormat.Yaml;
    }

    // The first line that is not blank or a comment: `key = value` or `[table]` is TOML.
    [GeneratedRegex(@"\A(?:[ \t]*(?:#[^\n]*)?\r?\n)*[ \t]*(?:[A-Za-z0-9_.""'-]+[ \t]*=|\[)")]
    private static partial Regex TomlFirstLine();
}
