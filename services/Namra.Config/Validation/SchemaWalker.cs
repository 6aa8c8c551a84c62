using System.Globalization;
using System.Text.RegularExpressions;
using Namra.Config.Parsing;

namespace Namra.Config.Validation;

/// <summary>The fields of one object that passed their checks, with defaults filled in, and where each was written.</summary>
internal sealed class ValidatedObject(SourcePosition position)
{
    public SourcePosition Position { get; } = position;

    /// <summary>Valid values: string, long, double, bool, TimeSpan, List, Dictionary, ValidatedObject, or ConfigNode (any object).</summary>
    public Dictionary<string, object> Values { get; } = new(StringComparer.Ordinal);

    /// <summary>Every field written in the file, valid or not.</summary>
    public Dictionary<string, MappingEntry> Written { get; } = new(StringComparer.Ordinal);

    public T? Get<T>(string name) where T : class => Values.TryGetValue(name, out var value) ? value as T : null;

    public string? String(string name) => Get<string>(name);

    public long? Integer(string name) => Values.TryGetValue(name, out var value) && value is long l ? l : null;

    public double? Number(string name) => Values.TryGetValue(name, out var value) && value is double d ? d : null;

    public bool? Boolean(string name) => Values.TryGetValue(name, out var value) && value is bool b ? b : null;

    public TimeSpan? Duration(string name) => Values.TryGetValue(name, out var value) && value is TimeSpan t ? t : null;

    public SourcePosition PositionOf(string name) => Written.TryGetValue(name, out var entry) ? entry.KeyPosition : Position;

    public SourcePosition ValuePositionOf(string name) => Written.TryGetValue(name, out var entry) ? entry.Value.Position : Position;
}

/// <summary>
/// Walks a <see cref="ConfigNode"/> tree against the <see cref="AgentSchema"/>, reporting every problem it
/// finds (it never stops at the first), expanding <c>${VAR}</c> in values, and filling in defaults.
/// </summary>
internal sealed partial class SchemaWalker(DiagnosticBag diagnostics, Func<string, string?> environment, string unsetVariableHint = "")
{
    private static readonly Dictionary<string, Regex> Patterns = new(StringComparer.Ordinal);

    public ValidatedObject? ReadObject(ConfigNode node, ObjectSpec spec, string path)
    {
        if (node is not MappingNode mapping)
        {
            WrongType(node, path, $"{Describe(spec)} (a mapping of fields)");
            return null;
        }

        var result = new ValidatedObject(mapping.Position);
        foreach (var entry in mapping.Entries)
        {
            var fieldPath = Join(path, entry.Key);
            result.Written[entry.Key] = entry;
            if (spec.Find(entry.Key) is not { } field)
            {
                UnknownField(entry, fieldPath, spec, path);
                continue;
            }

            if (entry.Value is ScalarNode { Kind: ScalarKind.Null })
            {
                continue; // `field:` with nothing after it means "not set"
            }

            if (ReadValue(entry.Value, field.Type, fieldPath) is { } value)
            {
                result.Values[entry.Key] = value;
            }
        }

        foreach (var field in spec.Fields)
        {
            if (result.Values.ContainsKey(field.Name))
            {
                continue;
            }

            if (field.Required && !HasInvalidValue(result, field.Name))
            {
                diagnostics.Error(DiagnosticCodes.MissingField, result.Written.TryGetValue(field.Name, out var empty) ? empty.KeyPosition : mapping.Position,
                    Join(path, field.Name), $"Missing required field `{field.Name}`{In(path)}.", $"add `{field.Name}: {Example(field)}`");
            }
            else if (field.Default is { } fallback && !result.Written.ContainsKey(field.Name))
            {
                result.Values[field.Name] = DefaultValue(field, fallback);
            }
        }

        return result;
    }

    public object? ReadValue(ConfigNode node, FieldType type, string path) => type switch
    {
        StringType text => ReadString(node, text, path),
        IntegerType integer => ReadInteger(node, integer, path),
        NumberType number => ReadNumber(node, number, path),
        BooleanType => ReadBoolean(node, path),
        DurationType duration => ReadDuration(node, duration, path),
        EnumType choices => ReadEnum(node, choices, path),
        ListType list => ReadList(node, list, path),
        MapType { Values: StringType } map => ReadMap<string>(node, map, path),
        MapType map => ReadMap<object>(node, map, path),
        AnyObjectType => node is MappingNode ? node : WrongType(node, path, "a mapping"),
        ObjectType obj => ReadObject(node, obj.Spec, path),
        WordOrObjectType either => node is MappingNode ? ReadObject(node, either.Spec, path) : ReadValue(node, either.Words, path),
        _ => throw new InvalidOperationException($"Unknown field type {type}."),
    };

    /// <summary>The scalar's text with <c>${VAR}</c> expanded, or null after a problem was reported.</summary>
    public ScalarNode? Expand(ScalarNode scalar, string path)
    {
        if (scalar.Kind is not (ScalarKind.String or ScalarKind.PlainString) || !Interpolator.ContainsReference(scalar.Text))
        {
            return scalar;
        }

        var expanded = Interpolator.Expand(scalar.Text, scalar.Position, path, diagnostics, environment, unsetVariableHint);
        if (expanded is null)
        {
            return null;
        }

        // A substituted value is typed as if written plainly, so `max_tokens: ${MAX_TOKENS:-4096}` is a number.
        var resolved = YamlDocumentReader.ResolvePlain(expanded, scalar.Position);
        return resolved.Kind == ScalarKind.Null && expanded.Length > 0 ? new ScalarNode(scalar.Position, expanded, ScalarKind.PlainString)
            : resolved.Kind == ScalarKind.PlainString ? new ScalarNode(scalar.Position, expanded, ScalarKind.String)
            : new ScalarNode(scalar.Position, expanded, resolved.Kind);
    }

    private string? ReadString(ConfigNode node, StringType type, string path)
    {
        if (node is not ScalarNode raw || raw.Kind is ScalarKind.Null or ScalarKind.Boolean)
        {
            return (string?)WrongType(node, path, type.FormatName is null ? "a string" : $"a {type.FormatName} string");
        }

        if (type.Deferred)
        {
            return Interpolator.Expand(raw.Text, raw.Position, path, diagnostics, environment: null) is { } kept && WithinLength(kept, type, raw, path) ? kept : null;
        }

        if (Expand(raw, path) is not { } scalar)
        {
            return null;
        }

        var text = scalar.Text;
        if (!WithinLength(text, type, node, path))
        {
            return null;
        }

        if (type.Pattern is not null && !Pattern(type.Pattern).IsMatch(text))
        {
            var hint = type.Example is null ? "" : $"for example `{type.Example}`";
            if (type.Pattern == AgentSchema.SemVerPattern && scalar.Kind is ScalarKind.Float or ScalarKind.Integer)
            {
                hint = $"write MAJOR.MINOR.PATCH, such as `{Echo(text)}{(text.Contains('.', StringComparison.Ordinal) ? "" : ".0")}.0`";
            }
            else if (type.Pattern == AgentSchema.NamePattern && Pattern(AgentSchema.NamePattern).IsMatch(text.ToLowerInvariant().Replace(' ', '_')))
            {
                hint = $"use lower case letters, digits, `_` and `-`, such as `{text.ToLowerInvariant().Replace(' ', '_')}`";
            }

            diagnostics.Error(DiagnosticCodes.InvalidFormat, node.Position, path, $"`{Echo(text)}` is not a valid {type.FormatName ?? "value"}.", hint);
            return null;
        }

        return text;
    }

    private bool WithinLength(string text, StringType type, ConfigNode node, string path)
    {
        if (type.MaxLength == 0 || text.Length <= type.MaxLength)
        {
            return true;
        }

        diagnostics.Error(DiagnosticCodes.OutOfRange, node.Position, path, $"`{path}` is {text.Length:N0} characters long; the limit is {type.MaxLength:N0}.");
        return false;
    }

    private object? ReadInteger(ConfigNode node, IntegerType type, string path)
    {
        if (Number(node, path, "an integer") is not { } scalar)
        {
            return null;
        }

        if (scalar.Kind != ScalarKind.Integer || !long.TryParse(scalar.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return WrongType(scalar, path, "an integer");
        }

        if (value < type.Minimum || value > type.Maximum)
        {
            diagnostics.Error(DiagnosticCodes.OutOfRange, node.Position, path,
                $"`{path}` is {value}; it must be between {type.Minimum:N0} and {type.Maximum:N0}.", RangeHint(value, type.Minimum, type.Maximum));
            return null;
        }

        return value;
    }

    private object? ReadNumber(ConfigNode node, NumberType type, string path)
    {
        if (Number(node, path, "a number") is not { } scalar)
        {
            return null;
        }

        if (scalar.Kind is not (ScalarKind.Integer or ScalarKind.Float)
            || !double.TryParse(scalar.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            return WrongType(scalar, path, "a number");
        }

        var belowMinimum = type.ExclusiveMinimum ? value <= type.Minimum : value < type.Minimum;
        if (belowMinimum || value > type.Maximum)
        {
            var range = type.ExclusiveMinimum ? $"greater than {Show(type.Minimum)} and at most {Show(type.Maximum)}" : $"between {Show(type.Minimum)} and {Show(type.Maximum)}";
            diagnostics.Error(DiagnosticCodes.OutOfRange, node.Position, path, $"`{path}` is {Show(value)}; it must be {range}.");
            return null;
        }

        return value;
    }

    private object? ReadBoolean(ConfigNode node, string path)
    {
        if (node is not ScalarNode raw || Expand(raw, path) is not { } scalar)
        {
            return node is ScalarNode ? null : WrongType(node, path, "true or false");
        }

        return scalar.Kind == ScalarKind.Boolean ? scalar.Text == "true" : WrongType(scalar, path, "true or false");
    }

    private object? ReadDuration(ConfigNode node, DurationType type, string path)
    {
        if (node is not ScalarNode raw || raw.Kind is ScalarKind.Null or ScalarKind.Boolean)
        {
            return WrongType(node, path, "a duration such as `90s`");
        }

        if (Expand(raw, path) is not { } scalar)
        {
            return null;
        }

        if (!DurationFormat.TryParse(scalar.Text, out var duration))
        {
            var hint = scalar.Kind is ScalarKind.Integer ? $"add a unit: `{Echo(scalar.Text)}s`" : "write a number and a unit: `500ms`, `90s`, `2m`, `1h`, `1h30m`";
            diagnostics.Error(DiagnosticCodes.InvalidFormat, node.Position, path, $"`{Echo(scalar.Text)}` is not a duration.", hint);
            return null;
        }

        if (duration < type.Minimum || duration > type.Maximum)
        {
            diagnostics.Error(DiagnosticCodes.OutOfRange, node.Position, path,
                $"`{path}` is {Echo(scalar.Text)}; it must be between {DurationFormat.Format(type.Minimum)} and {DurationFormat.Format(type.Maximum)}.");
            return null;
        }

        return duration;
    }

    private string? ReadEnum(ConfigNode node, EnumType type, string path)
    {
        if (node is not ScalarNode raw || raw.Kind is ScalarKind.Null)
        {
            return (string?)WrongType(node, path, $"one of {Quote(type.Values)}");
        }

        if (Expand(raw, path) is not { } scalar)
        {
            return null;
        }

        if (type.Values.Contains(scalar.Text))
        {
            return scalar.Text;
        }

        var suggestion = Suggestions.Closest(scalar.Text, type.Values);
        diagnostics.Error(DiagnosticCodes.InvalidValue, node.Position, path,
            $"`{Echo(scalar.Text)}` is not a valid `{LastSegment(path)}`; expected one of {Quote(type.Values)}.", Suggestions.DidYouMean(suggestion));
        return null;
    }

    private List<object>? ReadList(ConfigNode node, ListType type, string path)
    {
        if (node is not SequenceNode sequence)
        {
            var hint = node is ScalarNode ? "write a list, one `- item` per line, or `[a, b]`" : "";
            diagnostics.Error(DiagnosticCodes.WrongType, node.Position, path, $"`{path}` must be a list, not {node.Describe()}.", hint);
            return null;
        }

        if (sequence.Items.Count < type.MinItems || sequence.Items.Count > type.MaxItems)
        {
            var message = sequence.Items.Count < type.MinItems
                ? $"`{path}` needs at least {type.MinItems} item{(type.MinItems == 1 ? "" : "s")}."
                : $"`{path}` has {sequence.Items.Count} items; the limit is {type.MaxItems}.";
            diagnostics.Error(DiagnosticCodes.OutOfRange, node.Position, path, message);
            return null;
        }

        var items = new List<object>(sequence.Items.Count);
        var ok = true;
        for (var i = 0; i < sequence.Items.Count; i++)
        {
            if (ReadValue(sequence.Items[i], type.Items, $"{path}[{i}]") is { } item)
            {
                items.Add(item);
            }
            else
            {
                ok = false;
            }
        }

        return ok ? items : null;
    }

    // Values are strings (labels, headers) or, for maps of lists or objects (argument_patterns: {git: [...]}), objects.
    private SortedDictionary<string, T>? ReadMap<T>(ConfigNode node, MapType type, string path)
        where T : class
    {
        if (node is not MappingNode mapping)
        {
            return (SortedDictionary<string, T>?)WrongType(node, path, "a mapping of names to values");
        }

        var values = new SortedDictionary<string, T>(StringComparer.Ordinal);
        var ok = true;
        foreach (var entry in mapping.Entries)
        {
            if (ReadValue(entry.Value, type.Values, Join(path, entry.Key)) is T value)
            {
                values[entry.Key] = value;
            }
            else
            {
                ok = false;
            }
        }

        return ok ? values : null;
    }

    private ScalarNode? Number(ConfigNode node, string path, string expected)
    {
        if (node is not ScalarNode raw)
        {
            return (ScalarNode?)WrongType(node, path, expected);
        }

        if (raw.Kind == ScalarKind.String && !Interpolator.ContainsReference(raw.Text))
        {
            var hint = YamlDocumentReader.ResolvePlain(raw.Text, raw.Position).Kind is ScalarKind.Integer or ScalarKind.Float
                ? $"remove the quotes: `{Echo(raw.Text)}`" : "";
            diagnostics.Error(DiagnosticCodes.WrongType, node.Position, path, $"`{path}` must be {expected}, not a string.", hint);
            return null;
        }

        return Expand(raw, path);
    }

    private object? WrongType(ConfigNode node, string path, string expected)
    {
        var subject = path.Length == 0 ? "The agent file" : $"`{path}`";
        var hint = expected.StartsWith("true or false", StringComparison.Ordinal) && node is ScalarNode s && s.Text is "yes" or "no" or "on" or "off"
            ? $"YAML 1.2 reads `{s.Text}` as text; write `{(s.Text is "yes" or "on" ? "true" : "false")}`" : "";
        diagnostics.Error(DiagnosticCodes.WrongType, node.Position, path, $"{subject} must be {expected}, not {node.Describe()}.", hint);
        return null;
    }

    private void UnknownField(MappingEntry entry, string fieldPath, ObjectSpec spec, string parentPath)
    {
        if (diagnostics.IsFull)
        {
            diagnostics.Error(DiagnosticCodes.UnknownField, entry.KeyPosition, fieldPath, "");
            return; // not reported, so no suggestion to compute
        }

        if (SecretKey().IsMatch(entry.Key))
        {
            diagnostics.Error(DiagnosticCodes.SecretInFile, entry.KeyPosition, fieldPath,
                $"`{Join(parentPath, entry.Key)}` would put a secret in the agent file.",
                parentPath == "llm" ? "set the key in an environment variable and name it with `api_key_env`" : "pass secrets through environment variables with `${VAR}`");
            return;
        }

        var suggestion = Suggestions.Closest(entry.Key, spec.Fields.Select(f => f.Name));
        var hint = suggestion is not null ? Suggestions.DidYouMean(suggestion) : $"known fields{In(parentPath)}: {string.Join(", ", spec.Fields.Select(f => f.Name))}";
        diagnostics.Error(DiagnosticCodes.UnknownField, entry.KeyPosition, fieldPath, $"Unknown field `{entry.Key}`{In(parentPath)}.", hint);
    }

    private static bool HasInvalidValue(ValidatedObject result, string name) =>
        result.Written.TryGetValue(name, out var entry) && entry.Value is not ScalarNode { Kind: ScalarKind.Null };

    private static object DefaultValue(FieldSpec field, object fallback) => (field.Type, fallback) switch
    {
        (DurationType, string text) when DurationFormat.TryParse(text, out var duration) => duration,
        (ListType, string[] items) => items.Cast<object>().ToList(),
        _ => fallback,
    };

    private static string Example(FieldSpec field) => field.Type switch
    {
        StringType { Example: { } example } => example,
        EnumType choices => choices.Values[0],
        ObjectType => "{ ... }",
        ListType => "[ ... ]",
        _ => "...",
    };

    private static string RangeHint(long value, long minimum, long maximum) =>
        value > maximum ? $"use at most {maximum:N0}" : minimum == 1 ? "use a positive number" : $"use at least {minimum:N0}";

    private static string Describe(ObjectSpec spec) => spec.Title == "agent" ? "an agent definition" : $"`{spec.Title}`";

    private static string In(string path) => path.Length == 0 ? "" : $" in `{path}`";

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    private static string LastSegment(string path) => path[(path.LastIndexOf('.') + 1)..];

    private static string Quote(IEnumerable<string> values) => string.Join(", ", values.Select(v => $"`{v}`"));

    // Values are quoted back to the writer, bounded: a 1 MiB value must not make a 1 MiB message.
    internal static string Echo(string text)
    {
        var line = text.ReplaceLineEndings(" ");
        return line.Length <= 60 ? line : string.Concat(line.AsSpan(0, 57), "...");
    }

    private static string Show(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    private static Regex Pattern(string pattern)
    {
        lock (Patterns)
        {
            if (!Patterns.TryGetValue(pattern, out var regex))
            {
                regex = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
                Patterns[pattern] = regex;
            }

            return regex;
        }
    }

    [GeneratedRegex("^(api_?key|secret|password|token|access_token|auth_token)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SecretKey();
}
