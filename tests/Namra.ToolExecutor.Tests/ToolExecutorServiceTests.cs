using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>The tool executor over gRPC on a real socket.</summary>
public sealed class ToolExecutorServiceTests : IAsyncLifetime
{
    private static readonly ToolConfig Calculator = new() { Name = "calc", Type = ToolType.BuiltinCalculator, Calculator = new CalculatorToolSettings() };
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("tool-executor", new Dictionary<string, string?> { ["Namra:ToolExecutor:MaxOutputCharacters"] = "256" });
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task ListTools_DescribesEachToolWithItsSchemaAndSource()
    {
        var response = await _client.ListToolsAsync(new ListToolsRequest { Tools = { Calculator } });

        var tool = Assert.Single(response.Tools);
        Assert.Equal(("calc", "calc"), (tool.Name, tool.Source));
        Assert.Contains("\"expression\"", tool.InputSchemaJson, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUntrustedDefinitionsTools_AreJudgedByEachTool_BeforeTheyAreListedOrRun()
    {
        var untrusted = new ToolCallContext { Untrusted = true };
        var shell = new ToolConfig { Name = "sh", Type = ToolType.BuiltinShell, Shell = new ShellToolSettings { AllowedCommands = { "echo" } } };
        var inward = new ToolConfig { Name = "web", Type = ToolType.BuiltinHttp, Http = new HttpToolSettings { AllowPrivateNetworks = true } };
        var publicWeb = new ToolConfig { Name = "web", Type = ToolType.BuiltinHttp, Http = new HttpToolSettings() };

        var listedShell = await Assert.ThrowsAsync<RpcException>(() => _client.ListToolsAsync(new ListToolsRequest { Tools = { shell }, Context = untrusted }).ResponseAsync);
        var ranInward = await Assert.ThrowsAsync<RpcException>(() => _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = inward, Call = new ToolCall { Id = "c", Name = "web", ArgumentsJson = "{\"url\":\"http://127.0.0.1/\"}" }, Context = untrusted,
        }).ResponseAsync);
        var calculator = await _client.ExecuteToolAsync(new ExecuteToolRequest { Tool = Calculator, Call = new ToolCall { Id = "c", Name = "calc", ArgumentsJson = "{\"expression\":\"6*7\"}" }, Context = untrusted });
        var listedWeb = await _client.ListToolsAsync(new ListToolsRequest { Tools = { publicWeb }, Context = untrusted });

        Assert.Equal(StatusCode.PermissionDenied, listedShell.StatusCode);
        Assert.Contains("tool 'sh' (builtin.shell)", listedShell.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.PermissionDenied, ranInward.StatusCode);
        Assert.Contains("private networks", ranInward.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("42", calculator.Result.Content);
        Assert.Single(listedWeb.Tools);
    }

    [Fact]
    public async Task SettingsOfAnotherToolType_AreRefused_NeverReadAsNoSettings()
    {
        // A shell entry carrying http settings would otherwise run with no allowed commands read from its own.
        var mismatched = new ToolConfig { Name = "sh", Type = ToolType.BuiltinShell, Http = new HttpToolSettings { AllowPrivateNetworks = true } };

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = mismatched, Call = new ToolCall { Id = "c", Name = "sh", ArgumentsJson = "{\"command\":\"echo\"}" },
        }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("tool.http", Assert.Single(Namra.Hosting.Errors.RpcDetails.Of<Google.Rpc.BadRequest>(error)).FieldViolations[0].Field);
        Assert.Contains("another tool type than builtin.shell", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExecuteTool_RunsTheCallAndReportsItsDuration()
    {
        var response = await _client.ExecuteToolAsync(Call("{\"expression\":\"(17 + 25) * 2\"}"));

        Assert.Equal(("call_1", "84", false), (response.Result.ToolCallId, response.Result.Content, response.Result.IsError));
        Assert.NotNull(response.Duration);
    }

    [Theory]
    [InlineData("{\"expr\":\"1+1\"}", "arguments: Required properties [\"expression\"] are not present")]
    [InlineData("{\"expression\":42}", "arguments.expression")]
    [InlineData("{not json", "not valid JSON")]
    [InlineData("[1,2]", "do not match the tool's schema")]
    public async Task ExecuteTool_WhenArgumentsAreWrong_ReturnsAnErrorResultTheModelCanRead(string arguments, string says)
    {
        var response = await _client.ExecuteToolAsync(Call(arguments));

        Assert.True(response.Result.IsError);
        Assert.Contains(says, response.Result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExecuteTool_WhenTheToolFails_ReturnsAnErrorResultNotAFailedCall()
    {
        var response = await _client.ExecuteToolAsync(Call("{\"expression\":\"1/0\"}"));

        Assert.True(response.Result.IsError);
        Assert.Contains("Division by zero", response.Result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExecuteTool_CutsOutputAtTheLimit()
    {
        var response = await _client.ExecuteToolAsync(Call("{\"expression\":\"" + new string(' ', 10) + "unknown_name_" + new string('x', 400) + "\"}"));

        Assert.True(response.Truncated);
        Assert.Contains("[output cut at 256 characters", response.Result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExecuteTool_WhenTheEntryHasNoSuchTool_FailsWithInvalidArgument()
    {
        var request = Call("{}");
        request.Call.Name = "other";

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.ExecuteToolAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    [Fact]
    public async Task ExecuteTool_ForATypeThisVersionDoesNotKnow_AnswersUnimplemented()
    {
        var request = Call("{}");
        request.Tool = new ToolConfig { Name = "calc", Type = (ToolType)99 };

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.ExecuteToolAsync(request).ResponseAsync);

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
    }

    private static ExecuteToolRequest Call(string arguments) => new()
    {
        Tool = Calculator,
        Call = new ToolCall { Id = "call_1", Name = "calc", ArgumentsJson = arguments },
    };
}
