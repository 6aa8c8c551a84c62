using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Text;

namespace Namra.LoadDriver;

/// <summary>
/// What a self-measured process allocates, by type: the runtime's allocation ticks (one about every 100 KB allocated,
/// naming the type whose allocation crossed the mark), summed per type. A sample, not a count: over thousands of runs
/// each type's share of the ticks is its share of the bytes. On when <c>NAMRA_LOAD_ALLOCATIONS</c> names a file for
/// the table (pass it with <c>--namra-env</c>).
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const string Variable = "NAMRA_LOAD_ALLOCATIONS";
    private const int AllocationTick = 10;
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> bytesByType = new(StringComparer.Ordinal);
    private volatile bool sampling;
    private (int Gen0, int Gen1, int Gen2, TimeSpan Paused) atStart;

    /// <summary>A sampler if the environment asks for one, else null.</summary>
    public static AllocationSampler? FromEnvironment() =>
        string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable)) ? null : new AllocationSampler();

    /// <summary>Counts ticks from now on (the warm-up's are left out).</summary>
    public void Start()
    {
        atStart = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
        sampling = true;
    }

    /// <summary>Stops counting and writes the table, largest first, with each type's bytes per run.</summary>
    public void WriteTable(int runs)
    {
        sampling = false;
        var total = bytesByType.Values.Sum();
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"sampled {total / 1024.0 / runs:0.0} KB per run over {runs} runs");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"collections: gen0 {GC.CollectionCount(0) - atStart.Gen0}, gen1 {GC.CollectionCount(1) - atStart.Gen1}, gen2 {GC.CollectionCount(2) - atStart.Gen2}; paused {(GC.GetTotalPauseDuration() - atStart.Paused).TotalMilliseconds * 1000 / runs:0.0} µs per run");
        foreach (var (type, bytes) in bytesByType.OrderByDescending(pair => pair.Value).Take(60))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{bytes / 1024.0 / runs,8:0.00} KB  {100.0 * bytes / total,5:0.0}%  {type}");
        }

        File.WriteAllText(Environment.GetEnvironmentVariable(Variable)!, text.ToString());
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (!sampling || eventData.EventId != AllocationTick || eventData.Payload is not { } payload || eventData.PayloadNames is not { } names)
        {
            return;
        }

        var type = payload[names.IndexOf("TypeName")] as string ?? "?";
        var bytes = names.IndexOf("AllocationAmount64") is var at and >= 0 ? Convert.ToInt64(payload[at], CultureInfo.InvariantCulture) : 100_000;
        bytesByType.AddOrUpdate(type, bytes, (_, sum) => sum + bytes);
    }
}
