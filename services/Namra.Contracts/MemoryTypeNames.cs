using Namra.Contracts.V1;

namespace Namra.Contracts;

/// <summary>The names memory stores have in agent files (<c>memory.type: sqlite</c>) and settings, both ways.</summary>
public static class MemoryTypeNames
{
    /// <summary>Every store's name.</summary>
    public static IReadOnlyList<string> All { get; } = ["in_memory", "sqlite", "redis", "postgres"];

    /// <summary>The name of <paramref name="type"/>; <c>unspecified</c> for a value this build does not know.</summary>
    public static string Of(MemoryType type) => type switch
    {
        MemoryType.InMemory => "in_memory",
        MemoryType.Sqlite => "sqlite",
        MemoryType.Redis => "redis",
        MemoryType.Postgres => "postgres",
        _ => "unspecified",
    };

    /// <summary>The store a name names; <see cref="MemoryType.Unspecified"/> for any other text.</summary>
    public static MemoryType Parse(string name) => name switch
    {
        "in_memory" => MemoryType.InMemory,
        "sqlite" => MemoryType.Sqlite,
        "redis" => MemoryType.Redis,
        "postgres" => MemoryType.Postgres,
        _ => MemoryType.Unspecified,
    };
}
