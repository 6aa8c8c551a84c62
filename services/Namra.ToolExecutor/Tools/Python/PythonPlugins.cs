using System.ComponentModel;
using System.Diagnostics;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Client;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Hosting.Secrets;
using Namra.ToolExecutor.Options;

namespace Namra.ToolExecutor.Tools.Python;

/// <summary>
/// The Python plugins this tool executor runs: one process per distinct module and environment, started at first use,
/// shared by concurrent calls, started again after it dies, and stopped after <see cref="ToolExecutorOptions.PythonIdleTimeout"/>
/// without calls. A plugin gets a minimal environment plus its entry's <c>env</c> (resolved here, at start), and finds
/// the <c>namra</c> package this executor ships (<c>python/</c> beside its assemblies) first on its <c>PYTHONPATH</c>.
/// </summary>
internal sealed class PythonPlugins : IAsyncDisposable
{
    private readonly SharedInstances<PythonPlugin> _plugins = new();
    private readonly IOptions<ToolExecutorOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<PythonPlugins> _logger;
    private readonly SecretStore _secrets;
    private readonly ITimer _idleStops;

    public PythonPlugins(IOptions<ToolExecutorOptions> options, TimeProvider timeProvider, ILogger<PythonPlugins> logger, SecretStore? secrets = null)
    {
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        _secrets = secrets ?? SecretStore.EnvironmentOnly;
        var every = TimeSpan.FromTicks(Math.Clamp(options.Value.PythonIdleTimeout.Ticks / 4, TimeSpan.TicksPerSecond / 4, TimeSpan.TicksPerSecond * 30));
        _idleStops = timeProvider.CreateTimer(_ => _ = StopIdleAsync(), null, every, every);
    }

    /// <summary>The folder of the <c>namra</c> package shipped with this executor.</summary>
    public static string PackageFolder { get; } = Path.Combine(AppContext.BaseDirectory, "python");

    /// <summary>The interpreter plugins run with.</summary>
    public string Interpreter => _options.Value.PythonInterpreter is { Length: > 0 } configured ? configured
        : File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    /// <summary>A call's lease on the running plugin for <paramref name="settings"/>, started if it is not running.</summary>
    public async Task<PythonPlugin.CallInFlight> UseAsync(PythonPluginSettings settings, CancellationToken cancellationToken)
    {
        while (true)
        {
            var plugin = await GetAsync(settings, cancellationToken).ConfigureAwait(false);
            if (plugin.TryUse(out var lease))
            {
                return lease;
            }

            Forget(settings, plugin); // stopped for idleness, or died, since it was found: start another
        }
    }

    /// <summary>The running plugin for <paramref name="settings"/>, started if it is not running.</summary>
    public async Task<PythonPlugin> GetAsync(PythonPluginSettings settings, CancellationToken cancellationToken)
    {
        while (true)
        {
            var plugin = await _plugins.GetAsync(settings.Key, () => StartAsync(settings), cancellationToken).ConfigureAwait(false);
            if (!plugin.HasExited)
            {
                return plugin;
            }

            Forget(settings, plugin); // it died between calls: start it again
        }
    }

    /// <summary>Drops a plugin that died, so the next call starts it again.</summary>
    public void Forget(PythonPluginSettings settings, PythonPlugin plugin) => _plugins.Forget(settings.Key, plugin);

    private async Task<PythonPlugin> StartAsync(PythonPluginSettings settings)
    {
        if (_plugins.Count > _options.Value.MaxPythonPlugins)
        {
            throw new NamraException(StatusCode.ResourceExhausted,
                $"{_options.Value.MaxPythonPlugins} Python plugins are already running (Namra:ToolExecutor:MaxPythonPlugins).");
        }

        // The socket lives in a folder of its own, which only this account can enter.
        var folder = Directory.CreateTempSubdirectory("namra-py-");
        var socket = Path.Combine(folder.FullName, "plugin.sock");
        var start = new ProcessStartInfo(Interpreter)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["-m", "namra.plugin", "--module", settings.Module, "--socket", socket])
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment.Clear();
        foreach (var (name, value) in Environment(settings))
        {
            start.Environment[name] = value;
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new Win32Exception("no process was started");
        }
        catch (Win32Exception exception)
        {
            folder.Delete(recursive: true);
            throw new NamraException(StatusCode.FailedPrecondition,
                $"The Python interpreter '{Interpreter}' could not be started ({exception.Message}); set Namra:ToolExecutor:PythonInterpreter to one with grpcio and protobuf.");
        }

        var plugin = new PythonPlugin(process, folder, socket, settings.Module, _logger, _timeProvider);
        try
        {
            using var startLimit = new CancellationTokenSource(_options.Value.PythonStartTimeout);
            if (!await plugin.WaitReadyAsync(startLimit.Token).ConfigureAwait(false))
            {
                throw new NamraException(StatusCode.FailedPrecondition, $"The Python plugin for '{settings.Module}' ended as it started ({plugin.Ending}): {Explain(plugin.LastError)}");
            }

            var described = await plugin.Client.DescribeToolsAsync(new DescribeToolsRequest(), cancellationToken: startLimit.Token).ConfigureAwait(false);
            plugin.Tools = [.. described.Tools.Select(t => new ToolDescription(t.Name, t.Description, t.InputSchemaJson.Length > 0 ? t.InputSchemaJson : "{\"type\":\"object\"}"))];
            Log.PythonPluginStarted(_logger, settings.Module, plugin.Tools.Count);
            return plugin;
        }
        catch (Exception exception) when (exception is OperationCanceledException or RpcException)
        {
            await plugin.DisposeAsync().ConfigureAwait(false);
            throw new NamraException(StatusCode.FailedPrecondition,
                $"The Python plugin for '{settings.Module}' did not serve its tools within {_options.Value.PythonStartTimeout.TotalSeconds:0.#} s" +
                (plugin.LastError.Length > 0 ? $": {plugin.LastError}" : " (Namra:ToolExecutor:PythonStartTimeout)."));
        }
        catch
        {
            await plugin.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    // The last line a plugin wrote, with what to do when it is the usual set-up mistake.
    private string Explain(string lastError) => lastError.Length == 0 ? "it wrote nothing to standard error."
        : lastError.Contains("No module named 'grpc'", StringComparison.Ordinal) || lastError.Contains("No module named 'google'", StringComparison.Ordinal)
            ? $"{lastError} ({Interpreter} lacks grpcio or protobuf: on Debian, apt-get install python3-grpcio python3-protobuf; or set Namra:ToolExecutor:PythonInterpreter)"
            : lastError;

    // The minimal environment (as MCP servers over stdio get), Python's own settings, then the entry's env.
    private Dictionary<string, string?> Environment(PythonPluginSettings settings)
    {
        var environment = StdioClientTransportOptions.GetDefaultEnvironmentVariables();
        environment["PYTHONUNBUFFERED"] = "1";
        environment["PYTHONDONTWRITEBYTECODE"] = "1";
        var written = settings.Variables.ToDictionary(p => p.Key, p => VariableReferences.Expand(p.Value, _secrets.Resolve), StringComparer.Ordinal);
        var paths = new List<string>();
        if (written.Remove("PYTHONPATH", out var own) && own.Length > 0)
        {
            paths.Add(own);
        }

        if (Directory.Exists(PackageFolder))
        {
            paths.Add(PackageFolder);
        }

        if (paths.Count > 0)
        {
            environment["PYTHONPATH"] = string.Join(Path.PathSeparator, paths);
        }

        foreach (var (name, value) in written)
        {
            environment[name] = value;
        }

        return environment;
    }

    // Stops plugins without calls for the idle timeout, and clears away those that died between calls.
    private async Task StopIdleAsync()
    {
        var idle = _options.Value.PythonIdleTimeout;
        foreach (var plugin in _plugins.Take(plugin => plugin.HasExited || plugin.TryClaimIdle(idle)))
        {
            try
            {
                await plugin.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is InvalidOperationException or Win32Exception)
            {
                Log.PythonPluginNotStopped(_logger, exception, plugin.Module);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _idleStops.DisposeAsync().ConfigureAwait(false);
        await _plugins.DisposeAsync().ConfigureAwait(false);
    }
}
