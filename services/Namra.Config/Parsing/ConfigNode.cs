namespace Namra.Config.Parsing;

/// <summary>A 1-based place in a source file.</summary>
public readonly record struct SourcePosition(int Line, int Column)
{
    /// <summary>The whole document, for problems that have no better place.</summary>
    public static readonly SourcePosition Document = new(0, 0);
}

/// <summary>
/// A format-neutral tree of a parsed agent file: YAML and TOML both become this, so one validator with one
/// set of rules and positions serves both formats.
/// </summary>
internal abstract class ConfigNode(SourcePosition position)
{
    public SourcePosition Position { get; } = position;

    /// <summary>What the node is, as a message to a person says it ("a mapping", "an integer"...).</summary>
    public abstract string Describe();
}

internal sealed class MappingNode(SourcePosition position) : ConfigNode(position)
{
    private readonly List<MappingEntry> _entries = [];

    // Keys are looked up on every add (duplicate check), so a mapping of many keys must not cost n².
    private readonly Dictionary<string, MappingEntry> _byKey = new(StringComparer.Ordinal);

    /// <summary>The entries in document order.</summary>
    public IReadOnlyList<MappingEntry> Entries => _entries;

    public MappingEntry? Find(string key) => _byKey.GetValueOrDefault(key);

    /// <summary>Adds an entry whose key is not in the mapping yet.</summary>
    public void Add(MappingEntry entry)
    {
        _byKey.Add(entry.Key, entry);
        _entries.Add(entry);
    }

    public override string Describe() => "a mapping";
}

internal sealed record MappingEntry(string Key, SourcePosition KeyPosition, ConfigNode Value);

internal sealed class SequenceNode(SourcePosition position) : ConfigNode(position)
{
    public List<ConfigNode> Items { get; } = [];

    public override string Describe() => "a list";
}

/// <summary>How a scalar was written, which decides what types it can stand for.</summary>
internal enum ScalarKind
{
    /// <summary>A quoted or block YAML string, or a TOML string: always text.</summary>
    String,
    /// <summary>YAML plain scalar that is neither null, bool nor number under the YAML 1.2 core schema.</summary>
    PlainString,
    Integer,
    Float,
    Boolean,
    Null,
    DateTime,
}

internal sealed class ScalarNode(SourcePosition position, string text, ScalarKind kind) : ConfigNode(position)
{
    /// <summary>The value as written (for numbers and booleans, their canonical text).</summary>
    public string Text { get; } = text;

    public ScalarKind Kind { get; } = kind;

    public override string Describe() => Kind switch
    {
        ScalarKind.Integer => "an integer",
        ScalarKind.Float => "a number",
        ScalarKind.Boolean => "a boolean",
        ScalarKind.Null => "null",
        ScalarKind.DateTime => "a date-time",
        _ => "a string",
    };
}
