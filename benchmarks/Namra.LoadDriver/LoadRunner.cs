using System.Diagnostics;

namespace Namra.LoadDriver;

/// <summary>What one measured batch of runs took.</summary>
internal sealed record LoadResult(double WallSeconds, double[] LatenciesMs)
{
    public double Percentile(double p)
    {
        var sorted = LatenciesMs.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100 * sorted.Length) - 1)];
    }
}

/// <summary>Runs a fixed number of runs with a fixed number in flight, timing each.</summary>
internal static class LoadRunner
{
    public static async Task<LoadResult> RunAsync(Func<CancellationToken, Task> run, int runs, int concurrency, CancellationToken cancellationToken)
    {
        var latencies = new double[runs];
        var next = -1;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            int index;
            while ((index = Interlocked.Increment(ref next)) < runs)
            {
                var started = Stopwatch.GetTimestamp();
                await run(cancellationToken).ConfigureAwait(false);
                latencies[index] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
        }, cancellationToken))).ConfigureAwait(false);
        return new LoadResult(wall.Elapsed.TotalSeconds, latencies);
    }
}
