using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Namra.Cli.Tests;

/// <summary>
/// <c>namra run</c>, as its own process, on an agent whose tool is a Python module: the embedded tool executor starts
/// the plugin, and when the plugin is killed in the middle of a call that call gets an error result, the run goes on,
/// and the next call runs in a new plugin process.
/// </summary>
public sealed class PythonPluginCliTests : IDisposable
{
    private const string Tools = """
        import asyncio
        import os

        from namra import current_call, tool


        @tool
        async def hold(pid_file: str, seconds: float) -> str:
            "Writes its process id to a file, then waits."
            with open(pid_file, "w", encoding="utf-8") as file:
                file.write(str(os.getpid()))
            await asyncio.sleep(seconds)
            return f"held in {os.getpid()} for {current_call().idempotency_key.split(':')[1]}"
        """;

    private const string Agent = """
        name: plugin_user
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - text: "Holding."
              tool_calls:
                - { name: hold, id: call_1, arguments: { pid_file: first.pid, seconds: 120 } }
            - text: "Again."
              tool_calls:
                - { name: hold, id: call_2, arguments: { pid_file: second.pid, seconds: 0 } }
            - text: "Done."
        tools:
          - name: waiting
            type: python
            config: { module: tools/waiting.py }
        """;

    private readonly string _folder = Directory.CreateTempSubdirectory("namra-cli-python-").FullName;

    public PythonPluginCliTests()
    {
        Directory.CreateDirectory(Path.Combine(_folder, "tools"));
        File.WriteAllText(Path.Combine(_folder, "tools", "waiting.py"), Tools);
        File.WriteAllText(Path.Combine(_folder, "agent.yaml"), Agent);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Run_APluginKilledInTheMiddleOfACall_GivesAnErrorResult_ThenIsRestarted_AndTheRunCompletes()
    {
        using var cli = StartRun();
        var output = cli.StandardOutput.ReadToEndAsync();
        var error = cli.StandardError.ReadToEndAsync();

        var first = await FirstPluginAsync();
        Process.GetProcessById(first).Kill(); // SIGKILL, mid-call
        await cli.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(cli.ExitCode == 0, await error);
        var events = (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        var results = events.Where(e => e.TryGetProperty("toolResult", out _)).Select(e => e.GetProperty("toolResult")).ToList();
        Assert.Equal(2, results.Count);
        Assert.True(results[0].GetProperty("isError").GetBoolean());
        Assert.StartsWith("The Python plugin serving 'tools/waiting.py' stopped during the call (killed by signal 9)", results[0].GetProperty("content").GetString(), StringComparison.Ordinal);
        var second = int.Parse(await File.ReadAllTextAsync(Path.Combine(_folder, "second.pid")), CultureInfo.InvariantCulture);
        Assert.NotEqual(first, second);
        Assert.False(results[1].TryGetProperty("isError", out var isError) && isError.GetBoolean());
        Assert.Equal($"held in {second} for call_2", results[1].GetProperty("content").GetString());
        Assert.Equal("Done.", events[^1].GetProperty("runCompleted").GetProperty("answer").GetString());
        Assert.False(IsRunning(second), "the plugin outlived the CLI");
    }

    [Fact]
    public async Task Run_KilledWithAPluginRunning_LeavesNoPluginBehind()
    {
        using var cli = StartRun();
        _ = cli.StandardOutput.ReadToEndAsync();
        _ = cli.StandardError.ReadToEndAsync();
        var plugin = await FirstPluginAsync();

        cli.Kill(); // SIGKILL: nothing in the CLI runs to stop the plugin; its standard input closes
        await cli.WaitForExitAsync();

        await Testing.Eventually.HoldsAsync(() => !IsRunning(plugin), TimeSpan.FromSeconds(20));
    }

    // namra run agent.yaml --json, in the test's folder, as its own process.
    private Process StartRun() => Process.Start(new ProcessStartInfo("dotnet", [typeof(NamraCli).Assembly.Location, "run", "agent.yaml", "--input", "go", "--json"])
    {
        WorkingDirectory = _folder,
        RedirectStandardOutput = true,
        RedirectStandardError = true,
        Environment = { ["NAMRA_DATA_DIR"] = Path.Combine(_folder, "data") },
    })!;

    // The plugin process serving the first call, once the call has started.
    private async Task<int> FirstPluginAsync()
    {
        var pidFile = Path.Combine(_folder, "first.pid");
        await Testing.Eventually.HoldsAsync(() => File.Exists(pidFile) && new FileInfo(pidFile).Length > 0, TimeSpan.FromSeconds(60));
        return int.Parse(await File.ReadAllTextAsync(pidFile), CultureInfo.InvariantCulture);
    }

    // Running, not a zombie waiting for a parent that does not reap (an orphan's new parent may be a container's init).
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
