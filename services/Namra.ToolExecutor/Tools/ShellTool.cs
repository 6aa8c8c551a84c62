using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Namra.Contracts.V1;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>builtin.shell</c>: runs one of the agent's <c>allowed_commands</c> with arguments, directly (argv, no shell
/// interpreter, so metacharacters are plain text), in its working directory, with a minimal environment (nothing
/// of the executor's is inherited: no API keys), killed at its timeout or when its output passes the cap.
/// </summary>
internal sealed class ShellTool : ITool
{
    private const int DefaultMaxOutputBytes = 65_536;
    private const string SafePath = "/usr/local/bin:/usr/bin:/bin";

    private const string Schema = """
        {"type":"object","properties":{"command":{"type":"string","minLength":1,"description":"One of the allowed commands"},"args":{"type":"array","items":{"type":"string"},"maxItems":256,"description":"Arguments, passed as they are (no shell)"}},"required":["command"],"additionalProperties":false}
        """;

    public ToolType Type => ToolType.BuiltinShell;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken)
    {
        var allowed = string.Join(", ", Allowed(config));
        var description = config.Description.Length > 0 ? config.Description : $"Runs one of these commands with arguments, without a shell: {allowed}.";
        return Task.FromResult<IReadOnlyList<ToolDescription>>([new ToolDescription(config.Name, description, Schema)]);
    }

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, string toolName, JsonElement arguments, CancellationToken cancellationToken)
    {
        var command = arguments.GetProperty("command").GetString() ?? "";
        var allowed = Allowed(config);
        if (!allowed.Contains(command, StringComparer.Ordinal))
        {
            return ToolOutcome.Error($"'{command}' is not an allowed command; allowed: {string.Join(", ", allowed)}.");
        }

        if (Locate(command) is not { } executable)
        {
            return ToolOutcome.Error($"'{command}' is allowed but not installed where the tool executor runs.");
        }

        var fields = config.Config?.Fields;
        var workingDirectory = fields?.TryGetValue("working_directory", out var wd) == true && wd.StringValue.Length > 0 ? wd.StringValue : Path.GetTempPath();
        if (!Directory.Exists(workingDirectory))
        {
            return ToolOutcome.Error("The tool's working directory does not exist on the tool executor.");
        }

        var maxOutput = fields?.TryGetValue("max_output_bytes", out var max) == true ? (int)max.NumberValue : DefaultMaxOutputBytes;
        var start = new ProcessStartInfo(executable)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments.TryGetProperty("args", out var args) ? args.EnumerateArray().Select(a => a.GetString() ?? "") : [])
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment.Clear();
        start.Environment["PATH"] = SafePath;
        start.Environment["HOME"] = workingDirectory;
        start.Environment["LANG"] = "C.UTF-8";
        if (fields?.TryGetValue("env", out var env) == true && env.KindCase == Value.KindOneofCase.StructValue)
        {
            foreach (var (name, value) in env.StructValue.Fields)
            {
                // ${VAR} references were kept by the config service for here: resolved from this service's environment.
                start.Environment[name] = VariableReferences.Expand(value.StringValue, Environment.GetEnvironmentVariable);
            }
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{executable} did not start.");
        process.StandardInput.Close();
        using var outputFull = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var stdout = ReadCappedAsync(process.StandardOutput.BaseStream, maxOutput, outputFull);
        var stderr = ReadCappedAsync(process.StandardError.BaseStream, maxOutput, outputFull);
        try
        {
            await process.WaitForExitAsync(outputFull.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            if (cancellationToken.IsCancellationRequested)
            {
                throw; // the executor reports the timeout
            }
        }

        var (output, outputCut) = await stdout.ConfigureAwait(false);
        var (errors, errorsCut) = await stderr.ConfigureAwait(false);
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

    private static IReadOnlyList<string> Allowed(ToolConfig config) =>
        config.Config?.Fields.TryGetValue("allowed_commands", out var list) == true && list.KindCase == Value.KindOneofCase.ListValue
            ? [.. list.ListValue.Values.Select(v => v.StringValue)]
            : [];

    // An allowed name is looked up on a fixed PATH; an allowed path must be absolute.
    private static string? Locate(string command) =>
        command.Contains('/', StringComparison.Ordinal)
            ? Path.IsPathRooted(command) && File.Exists(command) ? command : null
            : SafePath.Split(':').Select(dir => Path.Combine(dir, command)).FirstOrDefault(File.Exists);

    // Keeps the first maxBytes; past them, stops the command (cancelling the wait) rather than buffer without end.
    private static async Task<(string Text, bool Cut)> ReadCappedAsync(Stream stream, int maxBytes, CancellationTokenSource stop)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        var cut = false;
        int read;
        while ((read = await stream.ReadAsync(chunk).ConfigureAwait(false)) > 0)
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

        return (Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length), cut);
    }
}

/// <summary>Resolves <c>${VAR}</c> and <c>${VAR:-default}</c> kept in secret-bearing tool settings, at the moment of use.</summary>
internal static class VariableReferences
{
    public static string Expand(string text, Func<string, string?> environment)
    {
        if (!text.Contains("${", StringComparison.Ordinal))
        {
            return text;
        }

        var result = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length;)
        {
            if (text[i] == '$' && i + 2 < text.Length && text[i + 1] == '$' && text[i + 2] == '{')
            {
                result.Append("${");
                i += 3;
            }
            else if (text[i] == '$' && i + 1 < text.Length && text[i + 1] == '{' && text.IndexOf('}', i + 2) is var close and > 0)
            {
                var body = text[(i + 2)..close];
                var separator = body.IndexOf(":-", StringComparison.Ordinal);
                var value = environment(separator < 0 ? body : body[..separator]);
                result.Append(string.IsNullOrEmpty(value) && separator >= 0 ? body[(separator + 2)..] : value ?? "");
                i = close + 1;
            }
            else
            {
                result.Append(text[i++]);
            }
        }

        return result.ToString();
    }
}
