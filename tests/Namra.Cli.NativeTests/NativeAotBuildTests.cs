using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Containers;

namespace Namra.Cli.NativeTests;

/// <summary>
/// The full <c>namra</c> CLI and <c>namra-server</c>, each published ahead of time (<c>-p:PublishAot=true</c>) once for
/// the tests of a class, as an operator builds them.
/// </summary>
public sealed class NativeAotBuilds : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("namra-aot-").FullName;

    public string Cli => Path.Combine(_root, "cli", "namra");

    public string Server => Path.Combine(_root, "server", "namra-server");

    public async ValueTask InitializeAsync()
    {
        await Publish.RunAsync(Path.Combine("cli", "Namra.Cli", "Namra.Cli.csproj"), Path.Combine(_root, "cli"), Cli, "-p:PublishAot=true");
        await Publish.RunAsync(Path.Combine("services", "Namra.Server", "Namra.Server.csproj"), Path.Combine(_root, "server"), Server, "-p:PublishAot=true");
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_root, recursive: true);
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// What the JIT builds do, the NativeAOT builds must do: run agents with every kind of built-in work (calculator,
/// SQLite, a Python plugin, a team of agents), serve gRPC, REST with its OpenAPI document, and refuse bad settings by
/// name. Trimming and ahead-of-time compilation fail at run time where reflection meets code that was not kept.
/// </summary>
public sealed class NativeAotBuildTests(NativeAotBuilds builds) : IClassFixture<NativeAotBuilds>, IDisposable
{
    private static readonly string Calculator = RepositoryPaths.Combine("examples", "agents", "calculator.yaml");
    private readonly string _data = Directory.CreateTempSubdirectory("namra-aot-data-").FullName;

    public void Dispose() => Directory.Delete(_data, recursive: true);

    [Theory]
    [InlineData("calculator", "(17 + 25) * 2 = 84.")]
    [InlineData("shop_database", "Green tea 100g (tea) is out of stock")]
    [InlineData("text_tools", "The sentence has 9 words, and 26.2 miles are 42.16 km.")]
    [InlineData("coordinator", "about 749,481 km")]
    public async Task TheAotCli_RunsTheExampleAgents(string agent, string answer)
    {
        var (code, output, error) = await RunCliAsync("run", RepositoryPaths.Combine("examples", "agents", agent + ".yaml"), "--input", "What is (17 + 25) * 2?");

        Assert.True(code == 0, $"exit {code}\n{output}\n{error}");
        Assert.Contains(answer, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheAotCli_PrintsTheRunsEventsAsJson()
    {
        var (code, output, error) = await RunCliAsync("run", Calculator, "--input", "What is (17 + 25) * 2?", "--json");

        Assert.True(code == 0, $"exit {code}\n{output}\n{error}");
        var kinds = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!.AsObject().Select(field => field.Key).Single(key => key is not ("runId" or "sequence" or "time" or "child"))).ToList();
        Assert.Equal("runStarted", kinds[0]);
        Assert.Contains("toolCall", kinds);
        Assert.Contains("toolResult", kinds);
        Assert.Equal("runCompleted", kinds[^1]);
    }

    [Fact]
    public async Task TheAotServer_ServesGrpcRestAndItsOpenApiDocument()
    {
        var (grpc, http) = (LocalPorts.Free(), LocalPorts.Free());
        using var server = StartServer(grpc, http);
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpc}");
        using var rest = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http}") };
        var inline = new AgentSource { Inline = new InlineAgent { Content = await File.ReadAllTextAsync(Calculator) } };

        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        var overGrpc = await new AgentService.AgentServiceClient(channel).ExecuteAsync(new ExecuteRequest { Agent = inline, Input = "What is (17 + 25) * 2?" });
        using var overRest = await rest.PostAsync("/v1/agents/execute", Body(new { agent = new { inline = new { content = inline.Inline.Content } }, input = "What is (17 + 25) * 2?" }));
        var run = JsonNode.Parse(await overRest.Content.ReadAsStringAsync())!["run"]!;
        using var stream = await rest.PostAsync("/v1/agents/execute:stream", Body(new { agent = new { inline = new { content = inline.Inline.Content } }, input = "What is (17 + 25) * 2?" }));
        var events = (await stream.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonNode.Parse(line)!["event"]!.AsObject()).ToList();
        var listed = JsonNode.Parse(await rest.GetStringAsync("/v1/runs?pageSize=5"))!["runs"]!.AsArray();
        using var missing = await rest.GetAsync("/v1/agents/no-such-run/status");
        var document = await rest.GetByteArrayAsync("/openapi/v1.json");

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        Assert.Equal((RunStatus.Completed, "(17 + 25) * 2 = 84."), (overGrpc.Run.Status, overGrpc.Run.Answer));
        Assert.Equal(HttpStatusCode.OK, overRest.StatusCode);
        Assert.Equal(("RUN_STATUS_COMPLETED", "(17 + 25) * 2 = 84."), (run["status"]!.GetValue<string>(), run["answer"]!.GetValue<string>()));
        Assert.True(events[0].ContainsKey("runStarted"));
        Assert.True(events[^1].ContainsKey("runCompleted"));
        Assert.Equal(3, listed.Count);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(5, JsonNode.Parse(await missing.Content.ReadAsStringAsync())!["code"]!.GetValue<int>());
        Assert.Equal(await File.ReadAllBytesAsync(RepositoryPaths.Combine("schemas", "openapi.v1.json")), document);
    }

    [Theory]
    [InlineData("redis")]
    [InlineData("postgres")]
    public async Task TheAotServer_KeepsRunsConversationsAndMemoriesInAShareableStore_AndServesReflection(string store)
    {
        // The drivers (StackExchange.Redis, Npgsql) and the vector stores over them meet trimming only here.
        await using var database = store == "redis" ? await LocalContainers.StartRedisAsync() : await LocalContainers.StartPostgresAsync();
        var (grpc, http) = (LocalPorts.Free(), LocalPorts.Free());
        using var server = StartServer(grpc, http, new()
        {
            [store == "redis" ? "Namra__Memory__RedisConnectionString" : "Namra__Memory__PostgresConnectionString"] = database.ConnectionString,
            ["Namra__Memory__DefaultStore"] = store,
        });
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpc}");
        var agents = new AgentService.AgentServiceClient(channel);
        var memory = new MemoryService.MemoryServiceClient(channel);
        var keeper = (await File.ReadAllTextAsync(RepositoryPaths.Combine("examples", "agents", "memory_keeper.yaml"))).Replace("type: sqlite", "type: " + store, StringComparison.Ordinal);
        var type = store == "redis" ? MemoryType.Redis : MemoryType.Postgres;

        var told = await agents.ExecuteAsync(new ExecuteRequest { Agent = new AgentSource { Inline = new InlineAgent { Content = keeper } }, Input = "Remember: my favourite colour is teal.", SessionId = "monday" });
        var asked = await agents.ExecuteAsync(new ExecuteRequest { Agent = new AgentSource { Inline = new InlineAgent { Content = keeper } }, Input = "What is my favourite colour?", SessionId = "tuesday" });
        var history = await memory.GetHistoryAsync(new GetHistoryRequest { SessionId = "monday", Store = type });
        var recalled = await memory.RecallAsync(new RecallRequest
        {
            Namespace = "agent:memory_keeper", Query = "favourite colour", TopK = 3, EmbeddingModel = "hashed-words", Store = type,
            Embedder = new LlmConfig { Provider = LlmProvider.Scripted, Model = "hashed-words" },
        });
        var runs = await memory.ListRunRecordsAsync(new ListRunRecordsRequest { PageSize = 10 });
        var journal = await memory.GetRunJournalAsync(new GetRunJournalRequest { RunId = told.Run.RunId, PageSize = 2 });
        using var reflection = new ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo();
        await reflection.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await reflection.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = "namra.v1.MemoryService" });
        await reflection.RequestStream.CompleteAsync();
        var answers = new List<ServerReflectionResponse>();
        while (await reflection.ResponseStream.MoveNext(CancellationToken.None))
        {
            answers.Add(reflection.ResponseStream.Current);
        }

        Assert.Equal((RunStatus.Completed, "Noted: your favourite colour is teal."), (told.Run.Status, told.Run.Answer));
        Assert.Equal(RunStatus.Completed, asked.Run.Status);
        Assert.Equal(["Remember: my favourite colour is teal.", "Noted: your favourite colour is teal."], history.Messages.Where(m => m.Role is Role.User or Role.Assistant && m.Content.Any(c => c.Text.Length > 0) && m.Content.All(c => c.ToolCall is null)).Select(m => m.Content[0].Text));
        Assert.Equal("The user's favourite colour is teal.", recalled.Memories[0].Text);
        Assert.Equal([asked.Run.RunId, told.Run.RunId], runs.Runs.Select(r => r.RunId));
        Assert.Equal([1L, 2L], journal.Entries.Select(e => e.Sequence));
        Assert.NotEmpty(journal.NextPageToken);
        Assert.Contains("namra.v1.MemoryService", answers[0].ListServicesResponse.Service.Select(s => s.Name));
        Assert.NotEmpty(answers[1].FileDescriptorResponse.FileDescriptorProto);
    }

    [Fact]
    public async Task TheAotServer_RefusesBadSettings_NamingTheSection()
    {
        var start = new ProcessStartInfo(builds.Server) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["Namra__Host__GrpcPort"] = LocalPorts.Free().ToString(CultureInfo.InvariantCulture);
        start.Environment["Namra__Host__HttpPort"] = LocalPorts.Free().ToString(CultureInfo.InvariantCulture);
        start.Environment["Namra__Host__ShutdownTimeout"] = "01:00:00";
        using var server = Process.Start(start)!;
        var error = server.StandardError.ReadToEndAsync();
        await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(2, server.ExitCode);
        Assert.Contains("refusing to start: invalid settings in Namra:Host", await error, StringComparison.Ordinal);
        Assert.Contains("ShutdownTimeout", await error, StringComparison.Ordinal);
    }

    private RunningServer StartServer(int grpc, int http, Dictionary<string, string>? settings = null)
    {
        var start = new ProcessStartInfo(builds.Server) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in settings ?? [])
        {
            start.Environment[name] = value;
        }

        start.Environment["Namra__Host__GrpcPort"] = grpc.ToString(CultureInfo.InvariantCulture);
        start.Environment["Namra__Host__HttpPort"] = http.ToString(CultureInfo.InvariantCulture);
        start.Environment["Namra__Orchestrator__TrustInlineAgents"] = "true";
        start.Environment["NAMRA_DATA_DIR"] = _data;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var server = Process.Start(start)!;
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        LocalPorts.WaitUntilListeningAsync(IPAddress.Loopback, grpc).GetAwaiter().GetResult();
        LocalPorts.WaitUntilListeningAsync(IPAddress.Loopback, http).GetAwaiter().GetResult();
        return new RunningServer(server);
    }

    /// <summary>A server process, killed when the test ends.</summary>
    private sealed class RunningServer(Process process) : IDisposable
    {
        public void Dispose()
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
            process.Dispose();
        }
    }

    private static StringContent Body(object body) => new(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");

    private async Task<(int ExitCode, string Output, string Error)> RunCliAsync(params string[] args)
    {
        // From the repository's root, as the README runs the examples (their Python module's path is relative to it).
        var start = new ProcessStartInfo(builds.Cli, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepositoryPaths.Root };
        start.Environment["NAMRA_DATA_DIR"] = _data;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await output, await error);
    }
}
