using System.Diagnostics;
using System.Text.Json;

namespace Namra.LoadDriver;

/// <summary>The baseline as a process of its own: warms up, measures, prints its figures (its own CPU and memory) as JSON.</summary>
internal static class Baseline
{
    public static async Task<int> RunAsync(Uri provider, int runs, int concurrency, CancellationToken cancellationToken)
    {
        using var self = Process.GetCurrentProcess();
        var idleRss = self.WorkingSet64;
        using var loop = new BareLoop(provider);
        double CpuSeconds()
        {
            self.Refresh();
            return self.TotalProcessorTime.TotalSeconds;
        }

        var warmUp = await LoadRunner.WarmUpAsync(ct => loop.RunAsync("What is (17 + 25) * 2?", ct), concurrency, CpuSeconds, cancellationToken);
        self.Refresh();
        var cpuBefore = self.TotalProcessorTime;
        var result = await LoadRunner.RunAsync(ct => loop.RunAsync("What is (17 + 25) * 2?", ct), runs, concurrency, cancellationToken);
        self.Refresh();
        var report = new ProcessFigures(
            result.WallSeconds, (self.TotalProcessorTime - cpuBefore).TotalSeconds, result.LatenciesMs, idleRss, self.PeakWorkingSet64, warmUp);
        Console.WriteLine(JsonSerializer.Serialize(report));
        return 0;
    }
}

/// <summary>A child's own figures.</summary>
internal sealed record ProcessFigures(double WallSeconds, double CpuSeconds, double[] LatenciesMs, long IdleRssBytes, long PeakRssBytes, WarmUp WarmUp);
