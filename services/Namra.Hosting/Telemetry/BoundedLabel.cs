using System.Collections.Concurrent;

namespace Namra.Hosting.Telemetry;

/// <summary>
/// A metric label whose values come from callers (agent names, tool names of definitions sent inline): the first
/// <paramref name="max"/> distinct values get series of their own, any later one shares <c>other</c>, so a caller
/// cannot grow the metrics without end.
/// </summary>
public sealed class BoundedLabel(int max)
{
    /// <summary>The value later values share.</summary>
    public const string Other = "other";

    private readonly ConcurrentDictionary<string, bool> _kept = new(StringComparer.Ordinal);
    private int _count;

    /// <summary>The label for <paramref name="value"/>: itself while there is room, or when it has its series already.</summary>
    public string Of(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (_kept.ContainsKey(value))
        {
            return value;
        }

        if (Interlocked.Increment(ref _count) <= max)
        {
            _kept.TryAdd(value, true);
            return value;
        }

        Interlocked.Decrement(ref _count);
        return Other;
    }
}
