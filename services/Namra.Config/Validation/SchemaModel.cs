namespace Namra.Config.Validation;

/// <summary>
/// The agent format as data: the validator walks files against it, and the JSON Schema at
/// <c>schemas/agent.schema.json</c> is generated from it, so the two cannot drift apart.
/// </summary>
internal abstract record FieldType;

/// <summary>
/// Text; <paramref name="Pattern"/> (a .NET and ECMAScript regex) constrains its form. <paramref name="Deferred"/>
/// values may hold secrets: their <c>${VAR}</c> references are checked but kept, for the service that uses the
/// value to resolve from its own environment, so secrets never enter a definition or its hash.
/// </summary>
internal sealed record StringType(string? Pattern = null, string? FormatName = null, string? Example = null, int MaxLength = 0, bool Deferred = false) : FieldType;

internal sealed record IntegerType(long Minimum, long Maximum) : FieldType;

internal sealed record NumberType(double Minimum, double Maximum, bool ExclusiveMinimum = false) : FieldType;

internal sealed record BooleanType : FieldType;

/// <summary>A duration written as <c>500ms</c>, <c>90s</c>, <c>2m</c>, <c>1h30m</c>.</summary>
internal sealed record DurationType(TimeSpan Minimum, TimeSpan Maximum) : FieldType;

internal sealed record EnumType(IReadOnlyList<string> Values) : FieldType;

internal sealed record ListType(FieldType Items, int MinItems = 0, int MaxItems = 1000) : FieldType;

/// <summary>A mapping of free keys to values of one type (labels, headers, environment).</summary>
internal sealed record MapType(FieldType Values) : FieldType;

/// <summary>Any JSON-like value (tool call arguments).</summary>
internal sealed record AnyObjectType : FieldType;

internal sealed record ObjectType(ObjectSpec Spec) : FieldType;

/// <summary>A word of <paramref name="Words"/>, or a mapping of <paramref name="Spec"/>'s fields (<c>approval: always</c> or <c>approval: { when: ... }</c>).</summary>
internal sealed record WordOrObjectType(EnumType Words, ObjectSpec Spec) : FieldType;

/// <summary>One field of an object.</summary>
internal sealed record FieldSpec(string Name, FieldType Type, string Description, bool Required = false, object? Default = null);

/// <summary>An object with a closed set of fields.</summary>
internal sealed record ObjectSpec(string Title, IReadOnlyList<FieldSpec> Fields)
{
    public FieldSpec? Find(string name) => Fields.FirstOrDefault(f => f.Name == name);
}
