using System.Diagnostics;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>
/// <c>grpc</c> entries against the sample tool provider written in Node.js (<c>examples/tool-providers/node</c>),
/// running as its own process on a real socket.
/// </summary>
public sealed class GrpcProviderToolTests : IAsyncLifetime
{
    private const string Token = "provider-secret-7f3a";
    private NodeProcess _provider = null!;
    private string _address = "";
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        var script = RepositoryPaths.Combine("examples", "tool-providers", "node", "server.js");
        RepositoryPaths.NpmFile("examples/tool-providers/node", "@grpc/grpc-js/package.json");
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.Environment["PORT"] = "0";
        start.Environment["TOOL_PROVIDER_TOKEN"] = Token;
        _provider = new NodeProcess(Process.Start(start)!);
        var line = await _provider.Process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30))
            ?? throw new InvalidOperationException("The provider exited: " + await _provider.Process.StandardError.ReadToEndAsync());
        _address = "http://" + line[(line.LastIndexOf(' ') + 1)..];

        Environment.SetEnvironmentVariable("NAMRA_TEST_PROVIDER_TOKEN", Token);
        _host = await NamraTestHost.StartAsync("tool-executor");
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        _provider.Dispose();
    }

    [Fact]
    public async Task ListTools_GivesTheProvidersTools()
    {
        var response = await _client.ListToolsAsync(new ListToolsRequest { Tools = { Provider() } });

        Assert.Equal(["word_count", "convert_length"], response.Tools.Select(t => t.Name));
        Assert.All(response.Tools, t => Assert.Equal("text_tools", t.Source));
        Assert.Contains("\"text\"", response.Tools[0].InputSchemaJson, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExecuteTool_RunsTheProvidersTool()
    {
        var count = await Execute(Provider(), "word_count", "{\"text\":\"the quick brown fox\\njumps\"}");
        var length = await Execute(Provider(), "convert_length", "{\"value\":1,\"from\":\"mi\",\"to\":\"km\"}");

        Assert.False(count.IsError, count.Content);
        Assert.Equal("{\"words\":5,\"lines\":2,\"characters\":25}", count.Content);
        Assert.Equal("{\"value\":1.609344,\"unit\":\"km\"}", length.Content);
    }

    [Fact]
    public async Task AProvidersOwnError_ReachesTheModelAsAnErrorResult()
    {
        var result = await Execute(Provider(), "convert_length", "{\"value\":1,\"from\":\"parsec\",\"to\":\"km\"}");

        Assert.True(result.IsError);
        Assert.Contains("Unknown unit 'parsec'", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ArgumentsAreCheckedAgainstTheProvidersSchema_BeforeTheProviderIsCalled()
    {
        var result = await Execute(Provider(), "word_count", "{\"text\":\"a\",\"extra\":1}");

        Assert.True(result.IsError);
        Assert.Contains("do not match the tool's schema", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutItsToken_TheProviderRefuses_AndListToolsSaysWhy()
    {
        var tool = Provider();
        tool.Grpc.Headers.Clear();

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.ListToolsAsync(new ListToolsRequest { Tools = { tool } }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("Unauthenticated", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AProviderThatIsDown_FailsClearly_AndTheServiceKeepsServing()
    {
        var tool = Provider();
        tool.Grpc.Address = "http://127.0.0.1:9";

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.ListToolsAsync(new ListToolsRequest { Tools = { tool } }).ResponseAsync);
        var after = await Execute(Provider(), "word_count", "{\"text\":\"still here\"}");

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("http://127.0.0.1:9", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("\"words\":2", after.Content, StringComparison.Ordinal);
    }

    private ToolConfig Provider() => new()
    {
        Name = "text_tools",
        Type = ToolType.Grpc,
        Grpc = new GrpcToolSettings { Address = _address, Headers = { ["authorization"] = "Bearer ${NAMRA_TEST_PROVIDER_TOKEN}" } },
    };

    private async Task<ToolResult> Execute(ToolConfig tool, string name, string arguments)
    {
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = tool,
            Call = new ToolCall { Id = "call_1", Name = name, ArgumentsJson = arguments },
        });
        return response.Result;
    }
}
