using System.Globalization;
using System.Text.RegularExpressions;

namespace Namra.Testing.Telemetry;

/// <summary>
/// A <c>/metrics</c> scrape in Prometheus's text format, read the way Prometheus reads it: a sample is found by its
/// name and the labels asked for, whatever other labels it carries and in whatever order.
/// </summary>
public sealed partial class PrometheusScrape
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _samples = [];

    /// <summary>Parses <paramref name="text"/>.</summary>
    public PrometheusScrape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Text = text;
        foreach (var line in text.Split('\n'))
        {
            if (SampleLine().Match(line) is not { Success: true } sample)
            {
                continue;
            }

            var labels = Label().Matches(sample.Groups["labels"].Value)
                .ToDictionary(label => label.Groups["name"].Value, label => label.Groups["value"].Value, StringComparer.Ordinal);
            _samples.Add((sample.Groups["name"].Value, labels, double.Parse(sample.Groups["value"].Value, CultureInfo.InvariantCulture)));
        }
    }

    /// <summary>The scrape as served.</summary>
    public string Text { get; }

    /// <summary>The values of the samples named <paramref name="name"/> that carry every label of <paramref name="labels"/>.</summary>
    public IReadOnlyList<double> Values(string name, params (string Name, string Value)[] labels) =>
        [.. _samples.Where(sample => sample.Name == name && labels.All(label => sample.Labels.TryGetValue(label.Name, out var value) && value == label.Value))
            .Select(sample => sample.Value)];

    /// <summary>The value of the one sample named <paramref name="name"/> with <paramref name="labels"/>; fails when there is none or more than one.</summary>
    public double Value(string name, params (string Name, string Value)[] labels) => Values(name, labels) switch
    {
        [var value] => value,
        var found => throw new InvalidOperationException(
            $"Expected one sample {name}{{{string.Join(',', labels.Select(l => $"{l.Name}=\"{l.Value}\""))}}}, found {found.Count} in:\n{Text}"),
    };

    [GeneratedRegex("^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(?<labels>.*)\\})? (?<value>[^ ]+)( [0-9]+)?$")]
    private static partial Regex SampleLine();

    [GeneratedRegex("(?<name>[a-zA-Z_][a-zA-Z0-9_]*)=\"(?<value>(?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex Label();
}
