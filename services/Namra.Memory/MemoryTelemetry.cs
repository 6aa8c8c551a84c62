using System.Diagnostics;
using System.Diagnostics.Metrics;
using Namra.Hosting.Telemetry;

namespace Namra.Memory;

/// <summary>Traces and metrics of the memory service.</summary>
internal static class MemoryTelemetry
{
    public const string Name = "Namra.Memory";

    public static readonly ActivitySource ActivitySource = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Operations, by operation, store and outcome (ok or the status code).</summary>
    public static readonly NamraCounter Operations = NamraMetrics.Counter(Meter,
        "namra.memory.operations", "{operation}", "Memory operations, by outcome.", "operation", "store", "outcome");

    /// <summary>Time an operation took.</summary>
    public static readonly NamraHistogram Duration = NamraMetrics.DurationHistogram(Meter,
        "namra.memory.operation.duration", "Time of a memory operation.", "operation", "store");
}
