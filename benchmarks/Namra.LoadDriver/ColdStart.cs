using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Namra.Testing;

namespace Namra.LoadDriver;

internal sealed record ColdStartOptions(int Repeat, string Output);

/// <summary>One CLI build's start-up figures, medians over the repeats, in milliseconds.</summary>
internal sealed record ColdStartFigures(string Build, double VersionMs, double ValidateMs, double RunFirstRequestMs, double RunExitMs);

/// <summary>
/// Cold start of the <c>namra</c> CLI, built four ways (plain JIT; published ReadyToRun; ReadyToRun composite and
/// self-contained; the NativeAOT launcher with the ReadyToRun CLI in its <c>lib/</c>): <c>namra version</c> to exit
/// (the runtime's own start, the baseline), <c>namra validate</c> to exit, and an embedded <c>namra run</c> from
/// process start to the provider receiving its first request, and to exit. The provider is the local Anthropic
/// server in this process, with no latency.
/// </summary>
internal static class ColdStart
{
    private static readonly JsonSerializerOptions Line = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static async Task<int> RunAsync(ColdStartOptions options, CancellationToken cancellationToken)
    {
        var output = Path.GetFullPath(options.Output);
        var builds = new List<(string Name, string Folder)>
        {
            ("JIT (dotnet build)", await BuildAsync(output, "jit", ["build", Cli, "-c", "Release"], cancellationToken)),
            ("ReadyToRun (dotnet publish)", await BuildAsync(output, "r2r", ["publish", Cli, "-c", "Release", "-r", "linux-x64", "--self-contained", "false"], cancellationToken)),
            ("ReadyToRun composite, self-contained", await BuildAsync(output, "composite",
                ["publish", Cli, "-c", "Release", "-r", "linux-x64", "--self-contained", "true", "-p:PublishReadyToRunComposite=true"], cancellationToken)),
            ("NativeAOT launcher, ReadyToRun CLI in lib/", await BuildAsync(output, "native", ["publish", NativeCli, "-c", "Release", "-r", "linux-x64"], cancellationToken)),
        };

        var results = await MeasureAsync(builds, options.Repeat, runs: null, cancellationToken);
        Directory.CreateDirectory(output);
        await File.WriteAllTextAsync(Path.Combine(output, "coldstart.json"), JsonSerializer.Serialize(new { repeat = options.Repeat, results }, Driver.Indented), cancellationToken);
        var markdown = Markdown(results, options.Repeat);
        await File.WriteAllTextAsync(Path.Combine(output, "coldstart.md"), markdown, cancellationToken);
        Console.WriteLine();
        Console.WriteLine(markdown);
        return 0;
    }

    /// <summary>
    /// Times <c>namra version</c>, <c>validate</c> and <c>run</c> of each build: medians of <paramref name="repeat"/> starts.
    /// <paramref name="runs"/> says, per build, whether it runs agents (a launcher published alone does not); all do when null.
    /// </summary>
    public static async Task<List<ColdStartFigures>> MeasureAsync(IReadOnlyList<(string Name, string Folder)> builds, int repeat, bool[]? runs, CancellationToken cancellationToken)
    {
        var work = Directory.CreateTempSubdirectory("namra-coldstart-");
        var agent = Path.Combine(work.FullName, "load_agent.yaml");
        await File.WriteAllTextAsync(agent, Driver.Agent, cancellationToken);
        var port = LocalPorts.Free();
        long firstRequest = 0;
        await using var provider = ProviderServer.Create(port, TimeSpan.Zero, () => Interlocked.CompareExchange(ref firstRequest, Stopwatch.GetTimestamp(), 0));
        await provider.StartAsync(cancellationToken);
        var environment = new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = "sk-ant-coldstart",
            ["ANTHROPIC_BASE_URL"] = $"http://127.0.0.1:{port}",
            ["NAMRA_DATA_DIR"] = work.FullName,
            ["NO_COLOR"] = "1",
        };

        var results = new List<ColdStartFigures>();
        for (var index = 0; index < builds.Count; index++)
        {
            var (name, folder) = builds[index];
            var runsAgents = runs?[index] ?? true;
            var cli = Path.Combine(folder, "namra");
            var version = new List<double>();
            var validate = new List<double>();
            var first = new List<double>();
            var exit = new List<double>();
            // One unmeasured round first, so every measured start finds the files in the page cache.
            for (var round = -1; round < repeat; round++)
            {
                var v = await TimeAsync(cli, ["version"], environment, cancellationToken);
                var c = await TimeAsync(cli, ["validate", RepositoryPaths.Combine("examples", "agents", "calculator.yaml")], environment, cancellationToken);
                if (round >= 0)
                {
                    version.Add(v);
                    validate.Add(c);
                }

                if (!runsAgents)
                {
                    continue;
                }

                Interlocked.Exchange(ref firstRequest, 0);
                var start = Stopwatch.GetTimestamp();
                var r = await TimeAsync(cli, ["run", agent, "--input", "What is (17 + 25) * 2?"], environment, cancellationToken, start);
                var reached = Interlocked.Read(ref firstRequest);
                if (reached == 0)
                {
                    throw new InvalidOperationException("namra run never called the provider.");
                }

                if (round >= 0)
                {
                    first.Add(Stopwatch.GetElapsedTime(start, reached).TotalMilliseconds);
                    exit.Add(r);
                }
            }

            var figures = new ColdStartFigures(name, Median(version), Median(validate), runsAgents ? Median(first) : double.NaN, runsAgents ? Median(exit) : double.NaN);
            results.Add(figures);
            Console.WriteLine(JsonSerializer.Serialize(figures, Line));
        }

        work.Delete(recursive: true);
        return results;
    }

    internal static string Cli => RepositoryPaths.Combine("cli", "Namra.Cli");

    internal static string NativeCli => RepositoryPaths.Combine("cli", "Namra.Cli.Native");

    /// <summary>Builds the CLI into <c>cli-{name}</c> under the output folder (the CLI project publishes ReadyToRun).</summary>
    /// <remarks>Every build is measured from its <c>namra</c>; the native launcher's hands <c>run</c> to <c>lib/namra</c>.</remarks>
    internal static async Task<string> BuildAsync(string output, string name, string[] arguments, CancellationToken cancellationToken, bool reuse = false)
    {
        var folder = Path.Combine(output, "cli-" + name);
        if (reuse && Directory.Exists(folder))
        {
            Console.WriteLine($"{folder}: built before, used as it is");
            return folder;
        }

        string[] command = [.. arguments, "-o", folder];
        // Both publishes share obj/.../linux-x64; precompiled images left by the composite one crash the other.
        var precompiled = RepositoryPaths.Combine("cli", "Namra.Cli", "obj", "Release", "net10.0", "linux-x64", "R2R");
        if (Directory.Exists(precompiled))
        {
            Directory.Delete(precompiled, recursive: true);
        }

        Console.WriteLine($"dotnet {string.Join(' ', command)}");
        using var build = Child.Start(["dotnet", .. command], new Dictionary<string, string>(), captureOutput: true);
        var log = await build.Process.StandardOutput.ReadToEndAsync(cancellationToken);
        await build.Process.WaitForExitAsync(cancellationToken);
        if (build.Process.ExitCode != 0)
        {
            throw new InvalidOperationException($"Building the CLI failed:\n{log}");
        }

        return folder;
    }

    /// <summary>Milliseconds from <paramref name="start"/> (now, when not given) to the process's exit; a failure is an error.</summary>
    private static async Task<double> TimeAsync(string cli, string[] args, Dictionary<string, string> environment, CancellationToken cancellationToken, long? start = null)
    {
        var began = start ?? Stopwatch.GetTimestamp();
        using var child = Child.Start([cli, .. args], environment, captureOutput: true);
        var stdout = await child.Process.StandardOutput.ReadToEndAsync(cancellationToken);
        await child.Process.WaitForExitAsync(cancellationToken);
        var elapsed = Stopwatch.GetElapsedTime(began).TotalMilliseconds;
        if (child.Process.ExitCode != 0)
        {
            throw new InvalidOperationException($"namra {string.Join(' ', args)} exited with {child.Process.ExitCode} (its errors are above):\n{stdout}");
        }

        return elapsed;
    }

    internal static double Median(List<double> values)
    {
        values.Sort();
        return values.Count % 2 == 1 ? values[values.Count / 2] : (values[(values.Count / 2) - 1] + values[values.Count / 2]) / 2;
    }

    private static string Markdown(List<ColdStartFigures> results, int repeat)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Median of {repeat} starts each; ratios to `namra version` of the same build (the runtime's own start).");
        text.AppendLine();
        text.AppendLine("| build | `namra version` | `namra validate` | `namra run`: start to first provider request | `namra run`: start to exit |");
        text.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Build} | {r.VersionMs:F0} ms (1.0) | {r.ValidateMs:F0} ms ({r.ValidateMs / r.VersionMs:F1}) | {r.RunFirstRequestMs:F0} ms ({r.RunFirstRequestMs / r.VersionMs:F1}) | {r.RunExitMs:F0} ms ({r.RunExitMs / r.VersionMs:F1}) |");
        }

        return text.ToString();
    }
}
