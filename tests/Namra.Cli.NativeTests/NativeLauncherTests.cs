using System.Diagnostics;
using Namra.Testing;

namespace Namra.Cli.NativeTests;

/// <summary>The native launcher published once (ahead-of-time compiled, as users install it) for the tests of a class.</summary>
public sealed class NativeLauncher : IAsyncLifetime
{
    public string Folder { get; } = Directory.CreateTempSubdirectory("namra-native-").FullName;

    public string Executable => Path.Combine(Folder, "namra");

    public async ValueTask InitializeAsync()
    {
        // Without the full CLI beside it (PublishFullCli=false): the tests put a stand-in there when they need one.
        await Publish.RunAsync(Path.Combine("cli", "Namra.Cli.Native", "Namra.Cli.Native.csproj"), Folder, Executable, "-p:PublishFullCli=false");
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(Folder, recursive: true);
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// <c>namra</c> compiled ahead of time: what it serves itself must be what the full CLI says, byte for byte, and
/// what it does not serve must reach the full CLI untouched.
/// </summary>
public sealed class NativeLauncherTests(NativeLauncher launcher) : IClassFixture<NativeLauncher>, IDisposable
{
    private const string BadAgent = "name: demo\nversion: 1\nllm:\n  provider: antropic\n  model: m\n  temprature: 0.7\nfoo: [1, 2\n";

    private readonly string _folder = Directory.CreateTempSubdirectory("namra-native-run-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<string[]> AuthoringCommandLines()
    {
        var examples = Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "examples", "agents")).Order(StringComparer.Ordinal).ToArray();
        string[][] lines =
        [
            ["validate", .. examples],
            ["validate", "--format", "json", .. examples],
            ["validate", "bad.yaml"],
            ["validate", "--format", "json", "bad.yaml", "missing.toml"],
            ["schema"],
            ["init", "support_bot", "--force"],
            ["init", "Not A Name"],
            ["version"],
        ];
        var data = new TheoryData<string[]>();
        foreach (var line in lines)
        {
            data.Add(line);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AuthoringCommandLines))]
    public async Task AuthoringCommands_PrintWhatTheFullCliPrints(string[] args)
    {
        await File.WriteAllTextAsync(Path.Combine(_folder, "bad.yaml"), BadAgent);

        var native = await RunNativeAsync(args);
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exitCode = await NamraCli.RunAsync(args, CliConsole.Create(output, error, color: false, _folder));

        Assert.Equal((exitCode, output.ToString(), error.ToString()), (native.ExitCode, native.Output, native.Error));
    }

    [Fact]
    public async Task ABadOption_IsRefusedWithUsage()
    {
        // Not compared with the full CLI in process: usage names the executable, which there is the test host.
        var result = await RunNativeAsync("validate", "--format", "xml", "bad.yaml");

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("Argument 'xml' not recognized. Must be one of:", result.Error, StringComparison.Ordinal);
        Assert.Contains("namra validate <files>... [options]", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Init_WritesAnAgentThatValidates()
    {
        var init = await RunNativeAsync("init", "support_bot");
        var validate = await RunNativeAsync("validate", "support_bot.yaml");

        Assert.Equal(0, init.ExitCode);
        Assert.Equal(0, validate.ExitCode);
        Assert.StartsWith("support_bot.yaml: valid (support_bot@1.0.0, sha256:", validate.Output, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // the stand-in is a shell script
    public async Task OtherCommands_AreHandedToTheFullCli_WithTheirArgumentsAndExitCode()
    {
        var lib = Directory.CreateDirectory(Path.Combine(launcher.Folder, "lib"));
        var standIn = Path.Combine(lib.FullName, "namra");
        try
        {
            // A stand-in for the full CLI: says what it was given, from where, with which process id.
            await File.WriteAllTextAsync(standIn, "#!/bin/sh\necho \"pid=$$ cwd=$(pwd) args=$*\"\nexit 7\n");
            File.SetUnixFileMode(standIn, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

            var run = await RunNativeAsync("run", "agent.yaml", "--input", "two words");
            var help = await RunNativeAsync("--help");

            Assert.Equal(7, run.ExitCode);
            Assert.Equal($"pid={run.ProcessId} cwd={_folder} args=run agent.yaml --input two words\n", run.Output);
            Assert.Equal((7, $"pid={help.ProcessId} cwd={_folder} args=--help\n"), (help.ExitCode, help.Output));
        }
        finally
        {
            File.Delete(standIn);
        }
    }

    [Fact]
    public async Task OtherCommands_WithoutTheFullCli_SayWhereItShouldBe()
    {
        var result = await RunNativeAsync("run", "agent.yaml");

        Assert.Equal(127, result.ExitCode);
        Assert.Contains($"needs the full CLI at {Path.Combine(launcher.Folder, "lib", "namra")}, which is missing", result.Error, StringComparison.Ordinal);
    }

    private async Task<(int ExitCode, string Output, string Error, int ProcessId)> RunNativeAsync(params string[] args)
    {
        var start = new ProcessStartInfo(launcher.Executable, args)
        {
            WorkingDirectory = _folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["NO_COLOR"] = "1" },
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        return (process.ExitCode, await output, await error, process.Id);
    }
}
