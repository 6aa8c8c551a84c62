using System.Diagnostics;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests.Python;

/// <summary>
/// The Python package's tools (<c>sdk/python</c>, <c>@tool</c> and <c>serve</c>) served to the real tool executor as a
/// <c>grpc</c> entry: the example provider (<c>examples/tool-providers/python</c>) in its own process, with the system
/// interpreter and Debian's grpcio.
/// </summary>
public sealed class PythonToolProviderTests : IAsyncLifetime
{
    private Process? _provider;
    private string _address = "";
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        (_provider, _address) = await StartProviderAsync([RepositoryPaths.Combine("examples", "tool-providers", "python", "tools.py")]);
        _host = await NamraTestHost.StartAsync("tool-executor");
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await StopAsync(_provider);
    }

    [Fact]
    public async Task ACall_ReachesTheProvider_WithItsIdempotencyKey_Run_Agent_AndOptions()
    {
        var (provider, address) = await StartProviderAsync(["-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import plugin_tools; from namra import serve; serve([plugin_tools.echo_call], port=0)",
            RepositoryPaths.Combine("tests", "Namra.ToolExecutor.Tests", "Python")]);
        try
        {
            var entry = new ToolConfig { Name = "echo", Type = ToolType.Grpc, Grpc = new GrpcToolSettings { Address = address } };
            entry.Grpc.Options = new Google.Protobuf.WellKnownTypes.Struct { Fields = { ["region"] = Google.Protobuf.WellKnownTypes.Value.ForString("eu") } };

            var result = (await new ToolExecutorService.ToolExecutorServiceClient(_host.Channel).ExecuteToolAsync(new ExecuteToolRequest
            {
                Tool = entry,
                Call = new ToolCall { Id = "toolu_9", Name = "echo_call", ArgumentsJson = "{}" },
                Context = new ToolCallContext { RunId = "run-4", AgentName = "support" },
            })).Result;

            Assert.False(result.IsError, result.Content);
            var seen = System.Text.Json.JsonDocument.Parse(result.Content).RootElement;
            Assert.Equal(("run-4:toolu_9", "run-4", "support", "toolu_9", "eu"), (seen.GetProperty("key").GetString(), seen.GetProperty("run").GetString(),
                seen.GetProperty("agent").GetString(), seen.GetProperty("call").GetString(), seen.GetProperty("options").GetProperty("region").GetString()));
        }
        finally
        {
            await StopAsync(provider);
        }
    }

    // A provider in its own process on a free port: the interpreter's arguments, and the address it serves on.
    private static async Task<(Process Provider, string Address)> StartProviderAsync(string[] arguments)
    {
        var start = new ProcessStartInfo("/usr/bin/python3", arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["PYTHONPATH"] = RepositoryPaths.Combine("sdk", "python");
        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        start.Environment["PORT"] = "0";
        var provider = Process.Start(start)!;
        var line = await provider.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30))
            ?? throw new InvalidOperationException("The Python provider exited: " + await provider.StandardError.ReadToEndAsync());
        return (provider, "http://" + line[(line.LastIndexOf(' ') + 1)..]);
    }

    private static async Task StopAsync(Process? provider)
    {
        if (provider is { HasExited: false })
        {
            provider.Kill(entireProcessTree: true);
            await provider.WaitForExitAsync();
        }

        provider?.Dispose();
    }

    [Fact]
    public async Task ThePythonTools_AreListedWithTheirSchemas_AndRunByTheToolExecutor()
    {
        var client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
        var entry = new ToolConfig { Name = "python_tools", Type = ToolType.Grpc, Grpc = new GrpcToolSettings { Address = _address } };

        var listed = await client.ListToolsAsync(new ListToolsRequest { Tools = { entry } });
        async Task<ToolResult> Call(string name, string arguments) => (await client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = entry, Call = new ToolCall { Id = "c1", Name = name, ArgumentsJson = arguments },
        })).Result;
        var counted = await Call("word_count", "{\"text\": \"the quick brown fox\\njumps\"}");
        var converted = await Call("convert_length", "{\"value\": 1, \"unit_from\": \"mi\", \"unit_to\": \"km\"}");
        var refusedByTheTool = await Call("convert_length", "{\"value\": 1, \"unit_from\": \"mi\", \"unit_to\": \"parsec\"}");
        var refusedBySchema = await Call("convert_length", "{\"value\": 1, \"unit_from\": \"league\", \"unit_to\": \"km\"}");

        Assert.Equal(["word_count", "convert_length"], listed.Tools.Select(t => t.Name));
        Assert.Equal("Counts the words, lines and characters of a text.", listed.Tools[0].Description);
        Assert.Contains("\"enum\": [\"m\", \"km\", \"mi\", \"ft\"]", listed.Tools[1].InputSchemaJson, StringComparison.Ordinal);
        Assert.Equal(("{\"words\": 5, \"lines\": 2, \"characters\": 25}", false), (counted.Content, counted.IsError));
        Assert.Equal("{\"value\": 1.609344, \"unit\": \"km\"}", converted.Content);
        Assert.Equal((true, "Unknown unit 'parsec'; use m, km, mi or ft."), (refusedByTheTool.IsError, refusedByTheTool.Content));
        Assert.True(refusedBySchema.IsError);
        Assert.Contains("do not match the tool's schema", refusedBySchema.Content, StringComparison.Ordinal);
    }
}
