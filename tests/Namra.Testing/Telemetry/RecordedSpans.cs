using System.Collections.Concurrent;
using System.Diagnostics;

namespace Namra.Testing.Telemetry;

/// <summary>
/// Records every span that ends in this process from the sources whose names start with the prefix, all sampled, until
/// disposed. The process's other tests run meanwhile: pick the spans of one trace.
/// </summary>
public sealed class RecordedSpans : IDisposable
{
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly ActivityListener _listener;

    public RecordedSpans(string sourcePrefix = "Namra.")
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.StartsWith(sourcePrefix, StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>The spans of one trace that have ended.</summary>
    public List<Activity> Of(ActivityTraceId traceId) => [.. _stopped.Where(a => a.TraceId == traceId)];

    /// <summary>The spans of one trace that have ended, the trace given as 32 hex digits.</summary>
    public List<Activity> Of(string traceId) => [.. _stopped.Where(a => a.TraceId.ToHexString() == traceId)];

    public void Dispose() => _listener.Dispose();
}
