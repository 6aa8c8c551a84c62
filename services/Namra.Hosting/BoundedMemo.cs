using System.Collections.Concurrent;

namespace Namra.Hosting;

/// <summary>
/// Remembers what a function answered for each key, for the first <c>capacity</c> keys; any key after those is
/// answered afresh each time. For answers keyed by what callers send (model names, schemas), so that many distinct
/// keys cannot grow memory without bound.
/// </summary>
public sealed class BoundedMemo<TKey, TValue>(int capacity, IEqualityComparer<TKey>? comparer = null)
    where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, TValue> _answers = new(comparer);
    private int _count;

    /// <summary>The remembered answer for <paramref name="key"/>, or <paramref name="answer"/>'s, remembered while there is room.</summary>
    public TValue GetOrAdd(TKey key, Func<TKey, TValue> answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        if (_answers.TryGetValue(key, out var known))
        {
            return known;
        }

        var value = answer(key);
        if (Volatile.Read(ref _count) < capacity && _answers.TryAdd(key, value))
        {
            Interlocked.Increment(ref _count);
        }

        return value;
    }
}
