using System.Diagnostics;
using System.Diagnostics.Metrics;
using Prometheus;

namespace Namra.Hosting.Telemetry;

/// <summary>
/// Creates service metrics that are recorded twice from one call: in prometheus-net (scraped at
/// <c>/metrics</c> with Prometheus types and names) and in a .NET <see cref="Meter"/> (exported over OTLP by
/// OpenTelemetry). prometheus-net's own bridge from .NET meters would turn counters into gauges and
/// prefix every name with the meter's name, so Namra records into each system directly.
/// </summary>
public static class NamraMetrics
{
    /// <summary>A counter named <paramref name="name"/> (dotted, as OpenTelemetry names it); Prometheus sees <c>name_total</c> with dots as underscores.</summary>
    public static NamraCounter Counter(Meter meter, string name, string unit, string description, params string[] labelNames)
    {
        ArgumentNullException.ThrowIfNull(meter);
        ArgumentNullException.ThrowIfNull(name);
        return new NamraCounter(
            Metrics.CreateCounter(PrometheusName(name) + "_total", description, labelNames),
            meter.CreateCounter<long>(name, unit, description),
            labelNames);
    }

    /// <summary>A histogram of seconds; Prometheus sees <c>name_seconds</c>.</summary>
    public static NamraHistogram DurationHistogram(Meter meter, string name, string description, params string[] labelNames)
    {
        ArgumentNullException.ThrowIfNull(meter);
        ArgumentNullException.ThrowIfNull(name);
        return new NamraHistogram(
            Metrics.CreateHistogram(PrometheusName(name) + "_seconds", description, new HistogramConfiguration
            {
                LabelNames = labelNames,
                Buckets = Histogram.ExponentialBuckets(0.0001, 2, 20),
            }),
            meter.CreateHistogram<double>(name, "s", description),
            labelNames);
    }

    private static string PrometheusName(string name) => name.Replace('.', '_');

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

/// <summary>A counter recorded in Prometheus and OpenTelemetry; see <see cref="NamraMetrics"/>.</summary>
public sealed class NamraCounter
{
    private readonly Prometheus.Counter _prometheus;
    private readonly Counter<long> _meter;
    private readonly string[] _labelNames;

    internal NamraCounter(Prometheus.Counter prometheus, Counter<long> meter, string[] labelNames) =>
        (_prometheus, _meter, _labelNames) = (prometheus, meter, labelNames);

    /// <summary>Adds <paramref name="value"/> for the given label values, in the order the labels were declared.</summary>
    public void Add(long value, params string[] labelValues)
    {
        _prometheus.WithLabels(labelValues).Inc(value);
        if (_meter.Enabled) // only when an OpenTelemetry exporter listens
        {
            _meter.Add(value, NamraMetrics.Tags(_labelNames, labelValues));
        }
    }
}

/// <summary>A histogram of seconds recorded in Prometheus and OpenTelemetry; see <see cref="NamraMetrics"/>.</summary>
public sealed class NamraHistogram
{
    private readonly Prometheus.Histogram _prometheus;
    private readonly Histogram<double> _meter;
    private readonly string[] _labelNames;

    internal NamraHistogram(Prometheus.Histogram prometheus, Histogram<double> meter, string[] labelNames) =>
        (_prometheus, _meter, _labelNames) = (prometheus, meter, labelNames);

    /// <summary>Records <paramref name="seconds"/> for the given label values.</summary>
    public void Record(double seconds, params string[] labelValues)
    {
        _prometheus.WithLabels(labelValues).Observe(seconds);
        if (_meter.Enabled) // only when an OpenTelemetry exporter listens
        {
            _meter.Record(seconds, NamraMetrics.Tags(_labelNames, labelValues));
        }
    }
}
