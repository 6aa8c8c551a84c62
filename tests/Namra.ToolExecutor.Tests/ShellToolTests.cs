using Google.Protobuf.WellKnownTypes;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>The shell tool: allow-listed argv only, no shell, no inherited secrets, bounded in time and output.</summary>
public sealed class ShellToolTests : IAsyncLifetime
{
    private readonly string _workdir = ShellTestFolders.Create();
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("tool-executor");
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_workdir, recursive: true);
    }

    [Fact]
    public async Task Run_PassesArgumentsLiterally_WithoutAShell()
    {
        var result = await Call("echo", ["hello; rm -rf / && $(id) `whoami` | cat > /tmp/x"]);

        Assert.False(result.IsError, result.Content);
        Assert.Equal("hello; rm -rf / && $(id) `whoami` | cat > /tmp/x\n", result.Content);
    }

    [Theory]
    [InlineData("sh")]
    [InlineData("/bin/sh")]
    [InlineData("../../bin/echo")]
    [InlineData("echo ")]
    public async Task Run_RefusesCommandsNotOnTheList(string command)
    {
        var result = await Call(command, []);

        Assert.True(result.IsError);
        Assert.Contains("not an allowed command", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_InheritsNoSecretsButGetsItsConfiguredEnvironment()
    {
        Environment.SetEnvironmentVariable("NAMRA_TEST_SHELL_API_KEY", "sk-must-not-leak");
        Environment.SetEnvironmentVariable("NAMRA_TEST_SHELL_TOKEN", "resolved-at-call-time");

        var result = await Call("env", [], env: new Dictionary<string, string> { ["TOKEN"] = "Bearer ${NAMRA_TEST_SHELL_TOKEN}" });

        Assert.DoesNotContain("sk-must-not-leak", result.Content, StringComparison.Ordinal);
        Assert.Contains("TOKEN=Bearer resolved-at-call-time", result.Content, StringComparison.Ordinal);
        Assert.Contains("PATH=/usr/local/bin:/usr/bin:/bin", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_StopsACommandAtItsTimeout()
    {
        var result = await Call("sleep", ["30"], timeout: TimeSpan.FromMilliseconds(300));

        Assert.True(result.IsError);
        Assert.Contains("did not finish within 0.3 s", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_StopsACommandWhoseOutputPassesTheCap()
    {
        var result = await Call("yes", [], maxOutputBytes: 1000);

        Assert.True(result.IsError);
        Assert.Contains("[output cut at 1,000 bytes; the command was stopped]", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_ReportsAFailingCommandsExitCodeAndErrors()
    {
        var result = await Call("ls", ["definitely-not-here"]);

        Assert.True(result.IsError);
        Assert.StartsWith("exit code 2", result.Content, StringComparison.Ordinal);
        Assert.Contains("[stderr]", result.Content, StringComparison.Ordinal);
    }

    private async Task<ToolResult> Call(string command, string[] args, IDictionary<string, string>? env = null, TimeSpan? timeout = null, int maxOutputBytes = 65_536)
    {
        var settings = new ShellToolSettings
        {
            AllowedCommands = { "echo", "env", "sleep", "yes", "ls" },
            WorkingDirectory = _workdir,
            MaxOutputBytes = maxOutputBytes,
            Env = { env ?? new Dictionary<string, string>() },
        };
        var tool = new ToolConfig { Name = "sh", Type = ToolType.BuiltinShell, Shell = settings };
        if (timeout is { } limit)
        {
            tool.Timeout = Duration.FromTimeSpan(limit);
        }

        var arguments = new { command, args };
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = tool,
            Call = new ToolCall { Id = "call_1", Name = "sh", ArgumentsJson = System.Text.Json.JsonSerializer.Serialize(arguments) },
        });
        return response.Result;
    }
}
