using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Namra.Hosting.Telemetry;

/// <summary>
/// Creates service metrics on a .NET <see cref="Meter"/>, recorded once and exported twice by OpenTelemetry: scraped
/// at <c>/metrics</c> in Prometheus's format (dots become underscores, counters gain <c>_total</c>, histograms of
/// seconds <c>_seconds</c>) and, when an endpoint is configured, over OTLP. Label values are given in the order the
/// labels were declared.
/// </summary>
public static class NamraMetrics
{
    // 0.1 ms doubling to about 52 s: model calls and runs take seconds, store and tool calls milliseconds.
    private static readonly double[] SecondsBuckets = [.. Enumerable.Range(0, 20).Select(i => 0.0001 * Math.Pow(2, i))];

    /// <summary>A counter named <paramref name="name"/> (dotted, as OpenTelemetry names it); Prometheus sees <c>name_total</c> with dots as underscores.</summary>
    public static NamraCounter Counter(Meter meter, string name, string unit, string description, params string[] labelNames)
    {
        ArgumentNullException.ThrowIfNull(meter);
        ArgumentNullException.ThrowIfNull(name);
        return new NamraCounter(meter.CreateCounter<long>(name, unit, description), labelNames);
    }

    /// <summary>A histogram of seconds; Prometheus sees <c>name_seconds</c>.</summary>
    public static NamraHistogram DurationHistogram(Meter meter, string name, string description, params string[] labelNames) =>
        DurationHistogram(meter, name, description, SecondsBuckets, labelNames);

    /// <summary>A histogram of seconds with the bucket bounds <paramref name="buckets"/>.</summary>
    public static NamraHistogram DurationHistogram(Meter meter, string name, string description, IReadOnlyList<double> buckets, params string[] labelNames)
    {
        ArgumentNullException.ThrowIfNull(meter);
        ArgumentNullException.ThrowIfNull(name);
        return new NamraHistogram(
            meter.CreateHistogram(name, "s", description, tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = buckets }),
            labelNames);
    }

    internal static TagList Tags(string[] names, string[] values)
    {
        if (names.Length != values.Length)
        {
            throw new ArgumentException($"Expected {names.Length} label values ({string.Join(", ", names)}), got {values.Length}.", nameof(values));
        }

        var tags = new TagList();
        for (var i = 0; i < names.Length; i++)
        {
            tags.Add(names[i], values[i]);
        }

        return tags;
    }
}

/// <summary>A counter with declared labels; see <see cref="NamraMetrics"/>.</summary>
public sealed class NamraCounter
{
    private readonly Counter<long> _meter;
    private readonly string[] _labelNames;

    internal NamraCounter(Counter<long> meter, string[] labelNames) => (_meter, _labelNames) = (meter, labelNames);

    /// <summary>Adds <paramref name="value"/> for the given label values, in the order the labels were declared.</summary>
    public void Add(long value, params string[] labelValues)
    {
        if (_meter.Enabled) // only when an exporter listens
        {
            _meter.Add(value, NamraMetrics.Tags(_labelNames, labelValues));
        }
    }
}

/// <summary>A histogram of seconds with declared labels; see <see cref="NamraMetrics"/>.</summary>
public sealed class NamraHistogram
{
    private readonly Histogram<double> _meter;
    private readonly string[] _labelNames;

    internal NamraHistogram(Histogram<double> meter, string[] labelNames) => (_meter, _labelNames) = (meter, labelNames);

    /// <summary>Records <paramref name="seconds"/> for the given label values.</summary>
    public void Record(double seconds, params string[] labelValues)
    {
        if (_meter.Enabled) // only when an exporter listens
        {
            _meter.Record(seconds, NamraMetrics.Tags(_labelNames, labelValues));
        }
    }
}
