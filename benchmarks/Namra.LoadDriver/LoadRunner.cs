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

/// <summary>How long the measured processes took to reach their steady state, and what it cost them.</summary>
/// <param name="Runs">Runs sent before measuring.</param>
/// <param name="CpuSeconds">CPU the measured processes spent on them (the JIT's tiers, caches filling, heaps growing).</param>
/// <param name="FirstBatchCpuMsPerRun">CPU per run of the first batch, when nothing was compiled yet.</param>
/// <param name="LastBatchCpuMsPerRun">CPU per run of the last batch, the steady state the measurement starts from.</param>
/// <param name="Batches">Batches of three seconds sent.</param>
internal sealed record WarmUp(int Runs, double CpuSeconds, double FirstBatchCpuMsPerRun, double LastBatchCpuMsPerRun, int Batches);

/// <summary>Runs a fixed number of runs with a fixed number in flight, timing each.</summary>
internal static class LoadRunner
{
    // Steady: after at least a minute, the last three batches within 5% of their mean CPU per run. At most 90 s.
    private const double SteadyWithin = 0.05;
    private const int SteadyBatches = 3;
    private const int MinBatches = 20;
    private const int MaxBatches = 30;
    private static readonly TimeSpan BatchDuration = TimeSpan.FromSeconds(3);

    /// <summary>The rule, in words, for the results.</summary>
    public static string WarmUpRule => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"Warm-up before measuring (batches of {BatchDuration.TotalSeconds:0} s, at least {MinBatches}, until {SteadyBatches} in a row cost the same CPU per run, within {SteadyWithin * 100:0}% of their mean; at most {MaxBatches})");

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

    /// <summary>
    /// Sends runs in batches of three seconds, at least twenty, until three batches in a row cost the same CPU per run
    /// (within 5% of their mean): a .NET process under load keeps compiling hot methods again (tiered JIT,
    /// profile-guided) for tens of seconds after it starts, its thread pool and heaps settle, and a measurement that
    /// began earlier would count that one-off cost as every run's. The warm-up's own cost is reported beside it.
    /// </summary>
    /// <param name="run">One run.</param>
    /// <param name="concurrency">Runs in flight at once.</param>
    /// <param name="cpuSeconds">The measured processes' CPU time so far.</param>
    /// <param name="cancellationToken">Stops the warm-up.</param>
    public static async Task<WarmUp> WarmUpAsync(Func<CancellationToken, Task> run, int concurrency, Func<double> cpuSeconds, CancellationToken cancellationToken)
    {
        var start = cpuSeconds();
        var perRun = new List<double>();
        var runs = 0;
        while (perRun.Count < MaxBatches && !IsSteady(perRun))
        {
            var before = cpuSeconds();
            var done = await RunForAsync(run, BatchDuration, concurrency, cancellationToken).ConfigureAwait(false);
            perRun.Add((cpuSeconds() - before) * 1000 / done);
            runs += done;
            Console.Error.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"  warm-up batch {perRun.Count}: {done} runs, {perRun[^1]:0.000} CPU ms/run"));
        }

        return new WarmUp(runs, cpuSeconds() - start, perRun[0], perRun[^1], perRun.Count);
    }

    private static bool IsSteady(List<double> perRun)
    {
        if (perRun.Count < MinBatches)
        {
            return false;
        }

        var last = perRun.TakeLast(SteadyBatches).ToArray();
        var mean = last.Average();
        return last.All(x => Math.Abs(x - mean) <= SteadyWithin * mean);
    }

    // Sends runs until the time is up; returns how many completed.
    private static async Task<int> RunForAsync(Func<CancellationToken, Task> run, TimeSpan duration, int concurrency, CancellationToken cancellationToken)
    {
        var done = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (clock.Elapsed < duration)
            {
                await run(cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref done);
            }
        }, cancellationToken))).ConfigureAwait(false);
        return done;
    }
}
