using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;

namespace Namra.Memory.Options;

/// <summary>Settings of the memory service; section <c>Namra:Memory</c>. Connection strings come from here (or the environment) only.</summary>
[System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "[Range(typeof(TimeSpan), ...)] is metadata here: the options validation source generator checks it with its own strongly typed copy, no TypeConverter.")]
public sealed class MemoryOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Namra:Memory";

    /// <summary>The store used when a request names none, and for run records: <c>in_memory</c>, <c>sqlite</c>, <c>redis</c> or <c>postgres</c>. Default <c>in_memory</c>.</summary>
    [RegularExpression("^(in_memory|sqlite|redis|postgres)$")]
    public string DefaultStore { get; set; } = "in_memory";

    /// <summary>SQLite database file; the store is served when set. <c>~/.local/share/namra/memory.db</c> is the CLI's choice.</summary>
    public string? SqlitePath { get; set; }

    /// <summary>StackExchange.Redis configuration string (<c>host:port,password=...</c>); the store is served when set.</summary>
    public string? RedisConnectionString { get; set; }

    /// <summary>Npgsql connection string; the store is served when set. Its schema is created or upgraded at start.</summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>
    /// Largest message accepted, in bytes of its protobuf encoding. Default and least 1 MiB
    /// (<see cref="Contracts.MessageLimits.MaxMessageBytes"/>): the public API accepts inputs up to that size.
    /// </summary>
    [Range(Contracts.MessageLimits.MaxMessageBytes, 64 * 1024 * 1024)]
    public int MaxMessageBytes { get; set; } = Contracts.MessageLimits.MaxMessageBytes;

    /// <summary>Most messages in one append. Default 1,000.</summary>
    [Range(1, 100_000)]
    public int MaxMessagesPerAppend { get; set; } = 1000;

    /// <summary>Most messages <c>GetHistory</c> reads when only a token budget bounds it. Default 10,000.</summary>
    [Range(1, 1_000_000)]
    public int MaxHistoryMessages { get; set; } = 10_000;

    /// <summary>Most memories searched per namespace by <c>Recall</c> (exact search). Default 100,000.</summary>
    [Range(1, 10_000_000)]
    public int MaxMemoriesPerNamespace { get; set; } = 100_000;

    /// <summary>
    /// Run records the <c>in_memory</c> store keeps; past that it forgets the oldest finished ones. Default 10,000
    /// (a few tens of megabytes). The other stores keep every record.
    /// </summary>
    [Range(1, 10_000_000)]
    public int MaxInMemoryRuns { get; set; } = 10_000;

    /// <summary>Longest a store call may take before it fails with <c>UNAVAILABLE</c>. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan StoreTimeout { get; set; } = TimeSpan.FromSeconds(5);

    internal static string Name(MemoryType type) => Contracts.MemoryTypeNames.Of(type);
}

/// <summary>Validates <see cref="MemoryOptions"/> at start-up (source-generated).</summary>
[OptionsValidator]
internal sealed partial class MemoryOptionsValidator : IValidateOptions<MemoryOptions>;
