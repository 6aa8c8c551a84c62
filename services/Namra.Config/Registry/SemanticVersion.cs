using System.Globalization;
using System.Text.RegularExpressions;
using Namra.Config.Validation;

namespace Namra.Config.Registry;

/// <summary>A Semantic Versioning 2.0.0 version, ordered by its precedence rules (build metadata ignored).</summary>
internal sealed partial record SemanticVersion(long Major, long Minor, long Patch, IReadOnlyList<string> PreRelease, string Text) : IComparable<SemanticVersion>
{
    public bool IsPreRelease => PreRelease.Count > 0;

    public static SemanticVersion? TryParse(string text)
    {
        var match = Pattern().Match(text);
        if (!match.Success
            || !long.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            || !long.TryParse(match.Groups[2].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
            || !long.TryParse(match.Groups[3].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var patch))
        {
            return null;
        }

        var pre = match.Groups[4].Success ? match.Groups[4].Value.Split('.') : [];
        return new SemanticVersion(major, minor, patch, pre, text);
    }

    public int CompareTo(SemanticVersion? other)
    {
        if (other is null)
        {
            return 1;
        }

        var core = (Major, Minor, Patch).CompareTo((other.Major, other.Minor, other.Patch));
        if (core != 0)
        {
            return core;
        }

        // A pre-release sorts before its release; identifiers compare numerically when both are numbers.
        if (IsPreRelease != other.IsPreRelease)
        {
            return IsPreRelease ? -1 : 1;
        }

        for (var i = 0; i < Math.Min(PreRelease.Count, other.PreRelease.Count); i++)
        {
            var (a, b) = (PreRelease[i], other.PreRelease[i]);
            var aNumeric = long.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out var aNumber);
            var bNumeric = long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var bNumber);
            var order = (aNumeric, bNumeric) switch
            {
                (true, true) => aNumber.CompareTo(bNumber),
                (true, false) => -1,
                (false, true) => 1,
                _ => string.CompareOrdinal(a, b),
            };
            if (order != 0)
            {
                return order;
            }
        }

        var length = PreRelease.Count.CompareTo(other.PreRelease.Count);

        // Build metadata does not count for precedence, but two spellings are still two versions.
        return length != 0 ? length : string.CompareOrdinal(Text, other.Text);
    }

    public override string ToString() => Text;

    [GeneratedRegex(AgentSchema.SemVerPattern)]
    private static partial Regex Pattern();
}
