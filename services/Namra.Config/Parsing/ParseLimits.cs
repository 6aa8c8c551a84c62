namespace Namra.Config.Parsing;

/// <summary>Bounds on what the config service parses, so no agent file can exhaust a service.</summary>
public sealed record ParseLimits
{
    /// <summary>Largest document, in UTF-8 bytes. Default 1 MiB.</summary>
    public int MaxDocumentBytes { get; init; } = 1024 * 1024;

    /// <summary>Deepest nesting of mappings and lists. Default 32.</summary>
    public int MaxDepth { get; init; } = 32;

    /// <summary>Most nodes in the document after YAML aliases are expanded (bounds "billion laughs"). Default 100,000.</summary>
    public int MaxNodes { get; init; } = 100_000;

    /// <summary>The defaults.</summary>
    public static ParseLimits Default { get; } = new();
}
