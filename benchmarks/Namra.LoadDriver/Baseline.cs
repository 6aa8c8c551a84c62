using System.Diagnostics;
using System.Text.Json;

namespace Namra.LoadDriver;

/// <summary>The baseline as a process of its own: the bare loop, measured by <see cref="SelfMeasured"/>.</summary>
internal static class Baseline
{
    public static async Task<int> RunAsync(Uri provider, int runs, int concurrency, CancellationToken cancellationToken)
    {
        var idleRss = Process.GetCurrentProcess().WorkingSet64;
        using var loop = new BareLoop(provider);
        return await SelfMeasured.RunAsync(ct => loop.RunAsync("What is (17 + 25) * 2?", ct), idleRss, runs, concurrency, cancellationToken);
    }
}

/// <summary>
/// A process that sends its own runs and measures itself (the baseline, and Namra embedded as the CLI runs it): it
/// warms up, measures, and prints its figures (its own CPU and memory, so the driver's never count) as JSON.
/// </summary>
internal static class SelfMeasured
{
    public static async Task<int> RunAsync(Func<CancellationToken, Task> run, long idleRss, int runs, int concurrency, CancellationToken cancellationToken)
    {
        using var self = Process.GetCurrentProcess();
        double CpuSeconds()
        {
            self.Refresh();
            return self.TotalProcessorTime.TotalSeconds;
        }

        var warmUp = await LoadRunner.WarmUpAsync(run, concurrency, CpuSeconds, cancellationToken);
        using var sampler = AllocationSampler.FromEnvironment();
        sampler?.Start();
        self.Refresh();
        var cpuBefore = self.TotalProcessorTime;
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var result = await LoadRunner.RunAsync(run, runs, concurrency, cancellationToken);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        sampler?.WriteTable(runs);
        self.Refresh();
        var report = new ProcessFigures(
            result.WallSeconds, (self.TotalProcessorTime - cpuBefore).TotalSeconds, result.LatenciesMs, idleRss, self.PeakWorkingSet64, warmUp, allocated);
        Console.WriteLine(JsonSerializer.Serialize(report));
        return 0;
    }
}

/// <summary>A child's own figures.</summary>
/// <param name="WallSeconds">How long the measured runs took.</param>
/// <param name="CpuSeconds">The process's CPU time (user + system) during them.</param>
/// <param name="LatenciesMs">Each run's latency.</param>
/// <param name="IdleRssBytes">Resident memory before the first run.</param>
/// <param name="PeakRssBytes">Peak resident memory.</param>
/// <param name="WarmUp">What the warm-up took.</param>
/// <param name="AllocatedBytes">Bytes the process allocated on its managed heap during the measured runs (exact, not sampled).</param>
internal sealed record ProcessFigures(double WallSeconds, double CpuSeconds, double[] LatenciesMs, long IdleRssBytes, long PeakRssBytes, WarmUp WarmUp, long AllocatedBytes);
