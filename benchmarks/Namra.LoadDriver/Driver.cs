using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Namra.Contracts.V1;

namespace Namra.LoadDriver;

/// <summary>What <c>namra-load drive</c> measures; <c>AotServer</c> is a NativeAOT build of namra-server, for the modes ending in <c>-aot</c>.</summary>
internal sealed record DriverOptions(TimeSpan Latency, int Runs, int[] Concurrency, string[] Modes, string Output, Dictionary<string, string> NamraEnvironment, string? ApiKey = null, string? AotServer = null)
{
    /// <summary>How a namra-server process starts: the JIT build beside this driver, or <see cref="AotServer"/>.</summary>
    public string[] ServerCommand(bool aot) => aot
        ? [AotServer is { Length: > 0 } executable ? executable : throw new ArgumentException("The -aot modes need --aot-server, a namra-server published with -p:PublishAot=true.")]
        : ["dotnet", Path.Combine(AppContext.BaseDirectory, "namra-server.dll")];
}

/// <summary>One measured mode at one concurrency.</summary>
internal sealed record Measurement(
    string Mode, int Concurrency, int Runs, double RunsPerSecond, double P50OverheadMs, double P99OverheadMs,
    double CpuMillisecondsPerRun, double CpuRatio, Dictionary<string, double> PeakRssMb, Dictionary<string, double> IdleRssMb, double KbPerInFlightRun,
    WarmUp WarmUp, Dictionary<string, double>? CpuMillisecondsPerRunByProcess = null, double KbAllocatedPerRun = double.NaN);

/// <summary>
/// Starts the provider, then measures each mode: the bare baseline (a process of its own), Namra embedded (the five
/// services and their caller in one process, as <c>namra run</c> hosts them), server (one namra-server with all five
/// services, called over gRPC), the bare distributed baseline (the run's hops between four framework-less processes)
/// and distributed (five namra-server processes), each at each concurrency. CPU is read from the measured processes
/// only, never from this driver or the provider.
/// </summary>
internal static class Driver
{
    internal const string Agent = """
        name: load_agent
        version: 1.0.0
        llm:
          provider: anthropic
          model: claude-sonnet-4-5-20250929
          max_tokens: 1024
        system_prompt: Use the calculator for every computation.
        tools:
          - name: calculator
            type: builtin.calculator
        """;

    private static readonly string[] Roles = ["config", "llm-gateway", "tool-executor", "memory", "orchestrator"];
    /// <summary>The results as JSON files: indented, NaN written as a name (a ratio with no floor).</summary>
    internal static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static async Task<int> RunAsync(DriverOptions options, CancellationToken cancellationToken)
    {
        var results = await MeasureAsync(options, cancellationToken);
        Directory.CreateDirectory(options.Output);
        await File.WriteAllTextAsync(Path.Combine(options.Output, "load.json"), JsonSerializer.Serialize(new { latencyMs = options.Latency.TotalMilliseconds, results }, Indented), cancellationToken);
        var markdown = Markdown(options, results);
        await File.WriteAllTextAsync(Path.Combine(options.Output, "load.md"), markdown, cancellationToken);
        Console.WriteLine();
        Console.WriteLine(markdown);
        return 0;
    }

    /// <summary>Measures every mode of <paramref name="options"/> at every concurrency, in order.</summary>
    public static async Task<List<Measurement>> MeasureAsync(DriverOptions options, CancellationToken cancellationToken)
    {
        var providerPort = Namra.Testing.LocalPorts.Free();
        using var provider = Child.Start(SelfCommand("provider", "--port", Port(providerPort), "--latency-ms", Port((int)options.Latency.TotalMilliseconds)), new Dictionary<string, string>());
        await Namra.Testing.LocalPorts.WaitUntilListeningAsync(providerPort);
        var providerUrl = new Uri($"http://127.0.0.1:{providerPort}");
        var results = new List<Measurement>();
        var baselineCpu = new Dictionary<int, double>();

        foreach (var mode in options.Modes)
        {
            foreach (var concurrency in options.Concurrency)
            {
                var runs = concurrency == 1 ? Math.Max(50, options.Runs / 10) : options.Runs;
                // A mode ending in -aot is the same mode with the NativeAOT build of namra-server.
                var aot = mode.EndsWith("-aot", StringComparison.Ordinal);
                var measurement = (aot ? mode[..^4] : mode) switch
                {
                    "baseline" => await MeasureSelfMeasuredAsync(mode, ["baseline", "--provider", providerUrl.ToString()], [], runs, concurrency, options, cancellationToken),
                    "embedded" => await MeasureEmbeddedAsync(providerUrl, runs, concurrency, options, cancellationToken),
                    "server" => await MeasureNamraAsync(mode, [string.Join(',', Roles)], providerUrl, runs, concurrency, options, aot, cancellationToken),
                    "server-rest" => await MeasureNamraAsync(mode, [string.Join(',', Roles)], providerUrl, runs, concurrency, options, aot, cancellationToken, overRest: true),
                    "bare-rest" => await MeasureBareRestAsync(providerUrl, runs, concurrency, options, cancellationToken),
                    "distributed" => await MeasureNamraAsync(mode, Roles, providerUrl, runs, concurrency, options, aot, cancellationToken),
                    "bare-distributed" => await MeasureBareDistributedAsync(providerUrl, runs, concurrency, options, cancellationToken),
                    _ => throw new ArgumentException($"Unknown mode {mode}; use baseline, embedded, bare-rest, server-rest, server, bare-distributed or distributed (the last three also with -aot)."),
                };
                if (mode == "baseline")
                {
                    baselineCpu[concurrency] = measurement.CpuMillisecondsPerRun;
                }

                measurement = measurement with
                {
                    CpuRatio = baselineCpu.TryGetValue(concurrency, out var bare) && bare > 0 ? measurement.CpuMillisecondsPerRun / bare : double.NaN,
                };
                results.Add(measurement);
                Console.WriteLine(Row(measurement));
            }
        }

        return results;
    }

    /// <summary>Namra embedded: its agents folder, the provider, and the runtime settings namra-server ships with.</summary>
    private static async Task<Measurement> MeasureEmbeddedAsync(Uri provider, int runs, int concurrency, DriverOptions options, CancellationToken cancellationToken)
    {
        var agents = await WriteAgentsAsync(cancellationToken);
        try
        {
            var environment = NamraEnvironment(agents.FullName, provider, options);
            // namra-server's runtimeconfig sets it; namra-load's own, which this process runs under, does not.
            environment.TryAdd("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit", "0");
            return await MeasureSelfMeasuredAsync("embedded", ["embedded"], environment, runs, concurrency, options, cancellationToken);
        }
        finally
        {
            agents.Delete(recursive: true);
        }
    }

    /// <summary>A mode whose process sends its own runs and reports its own figures: the baseline, and Namra embedded.</summary>
    private static async Task<Measurement> MeasureSelfMeasuredAsync(string mode, string[] command, Dictionary<string, string> environment, int runs, int concurrency, DriverOptions options, CancellationToken cancellationToken)
    {
        using var child = Child.Start(SelfCommand([.. command, "--runs", Port(runs), "--concurrency", Port(concurrency)]), environment, captureOutput: true);
        var json = await child.Process.StandardOutput.ReadToEndAsync(cancellationToken);
        await child.Process.WaitForExitAsync(cancellationToken);
        var figures = JsonSerializer.Deserialize<ProcessFigures>(json) ?? throw new InvalidOperationException($"The {mode} process printed nothing.");
        var result = new LoadResult(figures.WallSeconds, figures.LatenciesMs);
        var overhead = 2 * options.Latency.TotalMilliseconds;
        return new Measurement(mode, concurrency, runs, runs / figures.WallSeconds, result.Percentile(50) - overhead, result.Percentile(99) - overhead,
            figures.CpuSeconds * 1000 / runs, double.NaN, new() { [mode] = Mb(figures.PeakRssBytes) }, new() { [mode] = Mb(figures.IdleRssBytes) }, double.NaN, figures.WarmUp,
            KbAllocatedPerRun: figures.AllocatedBytes / 1024.0 / runs);
    }

    /// <summary>Throws unless the run completed: a failing run must not pass for a fast one.</summary>
    public static void EnsureCompleted(Run run)
    {
        if (run.Status != RunStatus.Completed)
        {
            throw new InvalidOperationException($"A run ended {run.Status}: {run.Error?.Message}");
        }
    }

    private static async Task<DirectoryInfo> WriteAgentsAsync(CancellationToken cancellationToken)
    {
        var agents = Directory.CreateTempSubdirectory("namra-load-");
        await File.WriteAllTextAsync(Path.Combine(agents.FullName, "load_agent.yaml"), Agent, cancellationToken);
        return agents;
    }

    // What every Namra process of the measurement is given: the agents folder, the provider, quiet logs, and the
    // settings under comparison (--namra-env).
    private static Dictionary<string, string> NamraEnvironment(string agents, Uri provider, DriverOptions options)
    {
        var environment = new Dictionary<string, string>
        {
            ["Namra__Config__AgentsPath"] = agents,
            ["ANTHROPIC_API_KEY"] = "sk-ant-load",
            ["ANTHROPIC_BASE_URL"] = provider.ToString(),
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var (name, value) in options.NamraEnvironment)
        {
            environment[name] = value;
        }

        return environment;
    }

    private static async Task<Measurement> MeasureNamraAsync(string mode, string[] processes, Uri provider, int runs, int concurrency, DriverOptions options, bool aot, CancellationToken cancellationToken, bool overRest = false)
    {
        var agents = await WriteAgentsAsync(cancellationToken);
        var ports = processes.ToDictionary(p => p, _ => (Grpc: Namra.Testing.LocalPorts.Free(), Http: Namra.Testing.LocalPorts.Free()));
        string AddressOf(string role) => $"http://127.0.0.1:{ports[processes.Single(p => p.Split(',').Contains(role))].Grpc}";
        var children = new List<(string Name, Child Child)>();
        try
        {
            foreach (var roles in processes)
            {
                var environment = NamraEnvironment(agents.FullName, provider, options);
                environment["NAMRA_SERVICES"] = roles;
                environment["Namra__Host__ListenAddress"] = "127.0.0.1";
                environment["Namra__Host__GrpcPort"] = Port(ports[roles].Grpc);
                environment["Namra__Host__HttpPort"] = Port(ports[roles].Http);

                if (processes.Length > 1)
                {
                    environment["Namra__Services__Config"] = AddressOf("config");
                    environment["Namra__Services__LlmGateway"] = AddressOf("llm-gateway");
                    environment["Namra__Services__ToolExecutor"] = AddressOf("tool-executor");
                    environment["Namra__Services__Memory"] = AddressOf("memory");
                }

                children.Add((roles.Contains(',', StringComparison.Ordinal) ? "namra (all five)" : roles, Child.Start(options.ServerCommand(aot), environment)));
            }

            if (overRest)
            {
                await WaitForHealthAsync(AddressOf("orchestrator"), cancellationToken);
                return await MeasureOverRestAsync(mode, children, new Uri($"http://127.0.0.1:{ports[processes.Single()].Http}"), runs, concurrency, options, cancellationToken);
            }

            return await MeasureOverGrpcAsync(mode, children, processes.Select(roles => $"http://127.0.0.1:{ports[roles].Grpc}"), AddressOf("orchestrator"),
                runs, concurrency, options, cancellationToken);
        }
        finally
        {
            foreach (var (_, child) in children)
            {
                child.Dispose();
            }

            agents.Delete(recursive: true);
        }
    }

    /// <summary>The floor of a server driven over REST (<see cref="BareRest"/>): the bare loop behind one ASP.NET Core route.</summary>
    private static async Task<Measurement> MeasureBareRestAsync(Uri provider, int runs, int concurrency, DriverOptions options, CancellationToken cancellationToken)
    {
        var port = Namra.Testing.LocalPorts.Free();
        var environment = new Dictionary<string, string> { ["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0" };
        using var child = Child.Start(SelfCommand("bare-rest", "--port", Port(port), "--provider", provider.ToString()), environment);
        await Namra.Testing.LocalPorts.WaitUntilListeningAsync(System.Net.IPAddress.Loopback, port);
        return await MeasureOverRestAsync("bare-rest", [("bare-rest", child)], new Uri($"http://127.0.0.1:{port}"), runs, concurrency, options, cancellationToken);
    }

    /// <summary>
    /// Runs sent as JSON to <c>POST /v1/agents/execute</c> at <paramref name="baseAddress"/>, over HTTP/1.1 as a REST
    /// client sends them; CPU and memory are the <paramref name="children"/>'s.
    /// </summary>
    private static async Task<Measurement> MeasureOverRestAsync(string mode, List<(string Name, Child Child)> children, Uri baseAddress,
        int runs, int concurrency, DriverOptions options, CancellationToken cancellationToken)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) }) { BaseAddress = baseAddress };
        var body = $$"""{"agent":{"reference":"load_agent@1.0.0"},"input":"What is (17 + 25) * 2?"}""";
        async Task RunOnce(CancellationToken ct)
        {
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using var request = new HttpRequestMessage(HttpMethod.Post, BareRest.Route) { Content = content };
            if (options.ApiKey is { Length: > 0 } key)
            {
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            }

            using var response = await http.SendAsync(request, ct);
            var answer = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode || !answer.Contains("\"RUN_STATUS_COMPLETED\"", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"A run over REST did not complete ({(int)response.StatusCode}): {answer}");
            }
        }

        return await MeasureAsync(mode, children, RunOnce, runs, concurrency, options, cancellationToken);
    }

    /// <summary>The distributed baseline (<see cref="BareServices"/>): the run's four processes with no framework.</summary>
    private static async Task<Measurement> MeasureBareDistributedAsync(Uri provider, int runs, int concurrency, DriverOptions options, CancellationToken cancellationToken)
    {
        string[] roles = [BareServices.Orchestrator, BareServices.Gateway, BareServices.Tools, BareServices.Memory];
        var ports = roles.ToDictionary(r => r, _ => Namra.Testing.LocalPorts.Free());
        string AddressOf(string role) => $"http://127.0.0.1:{ports[role]}";
        var children = new List<(string Name, Child Child)>();
        try
        {
            // The runtime settings namra-server ships with, as the embedded measurement gets them.
            var environment = new Dictionary<string, string> { ["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0" };
            foreach (var role in roles)
            {
                children.Add((role, Child.Start(SelfCommand("bare-service", "--role", role, "--port", Port(ports[role]), "--provider", provider.ToString(),
                    "--gateway", AddressOf(BareServices.Gateway), "--tools", AddressOf(BareServices.Tools), "--memory", AddressOf(BareServices.Memory)), environment)));
            }

            return await MeasureOverGrpcAsync("bare-distributed", children, roles.Select(AddressOf), AddressOf(BareServices.Orchestrator),
                runs, concurrency, options, cancellationToken);
        }
        finally
        {
            foreach (var (_, child) in children)
            {
                child.Dispose();
            }
        }
    }

    /// <summary>
    /// Runs sent with <c>Execute</c> to <paramref name="orchestrator"/> once every address in <paramref name="health"/>
    /// serves; CPU and memory are the <paramref name="children"/>'s.
    /// </summary>
    private static async Task<Measurement> MeasureOverGrpcAsync(string mode, List<(string Name, Child Child)> children, IEnumerable<string> health, string orchestrator,
        int runs, int concurrency, DriverOptions options, CancellationToken cancellationToken)
    {
        foreach (var address in health)
        {
            await WaitForHealthAsync(address, cancellationToken);
        }

        using var channel = GrpcChannel.ForAddress(orchestrator, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true },
        });
        var client = new AgentService.AgentServiceClient(channel);
        var request = new ExecuteRequest { Agent = new AgentSource { Reference = "load_agent@1.0.0" }, Input = "What is (17 + 25) * 2?" };
        var headers = options.ApiKey is { Length: > 0 } key ? new Grpc.Core.Metadata { { "authorization", $"Bearer {key}" } } : null;
        async Task RunOnce(CancellationToken ct) => EnsureCompleted((await client.ExecuteAsync(request, headers, cancellationToken: ct)).Run);
        return await MeasureAsync(mode, children, RunOnce, runs, concurrency, options, cancellationToken);
    }

    /// <summary>Warms up, then measures <paramref name="runOnce"/>: CPU, memory and latency of the <paramref name="children"/>.</summary>
    private static async Task<Measurement> MeasureAsync(string mode, List<(string Name, Child Child)> children, Func<CancellationToken, Task> runOnce,
        int runs, int concurrency, DriverOptions options, CancellationToken cancellationToken)
    {
        var idle = children.ToDictionary(c => c.Name, c => Mb(c.Child.Rss()));
        var warmUp = await LoadRunner.WarmUpAsync(runOnce, concurrency, () => children.Sum(c => c.Child.CpuSeconds()), cancellationToken);
        var before = children.ToDictionary(c => c.Name, c => (Cpu: c.Child.CpuSeconds(), Rss: c.Child.Rss()));
        var peaks = children.ToDictionary(c => c.Name, c => c.Child.Rss());
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                foreach (var (name, child) in children)
                {
                    peaks[name] = Math.Max(peaks[name], child.Rss());
                }

                await Task.Delay(25, CancellationToken.None);
            }
        }, CancellationToken.None);
        var result = await LoadRunner.RunAsync(runOnce, runs, concurrency, cancellationToken);
        await sampling.CancelAsync();
        await sampler;
        var cpuByProcess = children.ToDictionary(c => c.Name, c => (c.Child.CpuSeconds() - before[c.Name].Cpu) * 1000 / runs);
        var cpu = cpuByProcess.Values.Sum() / 1000 * runs;
        var inFlight = children.Sum(c => (double)(peaks[c.Name] - before[c.Name].Rss)) / 1024 / concurrency;
        var overhead = 2 * options.Latency.TotalMilliseconds;
        return new Measurement(mode, concurrency, runs, runs / result.WallSeconds, result.Percentile(50) - overhead, result.Percentile(99) - overhead,
            cpu * 1000 / runs, double.NaN, children.ToDictionary(c => c.Name, c => Mb(c.Child.PeakRss())), idle, Math.Max(0, inFlight), warmUp, cpuByProcess);
    }

    private static string Row(Measurement m) => string.Create(CultureInfo.InvariantCulture,
        $"| {m.Mode} | {m.Concurrency} | {m.RunsPerSecond:N0} | {m.P50OverheadMs:0.00} | {m.P99OverheadMs:0.00} | {m.CpuMillisecondsPerRun:0.000} | {m.CpuRatio:0.00}× | {string.Join(", ", m.PeakRssMb.Select(p => $"{p.Key} {p.Value:0}"))} | {(double.IsNaN(m.KbPerInFlightRun) ? "–" : m.KbPerInFlightRun.ToString("0", CultureInfo.InvariantCulture))} |");

    internal static string Markdown(DriverOptions options, List<Measurement> results)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Provider latency {options.Latency.TotalMilliseconds:0} ms per call (two calls per run); latency columns are above those {2 * options.Latency.TotalMilliseconds:0} ms. CPU is the measured processes' own (user + system) per run; the ratio is to the baseline at the same concurrency, in the same session.");
        text.AppendLine();
        text.AppendLine("| mode | concurrency | runs/s | p50 over provider (ms) | p99 over provider (ms) | CPU ms/run | CPU ratio | peak RSS (MB) | KB per in-flight run |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---|---:|");
        foreach (var result in results)
        {
            text.AppendLine(Row(result));
        }

        text.AppendLine();
        foreach (var result in results.Where(r => r.CpuMillisecondsPerRunByProcess is { Count: > 1 }))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"CPU ms per run by process, {result.Mode} at concurrency {result.Concurrency}: {string.Join(", ", result.CpuMillisecondsPerRunByProcess!.Select(p => $"{p.Key} {p.Value:0.000}"))}.");
        }

        foreach (var (floor, modes) in FloorsOf)
        {
            foreach (var bare in results.Where(r => r.Mode == floor))
            {
                foreach (var namra in results.Where(r => modes.Contains(r.Mode) && r.Concurrency == bare.Concurrency))
                {
                    text.AppendLine(CultureInfo.InvariantCulture,
                        $"{namra.Mode} against {floor}, concurrency {bare.Concurrency}: {namra.CpuMillisecondsPerRun / bare.CpuMillisecondsPerRun:0.00}× the CPU per run, p99 over the provider {namra.P99OverheadMs / bare.P99OverheadMs:0.00}×.");
                }
            }
        }

        text.AppendLine();
        text.AppendLine("Managed heap allocated per run, where the measured process sends its own runs (exact): " + string.Join("; ",
            results.Where(r => !double.IsNaN(r.KbAllocatedPerRun)).Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Mode} at concurrency {r.Concurrency} {r.KbAllocatedPerRun:0.0} KB"))) + ".");
        text.AppendLine();
        text.AppendLine(LoadRunner.WarmUpRule + ":");
        text.AppendLine();
        text.AppendLine("| mode | concurrency | warm-up batches | warm-up runs | warm-up CPU (s) | CPU ms/run, first batch | CPU ms/run, last batch |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var result in results)
        {
            var w = result.WarmUp;
            text.AppendLine(CultureInfo.InvariantCulture, $"| {result.Mode} | {result.Concurrency} | {w.Batches} | {w.Runs:N0} | {w.CpuSeconds:0.0} | {w.FirstBatchCpuMsPerRun:0.000} | {w.LastBatchCpuMsPerRun:0.000} |");
        }

        text.AppendLine();
        text.AppendLine("Idle RSS after start (MB): " + string.Join("; ", results.Where(r => r.Concurrency == options.Concurrency[0]).Select(r => $"{r.Mode}: {string.Join(", ", r.IdleRssMb.Select(p => $"{p.Key} {p.Value:0}"))}")));
        return text.ToString();
    }

    /// <summary>The floor each mode is read against besides the bare loop: the same transport with no framework.</summary>
    internal static readonly (string Floor, string[] Modes)[] FloorsOf =
    [
        ("bare-rest", ["server-rest", "server-rest-aot"]),
        ("bare-distributed", ["distributed", "distributed-aot"]),
    ];

    private static string[] SelfCommand(params string[] args) => ["dotnet", Path.Combine(AppContext.BaseDirectory, "namra-load.dll"), .. args];

    private static double Mb(long bytes) => bytes / 1024.0 / 1024.0;

    private static string Port(int value) => value.ToString(CultureInfo.InvariantCulture);

    internal static async Task WaitForHealthAsync(string address, CancellationToken cancellationToken, TimeSpan? pollEvery = null)
    {
        var pause = pollEvery ?? TimeSpan.FromMilliseconds(25);
        using var channel = GrpcChannel.ForAddress(address);
        var health = new Health.HealthClient(channel);
        var last = "no answer";
        for (var waited = TimeSpan.Zero; waited < TimeSpan.FromSeconds(10); waited += pause)
        {
            try
            {
                var status = (await health.CheckAsync(new HealthCheckRequest(), cancellationToken: cancellationToken)).Status;
                if (status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    return;
                }

                last = status.ToString();
            }
            catch (Grpc.Core.RpcException exception)
            {
                last = exception.Status.ToString();
            }

            await Task.Delay(pause, cancellationToken);
        }

        throw new TimeoutException($"{address} did not become healthy (last answer: {last}).");
    }
}

/// <summary>A child process, killed when disposed; its CPU and memory are read from /proc through Process.</summary>
internal sealed class Child : IDisposable
{
    private Child(Process process) => Process = process;

    public Process Process { get; }

    public static Child Start(string[] command, IReadOnlyDictionary<string, string> environment, bool captureOutput = false)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        var process = Process.Start(start)!;
        if (!captureOutput)
        {
            process.OutputDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
        }

        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
            {
                Console.Error.WriteLine(line);
            }
        };
        process.BeginErrorReadLine();
        return new Child(process);
    }

    public double CpuSeconds()
    {
        Process.Refresh();
        return Process.TotalProcessorTime.TotalSeconds;
    }

    public long Rss()
    {
        Process.Refresh();
        return Process.WorkingSet64;
    }

    /// <summary>
    /// The resident pages only this process has: written pages (its heap, stacks, the runtime's type data), not the
    /// binary's clean pages, which every process of the same executable on a machine shares (<c>Private_Dirty</c>).
    /// </summary>
    public long PrivateDirty()
    {
        var line = File.ReadLines($"/proc/{Process.Id}/smaps_rollup").FirstOrDefault(l => l.StartsWith("Private_Dirty:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    public long PeakRss()
    {
        Process.Refresh();
        return Process.PeakWorkingSet64;
    }

    public void Dispose()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit(10_000);
        }

        Process.Dispose();
    }
}
