using Microsoft.Extensions.Caching.Memory;

namespace Namra.Hosting;

/// <summary>
/// What a function answered for each key, kept in a <see cref="MemoryCache"/> of at most <c>capacity</c> entries (past
/// that, the least recently used go), for good or for a lifetime, on the process's <see cref="TimeProvider"/> (tests
/// that move time move it too). For answers keyed by what callers send (model names, schemas, agents, tool
/// servers), so that many distinct keys cannot grow memory without bound.
/// </summary>
public sealed class BoundedCache(int capacity, TimeProvider? timeProvider = null) : IDisposable
{
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = capacity, Clock = new Clock(timeProvider ?? TimeProvider.System) });

    /// <summary>The kept answer for <paramref name="key"/>, or <paramref name="answer"/>'s, kept from now on.</summary>
    public T GetOrAdd<TKey, T>(TKey key, Func<TKey, T> answer)
        where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(answer);
        if (_cache.TryGetValue(key, out var known))
        {
            return (T)known!;
        }

        var value = answer(key);
        _cache.Set(key, value, new MemoryCacheEntryOptions { Size = 1 });
        return value;
    }

    /// <summary>
    /// The kept answer for <paramref name="key"/>, or <paramref name="answer"/>'s, kept for <paramref name="lifetime"/>
    /// (not at all when it is zero). A failed answer is not kept.
    /// </summary>
    public async Task<T> GetOrAddAsync<T>(object key, TimeSpan lifetime, Func<Task<T>> answer)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(answer);
        if (lifetime > TimeSpan.Zero && _cache.TryGetValue(key, out var known))
        {
            return (T)known!;
        }

        var value = await answer().ConfigureAwait(false);
        if (lifetime > TimeSpan.Zero)
        {
            _cache.Set(key, value, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = lifetime });
        }

        return value;
    }

    /// <inheritdoc/>
    public void Dispose() => _cache.Dispose();

    private sealed class Clock(TimeProvider timeProvider) : Microsoft.Extensions.Internal.ISystemClock
    {
        public DateTimeOffset UtcNow => timeProvider.GetUtcNow();
    }
}
