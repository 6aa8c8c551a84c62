using System.Text.RegularExpressions;
using Google.Protobuf.WellKnownTypes;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>
/// The shell tool against what a model can ask an allow-listed program to do: read the executor's secrets through
/// <c>/proc</c>, leave processes behind, run other programs through flags, reach outside its folder.
/// </summary>
public sealed partial class ShellAttackTests : IDisposable
{
    private const string Secret = "sk-ant-shell-attack-secret";
    private readonly string _workdir = ShellTestFolders.Create();

    public ShellAttackTests() => Environment.SetEnvironmentVariable("NAMRA_TEST_SHELL_ATTACK_KEY", Secret);

    public void Dispose() => Directory.Delete(_workdir, recursive: true);

    [Theory]
    [InlineData("Auto")]
    [InlineData("ProcessGroup")]
    public async Task ACommand_CannotReadTheExecutorsEnvironment(string isolation)
    {
        await using var host = await Start(isolation);
        var config = Config(["cat", "ls"], allowedPaths: ["/proc"]);

        var status = await Call(host, config, "cat", ["/proc/self/status"]);
        var parent = ParentPid().Match(status.Content).Groups[1].Value;
        var outputs = new List<string> { status.Content };
        foreach (var pid in new[] { parent, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), "1" })
        {
            outputs.Add((await Call(host, config, "cat", [$"/proc/{pid}/environ"])).Content);
            outputs.Add((await Call(host, config, "cat", [$"/proc/{pid}/cmdline"])).Content);
        }

        Assert.All(outputs, output => Assert.DoesNotContain(Secret, output, StringComparison.Ordinal));
        Assert.All(outputs, output => Assert.DoesNotContain("ANTHROPIC", output, StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheProcessHostingTheExecutor_IsNotDumpable()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "prctl is Linux's");
        await using var host = await Start("Auto");

        // Non-dumpable: /proc/PID/environ and mem need CAP_SYS_PTRACE, whichever account a command runs as.
        Assert.Equal(0, GetDumpable(3 /* PR_GET_DUMPABLE */, 0, 0, 0, 0));
    }

    [Fact]
    public async Task ACommand_RunsInAPrivatePidNamespace_WhereTheSystemAllowsOne()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() && Environment.UserName == "root", "PID namespaces need root here");
        await using var host = await Start("Auto");

        var listing = await Call(host, Config(["ls"], allowedPaths: ["/proc"]), "ls", ["/proc"]);

        var pids = listing.Content.Split('\n').Where(line => line.Length > 0 && line.All(char.IsAsciiDigit)).ToArray();
        Assert.Equal(["1"], pids);
    }

    [Fact]
    public async Task ACommand_RunsAsAnotherAccountWithoutCapabilities_WhenTheExecutorIsRoot()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() && Environment.UserName == "root", "only a root executor changes account");
        await using var host = await Start("Auto");

        var id = await Call(host, Config(["id"]), "id", []);
        var capabilities = await Call(host, Config(["cat"], allowedPaths: ["/proc"]), "cat", ["/proc/self/status"]);

        Assert.StartsWith("uid=65534", id.Content, StringComparison.Ordinal);
        Assert.Contains("CapEff:\t0000000000000000", capabilities.Content, StringComparison.Ordinal);
        Assert.Contains("NoNewPrivs:\t1", capabilities.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Auto")]
    [InlineData("ProcessGroup")]
    public async Task WhatACommandLeavesBehind_EndsWithIt(string isolation)
    {
        await using var host = await Start(isolation);
        var marker = Random.Shared.Next(100_000, 999_999);
        var config = Config(["sh"], patterns: new() { ["sh"] = [".*"] });

        // The background sleep kept the call's output pipe open: the call hung, and the sleep outlived the executor.
        var result = await Call(host, config, "sh", ["-c", $"sleep 3600.{marker} & echo started"]);

        Assert.False(result.IsError, result.Content);
        Assert.Equal("started\n", result.Content);
        await WaitUntilGone($"3600.{marker}");
    }

    [Theory]
    [InlineData("Auto")]
    [InlineData("ProcessGroup")]
    public async Task ATimedOutCommand_IsKilledWithEverythingItStarted(string isolation)
    {
        await using var host = await Start(isolation);
        var marker = Random.Shared.Next(100_000, 999_999);
        var config = Config(["sh"], patterns: new() { ["sh"] = [".*"] });

        var result = await Call(host, config, "sh", ["-c", $"sleep 3601.{marker} & sleep 3602.{marker}"], timeout: TimeSpan.FromMilliseconds(500));

        Assert.True(result.IsError);
        Assert.Contains("did not finish within 0.5 s", result.Content, StringComparison.Ordinal);
        await WaitUntilGone($".{marker}");
    }

    [Theory]
    [InlineData("find", new[] { ".", "-exec", "sh", "-c", "id", ";" }, "-exec")]
    [InlineData("find", new[] { ".", "-execdir", "id", ";" }, "-execdir")]
    [InlineData("find", new[] { ".", "-fprintf", "out", "%p" }, "-fprintf")]
    [InlineData("tar", new[] { "-cf", "x.tar", "--checkpoint=1", "--checkpoint-action=exec=sh", "." }, "--checkpoint-action")]
    [InlineData("tar", new[] { "-xI", "sh", "-f", "x.tar" }, "-I")]
    [InlineData("tar", new[] { "--to-comm=sh", "-xf", "x.tar" }, "--to-command")]
    [InlineData("git", new[] { "-c", "core.sshCommand=sh -c id", "fetch" }, "-c")]
    [InlineData("git", new[] { "--upload-pack=sh", "ls-remote", "x" }, "--upload-pack")]
    [InlineData("sort", new[] { "--output=x", "y" }, "--output")]
    [InlineData("sort", new[] { "-o", "x", "y" }, "-o")]
    [InlineData("sort", new[] { "-rno", "x", "y" }, "-o")]
    [InlineData("wget", new[] { "-O", "x", "http://example.com" }, "-O")]
    [InlineData("curl", new[] { "-sSo", "x", "http://example.com" }, "-o")]
    [InlineData("curl", new[] { "-K", "cfg" }, "-K")]
    [InlineData("rsync", new[] { "-e", "sh -c id", "a", "b:c" }, "-e")]
    [InlineData("git", new[] { "rebase", "-x", "sh -c id", "HEAD~1" }, "rebase -x")]
    [InlineData("git", new[] { "rebase", "-ix", "id", "HEAD~1" }, "rebase -x")]
    [InlineData("git", new[] { "rebase", "--exec", "id", "HEAD~1" }, "rebase --exec")]
    [InlineData("git", new[] { "rebase", "--exe=id", "HEAD~1" }, "rebase --exec")]
    [InlineData("git", new[] { "-C", ".", "submodule", "--quiet", "foreach", "id" }, "submodule foreach")]
    [InlineData("git", new[] { "difftool", "-x", "sh -c id", "HEAD" }, "difftool")]
    [InlineData("git", new[] { "difftool", "--extcmd=id" }, "difftool")]
    [InlineData("git", new[] { "mergetool", "--tool=vimdiff" }, "mergetool")]
    [InlineData("git", new[] { "grep", "-O", "sh -c id", "x" }, "grep -O")]
    [InlineData("git", new[] { "grep", "--open-files-in-pager=id", "x" }, "grep --open-files-in-pager")]
    [InlineData("git", new[] { "bisect", "run", "sh", "-c", "id" }, "bisect run")]
    [InlineData("git", new[] { "filter-branch", "--tree-filter", "id", "HEAD" }, "filter-branch")]
    [InlineData("git", new[] { "archive", "--remote=ext::sh -c id", "HEAD" }, "archive --remote")]
    [InlineData("git", new[] { "archive", "--exec=id", "--remote=x", "HEAD" }, "archive --exec")]
    [InlineData("git", new[] { "config", "core.pager", "sh -c id" }, "config (other than --get, --get-all, --get-regexp, --list, -l, get, list)")]
    [InlineData("git", new[] { "config", "alias.x", "!sh -c id" }, "config (other than --get, --get-all, --get-regexp, --list, -l, get, list)")]
    [InlineData("git", new[] { "--config-env=core.pager=PAGER", "log" }, "--config-env")]
    [InlineData("git", new[] { "clone", "-u", "sh -c id", "x", "y" }, "-u")]
    [InlineData("git", new[] { "push", "--receive-pack=sh -c id", "x" }, "--receive-pack")]
    public async Task FlagsThatRunProgramsOrWriteFiles_AreRefused(string command, string[] args, string flag)
    {
        await using var host = await Start("Auto");

        var result = await Call(host, Config([command]), command, args);

        Assert.True(result.IsError);
        Assert.Contains($"{command}'s {flag} runs a program or writes a file", result.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("git", new[] { "config", "--get", "user.name" })]
    [InlineData("git", new[] { "grep", "-n", "-e", "foreach", "--", "." })]
    [InlineData("git", new[] { "log", "--oneline", "-x" })]
    public async Task ArgumentsThatOnlyResembleRefusedOnes_ReachTheProgram(string command, string[] args)
    {
        await using var host = await Start("Auto");

        var result = await Call(host, Config([command]), command, args);

        // Outside a repository git answers for itself: what matters is that the policy let the call through.
        Assert.DoesNotContain("this tool refuses", result.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("env", new[] { "sh", "-c", "id" })]
    [InlineData("xargs", new[] { "sh" })]
    [InlineData("timeout", new[] { "5", "sh" })]
    [InlineData("awk", new[] { "BEGIN { system(\"id\") }" })]
    [InlineData("sed", new[] { "-n", "1e id", "x" })]
    [InlineData("python3", new[] { "-c", "import os" })]
    public async Task ProgramsThatRunTheirArguments_TakeNoneWithoutPatterns(string command, string[] args)
    {
        await using var host = await Start("Auto");

        var result = await Call(host, Config([command]), command, args);

        Assert.True(result.IsError);
        Assert.Contains($"{command} runs the programs or code its arguments give it", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ArgumentPatterns_AreTheOnlyArgumentsAProgramTakes()
    {
        await using var host = await Start("Auto");
        var config = Config(["echo"], patterns: new() { ["echo"] = ["hello", "w[a-z]+"] });

        var allowed = await Call(host, config, "echo", ["hello", "world"]);
        var refused = await Call(host, config, "echo", ["hello", "World"]);

        Assert.Equal("hello world\n", allowed.Content);
        Assert.True(refused.IsError);
        Assert.Contains("Argument 2 (`World`) matches none of the argument patterns allowed for echo", refused.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("../../../../etc/passwd")]
    [InlineData("sub/../../outside")]
    [InlineData("--file=/etc/shadow")]
    [InlineData("if=/etc/passwd")]
    [InlineData("~/.ssh/id_rsa")]
    [InlineData("/proc/self/environ")]
    public async Task PathsOutsideTheWorkingDirectory_AreRefused(string argument)
    {
        await using var host = await Start("Auto");

        var result = await Call(host, Config(["cat"]), "cat", [argument]);

        Assert.True(result.IsError);
        Assert.Contains("outside the working directory", result.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, 1_000_000)]
    [InlineData(200, 60_000)]
    public async Task HugeArguments_GetAClearError(int count, int length)
    {
        await using var host = await Start("Auto");

        var result = await Call(host, Config(["echo"]), "echo", [.. Enumerable.Repeat(new string('a', length), count)]);

        Assert.True(result.IsError);
        Assert.DoesNotContain("unexpectedly", result.Content, StringComparison.Ordinal);
        Assert.Matches("arguments (are|do not match)", result.Content);
    }

    [Fact]
    public async Task ANulInAnArgument_IsRefusedNotTruncated()
    {
        await using var host = await Start("Auto");

        var result = await Call(host, Config(["echo"]), "echo", ["safe\0--dangerous"]);

        Assert.True(result.IsError);
        Assert.Contains("Argument 1 contains a NUL character", result.Content, StringComparison.Ordinal);
    }

    private static Task<NamraTestHost> Start(string isolation) =>
        NamraTestHost.StartAsync("tool-executor", new Dictionary<string, string?> { ["Namra:ToolExecutor:ShellIsolation"] = isolation });

    private ShellToolSettings Config(string[] commands, string[]? allowedPaths = null, Dictionary<string, string[]>? patterns = null) => new()
    {
        AllowedCommands = { commands },
        WorkingDirectory = _workdir,
        AllowedPaths = { allowedPaths ?? [] },
        ArgumentPatterns = { (patterns ?? []).ToDictionary(p => p.Key, p => new ShellToolSettings.Types.ArgumentPatterns { Patterns = { p.Value } }) },
    };

    private static async Task<ToolResult> Call(NamraTestHost host, ShellToolSettings config, string command, string[] args, TimeSpan? timeout = null)
    {
        var client = new ToolExecutorService.ToolExecutorServiceClient(host.Channel);
        var response = await client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig { Name = "shell", Type = ToolType.BuiltinShell, Shell = config, Timeout = Duration.FromTimeSpan(timeout ?? TimeSpan.FromSeconds(20)) },
            Call = new ToolCall { Id = "call_1", Name = "shell", ArgumentsJson = System.Text.Json.JsonSerializer.Serialize(new { command, args }) },
        });
        return response.Result;
    }

    // The kernel ends a namespace's processes and delivers SIGKILL to a group asynchronously: poll the process table.
    private static async Task WaitUntilGone(string marker)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Running(marker).Count > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"still running: {string.Join("; ", Running(marker))}");
            await Task.Delay(50);
        }
    }

    private static List<string> Running(string marker)
    {
        var found = new List<string>();
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                var commandLine = File.ReadAllText(Path.Combine(folder, "cmdline")).Replace('\0', ' ');
                if (commandLine.Contains(marker, StringComparison.Ordinal) && !commandLine.Contains("-c", StringComparison.Ordinal))
                {
                    found.Add($"{Path.GetFileName(folder)}: {commandLine}");
                }
            }
            catch (IOException)
            {
                // exited while being read
            }
            catch (UnauthorizedAccessException)
            {
                // not ours to read
            }
        }

        return found;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "prctl")]
    private static extern int GetDumpable(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [GeneratedRegex(@"PPid:\s*(\d+)")]
    private static partial Regex ParentPid();
}
