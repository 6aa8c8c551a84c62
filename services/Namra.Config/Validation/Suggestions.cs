namespace Namra.Config.Validation;

/// <summary>"Did you mean" for misspelt field names and values.</summary>
internal static class Suggestions
{
    /// <summary>The candidate closest to <paramref name="input"/> by edit distance, if it is close enough to be a likely typo.</summary>
    public static string? Closest(string input, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var distance = candidate.Equals(input, StringComparison.OrdinalIgnoreCase) ? 0 : Distance(input.ToLowerInvariant(), candidate.ToLowerInvariant());
            if (distance < bestDistance)
            {
                (best, bestDistance) = (candidate, distance);
            }
        }

        // One edit in four characters (at least 2) is a typo; more is another word.
        var allowed = Math.Max(2, Math.Max(input.Length, best?.Length ?? 0) / 4);
        return bestDistance <= allowed ? best : null;
    }

    public static string DidYouMean(string? suggestion) => suggestion is null ? "" : $"did you mean `{suggestion}`?";

    /// <summary>
    /// Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions), on three rows on
    /// the stack. Names longer than 64 characters are no typo of a field name: they get <see cref="int.MaxValue"/>.
    /// </summary>
    internal static int Distance(string a, string b)
    {
        if (a.Length > 64 || b.Length > 64)
        {
            return int.MaxValue;
        }

        Span<int> twoBack = stackalloc int[b.Length + 1];
        Span<int> previous = stackalloc int[b.Length + 1];
        Span<int> current = stackalloc int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), previous[j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    current[j] = Math.Min(current[j], twoBack[j - 2] + 1);
                }
            }

            var recycled = twoBack;
            twoBack = previous;
            previous = current;
            current = recycled;
        }

        return previous[b.Length];
    }
}
