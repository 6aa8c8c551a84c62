using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>
/// MCP entries against the real npm servers (<c>@modelcontextprotocol/server-everything</c> and
/// <c>server-filesystem</c>, installed by <c>npm ci --prefix tests/tool-servers</c>), over stdio and streamable HTTP.
/// </summary>
public sealed class McpToolTests : IAsyncLifetime
{
    private static readonly string Everything = RepositoryPaths.NpmFile("tests/tool-servers", "@modelcontextprotocol/server-everything/dist/index.js");
    private static readonly string Filesystem = RepositoryPaths.NpmFile("tests/tool-servers", "@modelcontextprotocol/server-filesystem/dist/index.js");

    private readonly string _root = Directory.CreateTempSubdirectory("namra-mcp-").FullName;
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("tool-executor", new Dictionary<string, string?>
        {
            ["Namra:ToolExecutor:AllowedMcpCommands:0"] = "node",
        });
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task ListTools_OverStdio_GivesTheServersToolsWithTheirSchemas()
    {
        var response = await _client.ListToolsAsync(new ListToolsRequest { Tools = { Stdio(Everything, ["stdio"]) } });

        var echo = Assert.Single(response.Tools, t => t.Name == "echo");
        Assert.Equal("everything", echo.Source);
        Assert.Contains("\"message\"", echo.InputSchemaJson, StringComparison.Ordinal);
        Assert.Contains(response.Tools, t => t.Name == "get-sum");
    }

    [Fact]
    public async Task EachCall_CarriesItsIdempotencyKey_InTheRequestsMeta()
    {
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = Stdio(RepositoryPaths.Combine("tests", "tool-servers", "meta-echo.mjs"), [], name: "meta-echo"),
            Call = new ToolCall { Id = "toolu_7", Name = "meta", ArgumentsJson = "{}" },
            Context = new ToolCallContext { RunId = "run-3" },
        });

        Assert.False(response.Result.IsError, response.Result.Content);
        Assert.Equal("run-3:toolu_7", System.Text.Json.JsonDocument.Parse(response.Result.Content).RootElement.GetProperty("io.namra/idempotency-key").GetString());
    }

    [Fact]
    public async Task ExecuteTool_OverStdio_ReturnsTheServersText()
    {
        var echo = await Execute(Stdio(Everything, ["stdio"]), "echo", "{\"message\":\"hello from namra\"}");
        var sum = await Execute(Stdio(Everything, ["stdio"]), "get-sum", "{\"a\":2,\"b\":40}");

        Assert.False(echo.IsError, echo.Content);
        Assert.Equal("Echo: hello from namra", echo.Content);
        Assert.Contains("42", sum.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExecuteTool_ChecksArgumentsAgainstTheServersSchemaFirst()
    {
        var result = await Execute(Stdio(Everything, ["stdio"]), "echo", "{\"message\":7}");

        Assert.True(result.IsError);
        Assert.Contains("do not match the tool's schema", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StdioServer_InheritsNoSecrets_ButGetsItsConfiguredEnvironment()
    {
        Environment.SetEnvironmentVariable("NAMRA_TEST_MCP_API_KEY", "sk-must-not-reach-the-server");
        Environment.SetEnvironmentVariable("NAMRA_TEST_MCP_TOKEN", "token-resolved-at-start");
        var tool = Stdio(Everything, ["stdio"], new Dictionary<string, string> { ["SERVER_TOKEN"] = "${NAMRA_TEST_MCP_TOKEN}" });

        var result = await Execute(tool, "get-env", "{}");

        Assert.DoesNotContain("sk-must-not-reach-the-server", result.Content, StringComparison.Ordinal);
        Assert.Contains("\"SERVER_TOKEN\": \"token-resolved-at-start\"", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FilesystemServer_ReadsInsideItsRoot_AndRefusesOutside()
    {
        await File.WriteAllTextAsync(Path.Combine(_root, "notes.txt"), "remember the milk");
        var tool = Stdio(Filesystem, [_root], name: "files");

        var inside = await Execute(tool, "read_text_file", System.Text.Json.JsonSerializer.Serialize(new { path = Path.Combine(_root, "notes.txt") }));
        var outside = await Execute(tool, "read_text_file", "{\"path\":\"/etc/passwd\"}");
        var traversal = await Execute(tool, "read_text_file", System.Text.Json.JsonSerializer.Serialize(new { path = Path.Combine(_root, "../../etc/passwd") }));

        Assert.False(inside.IsError, inside.Content);
        Assert.Equal("remember the milk", inside.Content);
        Assert.True(outside.IsError, outside.Content);
        Assert.DoesNotContain("root:", outside.Content, StringComparison.Ordinal);
        Assert.True(traversal.IsError, traversal.Content);
    }

    [Fact]
    public async Task ExecuteTool_StopsACallThatOutlivesItsTimeout()
    {
        var tool = Stdio(Everything, ["stdio"]);
        tool.Timeout = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(500));

        var result = await Execute(tool, "trigger-long-running-operation", "{\"duration\":30,\"steps\":3}");
        var after = await Execute(tool, "echo", "{\"message\":\"still serving\"}");

        Assert.True(result.IsError);
        Assert.Contains("did not finish within 0.5 s", result.Content, StringComparison.Ordinal);
        Assert.Equal("Echo: still serving", after.Content);
    }

    [Fact]
    public async Task StreamableHttp_ListsAndCallsTools()
    {
        var port = LocalPorts.Free();
        using var server = StartNode(Everything, ["streamableHttp"], new Dictionary<string, string> { ["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await LocalPorts.WaitUntilListeningAsync(port);
        var tool = new ToolConfig
        {
            Name = "remote",
            Type = ToolType.Mcp,
            Mcp = new McpToolSettings { Transport = "http", Url = $"http://127.0.0.1:{port}/mcp" },
        };

        var tools = await _client.ListToolsAsync(new ListToolsRequest { Tools = { tool } });
        var echo = await Execute(tool, "echo", "{\"message\":\"over http\"}");

        Assert.Contains(tools.Tools, t => t.Name == "echo" && t.Source == "remote");
        Assert.Equal("Echo: over http", echo.Content);
    }

    [Fact]
    public async Task AServerThatCannotStart_FailsListToolsClearly_AndTheServiceKeepsServing()
    {
        var tool = Stdio(Everything, ["stdio"]);
        tool.Mcp.Command = "node";
        tool.Mcp.Args.Clear();
        tool.Mcp.Args.Add(Path.Combine(_root, "no-such-server.js"));

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.ListToolsAsync(new ListToolsRequest { Tools = { tool } }).ResponseAsync);
        var after = await Execute(Stdio(Everything, ["stdio"]), "echo", "{\"message\":\"fine\"}");

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("could not be started or reached", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("Echo: fine", after.Content);
    }

    [Fact]
    public async Task ACommandTheOperatorDidNotAllow_IsRefused()
    {
        var tool = Stdio(Everything, ["stdio"]);
        tool.Mcp.Command = "bash";
        tool.Mcp.Args.Clear();
        tool.Mcp.Args.Add(["-c", "touch " + Path.Combine(_root, "pwned")]);

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.ListToolsAsync(new ListToolsRequest { Tools = { tool } }).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.False(File.Exists(Path.Combine(_root, "pwned")));
    }

    private static ToolConfig Stdio(string script, string[] args, IDictionary<string, string>? env = null, string name = "everything")
    {
        var settings = new McpToolSettings { Transport = "stdio", Command = "node", Args = { script }, Env = { env ?? new Dictionary<string, string>() } };
        settings.Args.Add(args);
        return new ToolConfig { Name = name, Type = ToolType.Mcp, Mcp = settings };
    }

    private async Task<ToolResult> Execute(ToolConfig tool, string name, string arguments)
    {
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = tool,
            Call = new ToolCall { Id = "call_1", Name = name, ArgumentsJson = arguments },
        });
        return response.Result;
    }

    private static NodeProcess StartNode(string script, string[] args, IDictionary<string, string> env)
    {
        var start = new ProcessStartInfo("node") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(script);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in env)
        {
            start.Environment[name] = value;
        }

        return new NodeProcess(Process.Start(start)!);
    }
}

/// <summary>A Node process a test started; killed with its children when disposed.</summary>
internal sealed class NodeProcess(Process process) : IDisposable
{
    public Process Process => process;

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }

        process.Dispose();
    }
}
