using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Namra.Contracts.V1;
using Namra.Hosting.Secrets;

namespace Namra.ToolExecutor.Tools.Shell;

/// <summary>
/// <c>builtin.shell</c>: runs one of the agent's <c>allowed_commands</c> with arguments, directly (argv, no shell
/// interpreter, so metacharacters are plain text), with the arguments the <see cref="ArgumentPolicy"/> lets through,
/// in its working directory, with a minimal environment (nothing of the executor's is inherited: no API keys),
/// inside the <see cref="CommandSandbox"/>, killed with everything it started at its timeout, when its output
/// passes the cap, or when it ends.
/// </summary>
internal sealed class ShellTool(CommandSandbox sandbox, SecretStore? secrets = null) : ITool
{
    private const int DefaultMaxOutputBytes = 65_536;
    private const string SafePath = "/usr/local/bin:/usr/bin:/bin";

    // Output still arriving after the command ended comes from processes it left behind, which are killed: what
    // they wrote is read for this long at most, so a pipe held open elsewhere cannot hold the call.
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(2);

    private const string Schema = """
        {"type":"object","properties":{"command":{"type":"string","minLength":1,"description":"One of the allowed commands"},"args":{"type":"array","items":{"type":"string","maxLength":65536},"maxItems":256,"description":"Arguments, passed as they are (no shell)"}},"required":["command"],"additionalProperties":false}
        """;

    public ToolType Type => ToolType.BuiltinShell;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken)
    {
        var allowed = string.Join(", ", config.Shell?.AllowedCommands ?? []);
        var description = config.Description.Length > 0 ? config.Description
            : $"Runs one of these commands with arguments, without a shell, in its working directory: {allowed}. Paths outside that directory are refused.";
        return Task.FromResult<IReadOnlyList<ToolDescription>>([new ToolDescription(config.Name, description, Schema)]);
    }

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken)
    {
        var command = arguments.GetProperty("command").GetString() ?? "";
        var shell = config.Shell ?? new ShellToolSettings();
        var allowed = shell.AllowedCommands;
        if (!allowed.Contains(command, StringComparer.Ordinal))
        {
            return ToolOutcome.Error($"'{command}' is not an allowed command; allowed: {string.Join(", ", allowed)}.");
        }

        var workingDirectory = shell.WorkingDirectory.Length > 0 ? shell.WorkingDirectory : Path.GetTempPath();
        if (!Directory.Exists(workingDirectory))
        {
            return ToolOutcome.Error("The tool's working directory does not exist on the tool executor.");
        }

        workingDirectory = Path.GetFullPath(workingDirectory);
        string[] args = arguments.TryGetProperty("args", out var given) ? [.. given.EnumerateArray().Select(a => a.GetString() ?? "")] : [];
        if (ArgumentPolicy.Problem(command, args, workingDirectory, [.. shell.AllowedPaths], Patterns(shell, command)) is { } refused)
        {
            return ToolOutcome.Error(refused);
        }

        if (Locate(command) is not { } executable)
        {
            return ToolOutcome.Error($"'{command}' is allowed but not installed where the tool executor runs.");
        }

        var maxOutput = shell.MaxOutputBytes > 0 ? (int)Math.Min(shell.MaxOutputBytes, int.MaxValue - 1) : DefaultMaxOutputBytes;
        ProcessStartInfo start;
        try
        {
            start = sandbox.StartInfo(executable, args);
        }
        catch (InvalidOperationException exception)
        {
            return ToolOutcome.Error($"Shell commands cannot run on this tool executor: {exception.Message}");
        }

        start.WorkingDirectory = workingDirectory;
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        start.Environment.Clear();
        start.Environment["PATH"] = SafePath;
        start.Environment["HOME"] = workingDirectory;
        start.Environment["LANG"] = "C.UTF-8";
        foreach (var (name, value) in shell.Env)
        {
            // ${VAR} references were kept by the config service for here: resolved from this service's environment.
            start.Environment[name] = VariableReferences.Expand(value, (secrets ?? SecretStore.EnvironmentOnly).Resolve);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{executable} did not start.");
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            // Arguments beyond the system's limits (E2BIG), a program that is not executable...
            return ToolOutcome.Error($"'{command}' could not be started: {exception.Message}.");
        }

        using var started = process;
        process.StandardInput.Close();
        using var outputFull = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var stopReading = new CancellationTokenSource();
        var stdout = ReadCappedAsync(process.StandardOutput.BaseStream, maxOutput, outputFull, stopReading.Token);
        var stderr = ReadCappedAsync(process.StandardError.BaseStream, maxOutput, outputFull, stopReading.Token);
        try
        {
            await process.WaitForExitAsync(outputFull.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // timed out, cancelled, or the output passed its cap: handled below, once everything is stopped
        }
        finally
        {
            // Whatever the command started in the background ends with it.
            sandbox.KillAll(process);
        }

        stopReading.CancelAfter(Drain);
        var (output, outputCut) = await stdout.ConfigureAwait(false);
        var (errors, errorsCut) = await stderr.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested(); // the executor reports the timeout

        var text = new StringBuilder();
        text.Append(output);
        if (errors.Length > 0)
        {
            text.Append(text.Length > 0 ? "\n" : "").Append("[stderr]\n").Append(errors);
        }

        if (outputCut || errorsCut)
        {
            text.Append($"\n[output cut at {maxOutput:N0} bytes; the command was stopped]");
        }

        var exitCode = process.HasExited ? process.ExitCode : -1;
        return exitCode == 0 && !outputCut && !errorsCut
            ? new ToolOutcome(text.ToString())
            : ToolOutcome.Error($"exit code {exitCode}\n{text}");
    }

    private static IReadOnlyList<string>? Patterns(ShellToolSettings shell, string command) =>
        shell.ArgumentPatterns.TryGetValue(command, out var patterns) ? [.. patterns.Patterns] : null;

    // An allowed name is looked up on a fixed PATH; an allowed path must be absolute.
    private static string? Locate(string command) =>
        command.Contains('/', StringComparison.Ordinal)
            ? Path.IsPathRooted(command) && File.Exists(command) ? command : null
            : SafePath.Split(':').Select(dir => Path.Combine(dir, command)).FirstOrDefault(File.Exists);

    // Keeps the first maxBytes; past them, stops the command (cancelling the wait) rather than buffer without end.
    private static async Task<(string Text, bool Cut)> ReadCappedAsync(Stream stream, int maxBytes, CancellationTokenSource stop, CancellationToken abandon)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        var cut = false;
        try
        {
            int read;
            while ((read = await stream.ReadAsync(chunk, abandon).ConfigureAwait(false)) > 0)
            {
                var keep = (int)Math.Min(read, maxBytes - buffer.Length);
                buffer.Write(chunk, 0, keep);
                if (keep < read)
                {
                    cut = true;
                    await stop.CancelAsync().ConfigureAwait(false);
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (abandon.IsCancellationRequested)
        {
            // a process that escaped the kill holds the pipe: what it wrote so far is the output
        }

        return (Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length), cut);
    }
}
