using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Namra.Contracts.V1;

namespace Namra.ToolExecutor.Tools.Python;

/// <summary>What starts one Python plugin, as an agent entry configures it; entries with equal settings share one process.</summary>
internal sealed record PythonPluginSettings(string Module, IReadOnlyList<KeyValuePair<string, string>> Variables)
{
    /// <summary>Identity of the plugin: the settings as written, before <c>${VAR}</c> is resolved.</summary>
    public string Key { get; } = JsonSerializer.Serialize(new PythonPluginIdentity(Module, Variables), InstanceKeys.Default.PythonPluginIdentity);

    public static PythonPluginSettings From(ToolConfig config)
    {
        var python = config.Python ?? new PythonToolSettings();
        return new(python.Module, [.. python.Env.OrderBy(p => p.Key, StringComparer.Ordinal)]);
    }
}

/// <summary>
/// One running plugin (<c>python3 -m namra.plugin</c>): its process, the gRPC channel to its Unix socket (in a folder
/// only this account can enter), the tools it serves, and the last lines it wrote to standard error, which are logged
/// and explain a failed start or a death.
/// </summary>
internal sealed class PythonPlugin : IAsyncDisposable
{
    /// <summary>The line the plugin writes to standard output once it serves its tools.</summary>
    public const string ReadyLine = "namra-plugin-ready";

    private const int KeptErrorLines = 20;
    private const int MaxErrorLineCharacters = 1000;

    private readonly Process _process;
    private readonly DirectoryInfo _folder;
    private readonly TimeProvider _timeProvider;
    private readonly Queue<string> _errors = new();
    private readonly Task _readingErrors;
    private readonly TaskCompletionSource<bool> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _calls;
    private long _lastUsed;
    private int _disposed;
    private string? _ending;

    public PythonPlugin(Process process, DirectoryInfo folder, string socket, string module, ILogger logger, TimeProvider timeProvider)
    {
        _process = process;
        _folder = folder;
        _timeProvider = timeProvider;
        _lastUsed = timeProvider.GetTimestamp();
        Module = module;
        Channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { ConnectCallback = (_, cancellationToken) => ConnectAsync(socket, cancellationToken) },
            MaxReceiveMessageSize = 16 * 1024 * 1024,
            ThrowOperationCanceledOnCancellation = true, // a call cancelled by its deadline or its run ends as a cancellation, not a failure
        });
        Client = new ToolProviderService.ToolProviderServiceClient(Channel);
        _readingErrors = ReadErrorsAsync(logger);
        _ = ReadOutputAsync();
    }

    public string Module { get; }

    public GrpcChannel Channel { get; }

    public ToolProviderService.ToolProviderServiceClient Client { get; }

    /// <summary>The tools the module serves, asked once when it starts (a module's functions do not change while it runs).</summary>
    public IReadOnlyList<ToolDescription> Tools { get; set; } = [];

    public bool HasExited => _ending is not null || _process.HasExited;

    /// <summary>
    /// Claims the plugin for an idle stop if no call is running and none came for <paramref name="idle"/>; no call
    /// can start on it afterwards.
    /// </summary>
    public bool TryClaimIdle(TimeSpan idle) =>
        _timeProvider.GetElapsedTime(Interlocked.Read(ref _lastUsed)) > idle && Interlocked.CompareExchange(ref _calls, -1, 0) == 0;

    /// <summary>Counts a call in flight until the lease is disposed, so an idle stop never cuts one; false once the plugin is stopping.</summary>
    public bool TryUse(out CallInFlight lease)
    {
        for (var calls = Volatile.Read(ref _calls); calls >= 0 && !HasExited; calls = Volatile.Read(ref _calls))
        {
            if (Interlocked.CompareExchange(ref _calls, calls + 1, calls) == calls)
            {
                Interlocked.Exchange(ref _lastUsed, _timeProvider.GetTimestamp());
                lease = new CallInFlight(this);
                return true;
            }
        }

        lease = default;
        return false;
    }

    /// <summary>How the process ended, for messages: its exit code, or the signal that killed it.</summary>
    public string Ending => _ending ?? (!_process.HasExited ? "still running"
        : _process.ExitCode > 128 ? $"killed by signal {_process.ExitCode - 128}"
        : $"exit code {_process.ExitCode}");

    /// <summary>The last line the plugin wrote to standard error; empty if none.</summary>
    public string LastError
    {
        get
        {
            lock (_errors)
            {
                return _errors.LastOrDefault() ?? "";
            }
        }
    }

    /// <summary>Waits for the ready line; false if the process ended first.</summary>
    public async Task<bool> WaitReadyAsync(CancellationToken cancellationToken)
    {
        if (await _ready.Task.WaitAsync(cancellationToken).ConfigureAwait(false))
        {
            return true;
        }

        await WaitForExitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        return false;
    }

    /// <summary>Whether the process has ended, or ends within <paramref name="patience"/>; a crash is seen on the socket first.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan patience)
    {
        if (_ending is not null)
        {
            return true;
        }

        using var wait = new CancellationTokenSource(patience);
        try
        {
            await _process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
            await _readingErrors.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false); // its last words
        }
        catch (OperationCanceledException)
        {
        }
        catch (TimeoutException)
        {
        }

        return _process.HasExited;
    }

    /// <summary>Stops the plugin: its input closed (it drains calls for two seconds), then killed if it lingers.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        if (!_process.HasExited)
        {
            try
            {
                _process.StandardInput.Close();
            }
            catch (IOException)
            {
            }

            if (!await WaitForExitAsync(TimeSpan.FromSeconds(3)).ConfigureAwait(false))
            {
                _process.Kill(entireProcessTree: true);
                await WaitForExitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
        }

        _ending = Ending;
        Channel.Dispose();
        _process.Dispose();
        try
        {
            _folder.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task ReadErrorsAsync(ILogger logger)
    {
        await Task.Yield();
        try
        {
            await foreach (var line in BoundedLinesAsync(_process.StandardError, MaxErrorLineCharacters).ConfigureAwait(false))
            {
                lock (_errors)
                {
                    _errors.Enqueue(line);
                    if (_errors.Count > KeptErrorLines)
                    {
                        _errors.Dequeue();
                    }
                }

                Log.PythonPluginWrote(logger, Module, line);
            }
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    // Standard output says when the tools are served; what comes after (a tool's child process printing) is read and dropped, so it never blocks.
    private async Task ReadOutputAsync()
    {
        await Task.Yield();
        try
        {
            await foreach (var line in BoundedLinesAsync(_process.StandardOutput, ReadyLine.Length + 1).ConfigureAwait(false))
            {
                if (line == ReadyLine)
                {
                    _ready.TrySetResult(true);
                }
            }
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException or InvalidOperationException)
        {
        }
        finally
        {
            _ready.TrySetResult(false);
        }
    }

    // The lines of a child's output, each cut at a bound, so no output can grow this process's memory.
    private static async IAsyncEnumerable<string> BoundedLinesAsync(StreamReader reader, int maxCharacters)
    {
        var buffer = new char[4096];
        var line = new StringBuilder();
        int read;
        while ((read = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
        {
            var start = 0;
            for (var i = 0; i < read; i++)
            {
                if (buffer[i] == '\n')
                {
                    Append(line, buffer.AsSpan(start, i - start), maxCharacters);
                    yield return line.ToString().TrimEnd('\r');
                    line.Clear();
                    start = i + 1;
                }
            }

            Append(line, buffer.AsSpan(start, read - start), maxCharacters);
        }

        if (line.Length > 0)
        {
            yield return line.ToString();
        }

        static void Append(StringBuilder line, ReadOnlySpan<char> characters, int max) =>
            line.Append(characters[..Math.Min(characters.Length, Math.Max(0, max - line.Length))]);
    }

    private static async ValueTask<Stream> ConnectAsync(string socket, CancellationToken cancellationToken)
    {
        var connection = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await connection.ConnectAsync(new UnixDomainSocketEndPoint(socket), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(connection, ownsSocket: true);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>A call in flight on a plugin.</summary>
    internal readonly struct CallInFlight(PythonPlugin plugin) : IDisposable
    {
        public PythonPlugin Plugin => plugin;

        public void Dispose()
        {
            Interlocked.Exchange(ref plugin._lastUsed, plugin._timeProvider.GetTimestamp());
            Interlocked.Decrement(ref plugin._calls);
        }
    }
}
