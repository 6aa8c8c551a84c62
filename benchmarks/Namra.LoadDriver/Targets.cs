using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Namra.Testing;

namespace Namra.LoadDriver;

internal sealed record TargetsOptions(int Runs, int[] Concurrency, int Repeat, string Output, bool ReuseBuilds = false, bool StartupOnly = false);

/// <summary>
/// A server build's start: from process start to its gRPC port accepting connections and to health SERVING, and
/// resident memory once idle, per role.
/// </summary>
internal sealed record ServerStartFigures(string Build, double ListeningMs, double ReadyMs, Dictionary<string, double> IdleRssMbByRole, Dictionary<string, double> IdlePrivateMbByRole);

/// <summary>One line of the targets table: a figure, its floor, their ratio, and the target.</summary>
internal sealed record TargetRow(string Target, string Figure, string Floor, string Ratio, string Goal, bool Met);

/// <summary>
/// Every performance target of Namra from one command, each figure beside its floor measured in the same run: the
/// CLI and the server compiled ahead of time (start, memory, size), then whole runs under load in every mode against
/// the bare loop, a bare REST endpoint and the bare distributed hops.
/// </summary>
internal static class Targets
{
    private static readonly string[] LoadModes = ["baseline", "embedded", "bare-rest", "server-rest", "server-rest-aot", "bare-distributed", "distributed", "distributed-aot"];
    private static readonly string[] SingleRoles = ["config", "llm-gateway", "tool-executor", "memory", "orchestrator"];

    public static async Task<int> RunAsync(TargetsOptions options, CancellationToken cancellationToken)
    {
        var output = Path.GetFullPath(options.Output);
        var jitCli = await ColdStart.BuildAsync(output, "jit", ["build", ColdStart.Cli, "-c", "Release"], cancellationToken, options.ReuseBuilds);
        var aotCli = await ColdStart.BuildAsync(output, "aot", ["publish", ColdStart.Cli, "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true"], cancellationToken, options.ReuseBuilds);
        var launcher = await ColdStart.BuildAsync(output, "launcher", ["publish", ColdStart.NativeCli, "-c", "Release", "-r", "linux-x64", "-p:PublishFullCli=false"], cancellationToken, options.ReuseBuilds);
        var aotServer = await ColdStart.BuildAsync(output, "server-aot",
            ["publish", RepositoryPaths.Combine("services", "Namra.Server"), "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true"], cancellationToken, options.ReuseBuilds);
        var aotServerExecutable = Path.Combine(aotServer, "namra-server");

        var coldStart = await ColdStart.MeasureAsync([("JIT", jitCli), ("NativeAOT", aotCli), ("NativeAOT launcher", launcher)], options.Repeat, runs: [true, true, false], cancellationToken);
        var launcherMb = new FileInfo(Path.Combine(launcher, "namra")).Length / 1024.0 / 1024.0;
        var aotCliMb = new FileInfo(Path.Combine(aotCli, "namra")).Length / 1024.0 / 1024.0;
        var servers = new List<ServerStartFigures>
        {
            await MeasureServerStartAsync("JIT", ["dotnet", Path.Combine(AppContext.BaseDirectory, "namra-server.dll")], options.Repeat, cancellationToken),
            await MeasureServerStartAsync("NativeAOT", [aotServerExecutable], options.Repeat, cancellationToken),
        };
        foreach (var server in servers)
        {
            Console.WriteLine(JsonSerializer.Serialize(server));
        }

        var load = new DriverOptions(TimeSpan.FromMilliseconds(10), options.Runs, options.Concurrency, LoadModes, Path.Combine(output, "load"), [], AotServer: aotServerExecutable);
        var results = options.StartupOnly ? [] : await Driver.MeasureAsync(load, cancellationToken);

        var rows = Rows(coldStart, launcherMb, servers, results, options.Concurrency);
        var markdown = Markdown(rows, coldStart, aotCliMb, launcherMb, servers, load, results, options);
        Directory.CreateDirectory(output);
        await File.WriteAllTextAsync(Path.Combine(output, "targets.json"), JsonSerializer.Serialize(new { coldStart, launcherMb, aotCliMb, servers, results, rows }, Driver.Indented), cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(output, "targets.md"), markdown, cancellationToken);
        Console.WriteLine();
        Console.WriteLine(markdown);
        return 0;
    }

    /// <summary>
    /// Starts a server with all five roles <paramref name="repeat"/> times and takes the median time from process start to
    /// health SERVING; then each role alone, once, for its resident memory one second after it serves.
    /// </summary>
    private static async Task<ServerStartFigures> MeasureServerStartAsync(string build, string[] command, int repeat, CancellationToken cancellationToken)
    {
        var agents = Directory.CreateTempSubdirectory("namra-targets-");
        await File.WriteAllTextAsync(Path.Combine(agents.FullName, "load_agent.yaml"), Driver.Agent, cancellationToken);
        try
        {
            var (listening, ready) = (new List<double>(), new List<double>());
            for (var round = -1; round < repeat; round++)
            {
                var (listeningMs, readyMs, _, _) = await StartAsync(command, string.Join(',', SingleRoles), agents.FullName, settle: false, cancellationToken);
                if (round >= 0)
                {
                    listening.Add(listeningMs);
                    ready.Add(readyMs);
                }
            }

            var (rss, own) = (new Dictionary<string, double>(), new Dictionary<string, double>());
            foreach (var role in SingleRoles.Append(string.Join(',', SingleRoles)))
            {
                var (_, _, bytes, privateBytes) = await StartAsync(command, role, agents.FullName, settle: true, cancellationToken);
                var name = role.Contains(',', StringComparison.Ordinal) ? "all five" : role;
                rss[name] = bytes / 1024.0 / 1024.0;
                own[name] = privateBytes / 1024.0 / 1024.0;
            }

            return new ServerStartFigures(build, ColdStart.Median(listening), ColdStart.Median(ready), rss, own);
        }
        finally
        {
            agents.Delete(recursive: true);
        }
    }

    private static async Task<(double ListeningMs, double ReadyMs, long IdleRss, long IdlePrivate)> StartAsync(string[] command, string roles, string agents, bool settle, CancellationToken cancellationToken)
    {
        var grpc = LocalPorts.Free();
        var environment = new Dictionary<string, string>
        {
            ["NAMRA_SERVICES"] = roles,
            ["Namra__Host__ListenAddress"] = "127.0.0.1",
            ["Namra__Host__GrpcPort"] = grpc.ToString(CultureInfo.InvariantCulture),
            ["Namra__Host__HttpPort"] = LocalPorts.Free().ToString(CultureInfo.InvariantCulture),
            ["Namra__Config__AgentsPath"] = agents,
            ["ANTHROPIC_API_KEY"] = "sk-ant-targets",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        var start = Stopwatch.GetTimestamp();
        using var child = Child.Start(command, environment);
        // The port first, tried every millisecond: a gRPC channel whose first connection is refused waits out a backoff
        // (about a second) before it tries again, which would be measured as the server's start.
        await LocalPorts.WaitUntilListeningAsync(System.Net.IPAddress.Loopback, grpc, TimeSpan.FromMilliseconds(1));
        var listening = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        await Driver.WaitForHealthAsync($"http://127.0.0.1:{grpc}", cancellationToken, pollEvery: TimeSpan.FromMilliseconds(1));
        var ready = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (settle)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        }

        return (listening, ready, child.Rss(), child.PrivateDirty());
    }

    private static List<TargetRow> Rows(List<ColdStartFigures> coldStart, double launcherMb, List<ServerStartFigures> servers, List<Measurement> results, int[] concurrency)
    {
        var aot = coldStart.Single(c => c.Build == "NativeAOT");
        var jit = coldStart.Single(c => c.Build == "JIT");
        var native = coldStart.Single(c => c.Build == "NativeAOT launcher");
        var aotServer = servers.Single(s => s.Build == "NativeAOT");
        var largestService = aotServer.IdleRssMbByRole.Where(r => r.Key != "all five").MaxBy(r => r.Value);
        var rows = new List<TargetRow>
        {
            new("1. `namra run`: process start to first provider request (NativeAOT CLI)", Ms(aot.RunFirstRequestMs), $"`namra version` {Ms(aot.VersionMs)}",
                Ratio(aot.RunFirstRequestMs / aot.VersionMs), "< 50 ms", aot.RunFirstRequestMs < 50),
            new("1. the same with the JIT CLI, for comparison", Ms(jit.RunFirstRequestMs), $"`namra version` {Ms(jit.VersionMs)}", Ratio(jit.RunFirstRequestMs / jit.VersionMs), "", true),
            new("1. `namra-server` (all five roles): process start to health SERVING (NativeAOT)", Ms(aotServer.ReadyMs), $"`namra version` (NativeAOT) {Ms(aot.VersionMs)}",
                Ratio(aotServer.ReadyMs / aot.VersionMs), "< 100 ms", aotServer.ReadyMs < 100),
            new("1. idle RSS per service (NativeAOT), largest", $"{largestService.Value:0} MB ({largestService.Key})", "", "", "< 50 MB", largestService.Value < 50),
            new("1. of that, private to the process (not the executable's shared clean pages)", $"{aotServer.IdlePrivateMbByRole[largestService.Key]:0} MB ({largestService.Key})", "", "", "", true),
            new("1. validate-only native CLI: size, `namra validate`", $"{launcherMb:0.0} MB, {Ms(native.ValidateMs)}", $"`namra version` {Ms(native.VersionMs)}",
                Ratio(native.ValidateMs / native.VersionMs), "< 10 MB", launcherMb < 10),
        };

        Measurement? Find(string mode, int c) => results.FirstOrDefault(r => r.Mode == mode && r.Concurrency == c);
        foreach (var c in concurrency)
        {
            if (Find("embedded", c) is { } embedded && Find("baseline", c) is { } baseline)
            {
                rows.Add(new($"2. embedded CPU per run, concurrency {c}", Cpu(embedded), $"bare loop {Cpu(baseline)}", Ratio(embedded.CpuRatio), "≤ 1.5×", embedded.CpuRatio <= 1.5));
                var allocation = embedded.KbAllocatedPerRun / baseline.KbAllocatedPerRun;
                rows.Add(new($"5. embedded allocations per run, concurrency {c}", $"{embedded.KbAllocatedPerRun:0.0} KB", $"bare loop {baseline.KbAllocatedPerRun:0.0} KB", Ratio(allocation), "≤ 2×", allocation <= 2));
            }

            foreach (var (floor, modes) in Driver.FloorsOf)
            {
                foreach (var mode in modes)
                {
                    if (Find(mode, c) is not { } namra || Find(floor, c) is not { } bare)
                    {
                        continue;
                    }

                    var (number, goal) = floor == "bare-rest" ? ("3.", 1.5) : ("4.", 1.3);
                    var cpu = namra.CpuMillisecondsPerRun / bare.CpuMillisecondsPerRun;
                    rows.Add(new($"{number} {mode} CPU per run, concurrency {c}", Cpu(namra), $"{floor} {Cpu(bare)}", Ratio(cpu), $"≤ {goal}×", cpu <= goal));
                    if (floor == "bare-distributed")
                    {
                        var p99 = namra.P99OverheadMs / bare.P99OverheadMs;
                        rows.Add(new($"4. {mode} p99 over the provider, concurrency {c}", $"{namra.P99OverheadMs:0.0} ms", $"{floor} {bare.P99OverheadMs:0.0} ms", Ratio(p99), "≤ 1.3×", p99 <= 1.3));
                    }

                    rows.Add(new($"5. {mode} memory per in-flight run, concurrency {c}", $"{namra.KbPerInFlightRun:0} KB", $"{floor} {bare.KbPerInFlightRun:0} KB", "", "< 256 KB", namra.KbPerInFlightRun < 256));
                }
            }
        }

        return rows;
    }

    private static string Markdown(List<TargetRow> rows, List<ColdStartFigures> coldStart, double aotCliMb, double launcherMb, List<ServerStartFigures> servers,
        DriverOptions load, List<Measurement> results, TargetsOptions options)
    {
        var text = new StringBuilder();
        text.AppendLine("| target | figure | floor | ratio | goal | met |");
        text.AppendLine("|---|---:|---:|---:|---:|:---:|");
        foreach (var row in rows)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {row.Target} | {row.Figure} | {row.Floor} | {row.Ratio} | {row.Goal} | {(row.Goal.Length == 0 ? "" : row.Met ? "yes" : "no")} |");
        }

        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Cold start, median of {options.Repeat} starts (NativeAOT CLI {aotCliMb:0.0} MB, launcher {launcherMb:0.0} MB):");
        text.AppendLine();
        text.AppendLine("| build | `namra version` | `namra validate` | `namra run`: to first provider request | `namra run`: to exit |");
        text.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var c in coldStart)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {c.Build} | {Ms(c.VersionMs)} | {Ms(c.ValidateMs)} | {(double.IsNaN(c.RunFirstRequestMs) ? "–" : Ms(c.RunFirstRequestMs))} | {(double.IsNaN(c.RunExitMs) ? "–" : Ms(c.RunExitMs))} |");
        }

        text.AppendLine();
        text.AppendLine("Server start (median: to the gRPC port accepting connections, to health SERVING) and idle RSS one second after SERVING, "
            + "with the part private to the process in brackets (written pages; the rest is the executable's clean pages, shared by every process that runs it):");
        text.AppendLine();
        text.AppendLine("| build | listening | ready | " + string.Join(" | ", servers[0].IdleRssMbByRole.Keys) + " |");
        text.AppendLine("|---|---:|---:|" + string.Concat(servers[0].IdleRssMbByRole.Keys.Select(_ => "---:|")));
        foreach (var s in servers)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {s.Build} | {Ms(s.ListeningMs)} | {Ms(s.ReadyMs)} | {string.Join(" | ", s.IdleRssMbByRole.Select(r => $"{r.Value:0} MB ({s.IdlePrivateMbByRole[r.Key]:0})"))} |");
        }

        if (results.Count == 0)
        {
            return text.ToString();
        }

        text.AppendLine();
        text.AppendLine("Whole runs under load:");
        text.AppendLine();
        text.Append(Driver.Markdown(load, results));
        return text.ToString();
    }

    private static string Ms(double value) => string.Create(CultureInfo.InvariantCulture, $"{value:0} ms");

    private static string Cpu(Measurement m) => string.Create(CultureInfo.InvariantCulture, $"{m.CpuMillisecondsPerRun:0.000} ms");

    private static string Ratio(double value) => string.Create(CultureInfo.InvariantCulture, $"{value:0.00}×");
}
