using System.Globalization;
using System.Text.RegularExpressions;

namespace Namra.Config.Validation;

/// <summary>Durations as agent files write them: <c>500ms</c>, <c>90s</c>, <c>2m</c>, <c>1h30m</c>, <c>1d</c>.</summary>
internal static partial class DurationFormat
{
    public const string Pattern = "^([0-9]+(ms|s|m|h|d))+$";

    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (!DurationRegex().IsMatch(text))
        {
            return false;
        }

        try
        {
            foreach (Match part in PartRegex().Matches(text))
            {
                if (!long.TryParse(part.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
                {
                    return false;
                }

                duration += part.Groups[2].Value switch
                {
                    "ms" => TimeSpan.FromMilliseconds(amount),
                    "s" => TimeSpan.FromSeconds(amount),
                    "m" => TimeSpan.FromMinutes(amount),
                    "h" => TimeSpan.FromHours(amount),
                    _ => TimeSpan.FromDays(amount),
                };
            }

            return true;
        }
        catch (Exception exception) when (exception is OverflowException or ArgumentOutOfRangeException)
        {
            // Longer than TimeSpan holds (about 29,000 years): not a duration anyone means.
            return false;
        }
    }

    public static string Format(TimeSpan duration) => duration switch
    {
        { TotalMilliseconds: < 1000 } => $"{duration.TotalMilliseconds:0}ms",
        _ when duration.TotalHours >= 1 && duration.TotalHours == Math.Floor(duration.TotalHours) => $"{duration.TotalHours:0}h",
        _ when duration.TotalMinutes >= 1 && duration.TotalMinutes == Math.Floor(duration.TotalMinutes) => $"{duration.TotalMinutes:0}m",
        _ => $"{duration.TotalSeconds:0.###}s",
    };

    [GeneratedRegex(Pattern)]
    private static partial Regex DurationRegex();

    [GeneratedRegex("([0-9]+)(ms|s|m|h|d)")]
    private static partial Regex PartRegex();
}
