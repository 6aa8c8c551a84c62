using System.Diagnostics;
using System.Globalization;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>A <c>namra-server</c> process hosting some roles on loopback ports; killed with its children when disposed.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, int grpc, int http, System.Net.IPAddress address)
    {
        _process = process;
        var host = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        GrpcAddress = $"http://{host}:{grpc}";
        HttpAddress = new Uri($"http://{host}:{http}");
    }

    /// <summary>The gRPC address.</summary>
    public string GrpcAddress { get; }

    /// <summary>The HTTP address (REST, metrics).</summary>
    public Uri HttpAddress { get; }

    /// <summary>The operating system's id of the process.</summary>
    public int ProcessId => _process.Id;

    /// <summary>Starts the roles, returning their gRPC address; settings become environment variables.</summary>
    public static ServerProcess Start(string roles, out string grpcAddress, IReadOnlyDictionary<string, string>? settings = null)
    {
        var server = Start(roles, settings);
        grpcAddress = server.GrpcAddress;
        return server;
    }

    /// <summary>
    /// Starts the roles; settings become environment variables (<c>Namra__Services__Memory</c>...). The process stands in
    /// <paramref name="workingDirectory"/> when given.
    /// </summary>
    public static ServerProcess Start(string roles, IReadOnlyDictionary<string, string>? settings = null, string? workingDirectory = null) =>
        Start(roles, System.Net.IPAddress.Loopback, LocalPorts.Free(), settings, workingDirectory);

    /// <summary>Starts the roles with their gRPC endpoint on a given loopback address and port (replicas behind one name).</summary>
    public static ServerProcess Start(string roles, System.Net.IPAddress address, int grpc, IReadOnlyDictionary<string, string>? settings = null, string? workingDirectory = null)
    {
        var http = LocalPorts.Free();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory ?? "" };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "namra-server.dll"));
        start.ArgumentList.Add("--services");
        start.ArgumentList.Add(roles);
        start.Environment["Namra__Host__ListenAddress"] = address.ToString();
        start.Environment["Namra__Host__GrpcPort"] = grpc.ToString(CultureInfo.InvariantCulture);
        start.Environment["Namra__Host__HttpPort"] = http.ToString(CultureInfo.InvariantCulture);
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (name, value) in settings ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var process = Process.Start(start)!;
        // NAMRA_TEST_PROCESS_LOGS=folder keeps each process's output there, for a failure to be read after the fact.
        var logs = Environment.GetEnvironmentVariable("NAMRA_TEST_PROCESS_LOGS") is { Length: > 0 } folder ? Path.Combine(folder, $"{roles.Replace(',', '+')}-{grpc}.log") : null;
        var gate = new Lock();
        void Keep(string? line)
        {
            if (logs is not null && line is not null)
            {
                lock (gate)
                {
                    File.AppendAllText(logs, line + Environment.NewLine);
                }
            }
        }

        process.OutputDataReceived += (_, line) => Keep(line.Data);
        process.ErrorDataReceived += (_, line) => Keep(line.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        LocalPorts.WaitUntilListeningAsync(address, grpc).GetAwaiter().GetResult();
        return new ServerProcess(process, grpc, http, address);
    }

    /// <summary>Stops the process (SIGSTOP), as a hung host would: connections stay open, nothing answers.</summary>
    public void Pause() => Signal("-STOP");

    /// <summary>Asks the process to stop (SIGTERM), as Kubernetes does before a rolling update.</summary>
    public void Terminate() => Signal("-TERM");

    /// <summary>Waits for the process to exit; false when it has not within the time.</summary>
    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    /// <summary>Lets a paused process go on (SIGCONT).</summary>
    public void Resume() => Signal("-CONT");

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", [signal, _process.Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Whether the process has not exited.</summary>
    public bool IsRunning => !_process.HasExited;

    /// <summary>Kills the process at once, as a crash would.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
    }
}
