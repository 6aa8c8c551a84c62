using Microsoft.Extensions.Time.Testing;
using Namra.Hosting;

namespace Namra.IntegrationTests;

/// <summary>The cache every service keeps answers in: bounded in entries, timed on the process's clock, failures never kept.</summary>
public sealed class BoundedCacheTests
{
    [Fact]
    public async Task AnAnswer_IsKeptForItsLifetime_OnTheProcessClock_ThenAskedAgain()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cache = new BoundedCache(10, time);
        var asked = 0;

        var first = await cache.GetOrAddAsync("k", TimeSpan.FromSeconds(30), () => Task.FromResult(++asked));
        time.Advance(TimeSpan.FromSeconds(29));
        var kept = await cache.GetOrAddAsync("k", TimeSpan.FromSeconds(30), () => Task.FromResult(++asked));
        time.Advance(TimeSpan.FromSeconds(2));
        var fresh = await cache.GetOrAddAsync("k", TimeSpan.FromSeconds(30), () => Task.FromResult(++asked));

        Assert.Equal((1, 1, 2), (first, kept, fresh));
    }

    [Fact]
    public async Task AFailedAnswer_IsNotKept()
    {
        using var cache = new BoundedCache(10);

        await Assert.ThrowsAsync<InvalidOperationException>(() => cache.GetOrAddAsync<int>("k", TimeSpan.FromMinutes(1), () => throw new InvalidOperationException("down")));
        var answer = await cache.GetOrAddAsync("k", TimeSpan.FromMinutes(1), () => Task.FromResult(42));

        Assert.Equal(42, answer);
    }

    [Fact]
    public async Task ManyDistinctKeys_NeverGrowItPastItsCapacity()
    {
        using var cache = new BoundedCache(100);
        var asked = 0;

        for (var i = 0; i < 10_000; i++)
        {
            cache.GetOrAdd(i, key => { asked++; return key * 2; });
        }

        // Compaction runs in the background; once it has, at most the capacity is kept, so the oldest keys are asked again.
        await Task.Yield();
        var before = asked;
        for (var i = 0; i < 200; i++)
        {
            Assert.Equal(i * 2, cache.GetOrAdd(i, key => { asked++; return key * 2; }));
        }

        Assert.True(asked - before >= 100, $"{asked - before} of the first 200 keys were asked again");
        Assert.Null(cache.GetOrAdd<string, string?>("null", _ => null)); // an answer of null is an answer
    }
}
