using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests.Python;

/// <summary>
/// <c>python</c> entries: the tool executor starting <c>python3 -m namra.plugin</c> for a module (with the system
/// interpreter and Debian's grpcio), calling it over its Unix socket, and keeping it: restarted after it is killed in
/// the middle of a call, stopped when idle, given a minimal environment.
/// </summary>
public sealed class PythonToolTests : IAsyncLifetime
{
    private static readonly string Module = RepositoryPaths.Combine("tests", "Namra.ToolExecutor.Tests", "Python", "plugin_tools.py");

    private readonly string _folder = Directory.CreateTempSubdirectory("namra-python-tool-").FullName;
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("tool-executor", new Dictionary<string, string?>
        {
            ["Namra:ToolExecutor:PythonIdleTimeout"] = "00:00:02",
        });
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task ListTools_GivesTheModulesTools_AndACallRuns()
    {
        var listed = await _client.ListToolsAsync(new ListToolsRequest { Tools = { Entry() } });
        var refused = await CallAsync(Entry(), "refuse", "{\"reason\": \"not on Sundays\"}");

        Assert.Equal(["echo_call", "environment", "hold", "refuse"], listed.Tools.Select(t => t.Name));
        Assert.All(listed.Tools, t => Assert.Equal("py", t.Source));
        Assert.Equal("Writes its process id to a file, then waits.", listed.Tools.Single(t => t.Name == "hold").Description);
        Assert.Equal(["pid_file", "seconds"], JsonDocument.Parse(listed.Tools.Single(t => t.Name == "hold").InputSchemaJson).RootElement
            .GetProperty("required").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal((true, "not on Sundays"), (refused.IsError, refused.Content));
    }

    [Fact]
    public async Task ACall_ReachesTheTool_WithItsIdempotencyKey_Run_Agent_Options_AndTraceContext()
    {
        using var spans = new Namra.Testing.Telemetry.RecordedSpans();
        using var source = new ActivitySource("Namra.Tests.Python");
        var options = new Struct { Fields = { ["region"] = Value.ForString("eu") } };

        ToolResult result;
        ActivityTraceId traceId;
        using (var caller = source.StartActivity("caller"))
        {
            traceId = caller!.TraceId;
            result = await CallAsync(Entry(options: options), "echo_call", "{\"note\": \"hi\"}", new ToolCallContext { RunId = "run-7", AgentName = "support" }, "toolu_3");
        }

        Assert.False(result.IsError, result.Content);
        var seen = JsonDocument.Parse(result.Content).RootElement;
        Assert.Equal("run-7:toolu_3", seen.GetProperty("key").GetString());
        Assert.Equal(("run-7", "support", "toolu_3", "hi"), (seen.GetProperty("run").GetString(), seen.GetProperty("agent").GetString(), seen.GetProperty("call").GetString(), seen.GetProperty("note").GetString()));
        Assert.Equal("eu", seen.GetProperty("options").GetProperty("region").GetString());
        Assert.Equal(traceId.ToHexString(), seen.GetProperty("trace").GetString());
        Assert.Contains(spans.Of(traceId), a => a.OperationName == "execute_tool echo_call" && (string?)a.GetTagItem("gen_ai.tool.type") == "python");
    }

    [Fact]
    public async Task APluginKilledInTheMiddleOfACall_GivesThatCallAnErrorResult_AndTheNextCallStartsItAgain()
    {
        var pidFile = Path.Combine(_folder, "pid");
        var held = CallAsync(Entry(), "hold", JsonSerializer.Serialize(new { pid_file = pidFile, seconds = 60 }));
        await Eventually.HoldsAsync(() => File.Exists(pidFile) && new FileInfo(pidFile).Length > 0);
        var first = int.Parse(await File.ReadAllTextAsync(pidFile), System.Globalization.CultureInfo.InvariantCulture);

        Process.GetProcessById(first).Kill();
        var interrupted = await held.WaitAsync(TimeSpan.FromSeconds(30));
        var next = await CallAsync(Entry(), "echo_call", "{}");

        Assert.True(interrupted.IsError);
        Assert.StartsWith($"The Python plugin serving '{Module}' stopped during the call (killed by signal 9)", interrupted.Content, StringComparison.Ordinal);
        Assert.Contains("may or may not have taken effect", interrupted.Content, StringComparison.Ordinal);
        Assert.False(next.IsError, next.Content);
        Assert.NotEqual(first, JsonDocument.Parse(next.Content).RootElement.GetProperty("pid").GetInt32());
    }

    [Fact]
    public async Task ThePlugin_GetsAMinimalEnvironment_NotTheExecutors_PlusItsEntrysEnv_Resolved()
    {
        Environment.SetEnvironmentVariable("NAMRA_TEST_PLUGIN_SECRET", "s3cret-for-the-plugin");
        var entry = Entry(env: new() { ["SEARCH_TOKEN"] = "${NAMRA_TEST_PLUGIN_SECRET}", ["PYTHONPATH"] = _folder });

        var result = await CallAsync(entry, "environment", "{}");

        Assert.False(result.IsError, result.Content);
        var environment = JsonDocument.Parse(result.Content).RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        Assert.Equal("s3cret-for-the-plugin", environment["SEARCH_TOKEN"]);
        Assert.False(environment.ContainsKey("NAMRA_TEST_PLUGIN_SECRET"));
        Assert.StartsWith(_folder + ":", environment["PYTHONPATH"], StringComparison.Ordinal);
        Assert.EndsWith(Path.Combine(AppContext.BaseDirectory, "python"), environment["PYTHONPATH"], StringComparison.Ordinal);
        Assert.Empty(environment.Keys.Except(["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "SEARCH_TOKEN", "LC_CTYPE"]));
    }

    [Fact]
    public async Task ConcurrentCalls_ShareOneProcess()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => CallAsync(Entry(), "echo_call", $"{{\"note\": \"{i}\"}}", id: $"c{i}")));

        Assert.All(results, r => Assert.False(r.IsError, r.Content));
        Assert.Single(results.Select(r => JsonDocument.Parse(r.Content).RootElement.GetProperty("pid").GetInt32()).Distinct());
    }

    [Fact]
    public async Task AnIdlePlugin_IsStopped_AndTheNextCallStartsItAgain()
    {
        var first = JsonDocument.Parse((await CallAsync(Entry(), "echo_call", "{}")).Content).RootElement.GetProperty("pid").GetInt32();

        await Eventually.HoldsAsync(() => !Directory.Exists($"/proc/{first}"), TimeSpan.FromSeconds(20));
        var next = await CallAsync(Entry(), "echo_call", "{}");

        Assert.False(next.IsError, next.Content);
        Assert.NotEqual(first, JsonDocument.Parse(next.Content).RootElement.GetProperty("pid").GetInt32());
    }

    [Fact]
    public async Task ACallPastItsTimeout_IsStopped_AndThePluginServesTheNextCall()
    {
        var entry = Entry();
        entry.Timeout = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(500));

        var late = await CallAsync(entry, "hold", JsonSerializer.Serialize(new { pid_file = Path.Combine(_folder, "late"), seconds = 30 }));
        var next = await CallAsync(entry, "echo_call", "{}");

        Assert.Equal((true, "The tool did not finish within 0.5 s and was stopped."), (late.IsError, late.Content));
        Assert.False(next.IsError, next.Content);
    }

    [Theory]
    [InlineData("import no_such_module_here\n", "ModuleNotFoundError: No module named 'no_such_module_here'")]
    [InlineData("x = 1\n", "defines no tools: decorate its functions with @namra.tool")]
    [InlineData("def broken(:\n", "SyntaxError")]
    public async Task AModuleThatCannotLoad_FailsListToolsAndCallsWithItsReason(string text, string reason)
    {
        var module = Path.Combine(_folder, "broken.py");
        await File.WriteAllTextAsync(module, text);

        var refused = await Assert.ThrowsAsync<RpcException>(() => _client.ListToolsAsync(new ListToolsRequest { Tools = { Entry(module) } }).ResponseAsync);
        var call = await Assert.ThrowsAsync<RpcException>(() => CallAsync(Entry(module), "anything", "{}"));

        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains($"The Python plugin for '{module}' ended as it started (exit code 3): namra.plugin: cannot load {module}: ", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains(reason, refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal((StatusCode.FailedPrecondition, refused.Status.Detail), (call.StatusCode, call.Status.Detail));
    }

    [Fact]
    public async Task AModuleThatPrintsAFloodAsItLoads_StillStarts_ItsOutputReadInBoundedLines()
    {
        var module = Path.Combine(_folder, "loud.py");
        await File.WriteAllTextAsync(module, "import sys\nfrom namra import tool\nprint('x' * 8_000_000, end='')\nsys.stderr.write('y' * 8_000_000)\n\n" +
            "@tool\ndef quiet() -> str:\n    \"Says little.\"\n    print('z' * 1_000_000)\n    return 'ok'\n");

        var result = await CallAsync(Entry(module), "quiet", "{}");

        Assert.Equal((false, "ok"), (result.IsError, result.Content));
    }

    [Fact]
    public async Task AMissingFile_IsSaidWithWhereItWasLookedFor()
    {
        var refused = await Assert.ThrowsAsync<RpcException>(() => _client.ListToolsAsync(new ListToolsRequest { Tools = { Entry("no/such/tools.py") } }).ResponseAsync);

        Assert.Contains("namra.plugin: cannot load no/such/tools.py: LookupError: there is no file no/such/tools.py (looked for /", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnInterpreterThatCannotStart_IsSaidWithTheSettingToChange()
    {
        await using var host = await NamraTestHost.StartAsync("tool-executor", new Dictionary<string, string?>
        {
            ["Namra:ToolExecutor:PythonInterpreter"] = "/nonexistent/python3",
        });

        var refused = await Assert.ThrowsAsync<RpcException>(() => new ToolExecutorService.ToolExecutorServiceClient(host.Channel)
            .ListToolsAsync(new ListToolsRequest { Tools = { Entry() } }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.StartsWith("The Python interpreter '/nonexistent/python3' could not be started", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("Namra:ToolExecutor:PythonInterpreter", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnEntryFromAnUntrustedCaller_IsRefused_AndNothingStarts()
    {
        var module = Path.Combine(_folder, "never.py");
        await File.WriteAllTextAsync(module, $"open({JsonSerializer.Serialize(Path.Combine(_folder, "ran"))}, 'w').close()\n");

        var refused = await Assert.ThrowsAsync<RpcException>(() => _client.ListToolsAsync(new ListToolsRequest
        {
            Tools = { Entry(module) },
            Context = new ToolCallContext { Untrusted = true },
        }).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("(python) is not run for agents sent inline", refused.Status.Detail, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_folder, "ran")));
    }

    private static ToolConfig Entry(string? module = null, Dictionary<string, string>? env = null, Struct? options = null)
    {
        var settings = new PythonToolSettings { Module = module ?? Module, Options = options };
        settings.Env.Add(env ?? []);
        return new ToolConfig { Name = "py", Type = ToolType.Python, Python = settings };
    }

    private async Task<ToolResult> CallAsync(ToolConfig entry, string name, string arguments, ToolCallContext? context = null, string id = "c1")
    {
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = entry,
            Call = new ToolCall { Id = id, Name = name, ArgumentsJson = arguments },
            Context = context,
        });
        return response.Result;
    }
}
