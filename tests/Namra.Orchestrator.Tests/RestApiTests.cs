using Namra.Testing.Telemetry;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>The public API over REST (gRPC JSON transcoding on the HTTP port), as a client in any language calls it.</summary>
public sealed class RestApiTests : IAsyncLifetime
{
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync() => _host = await NamraTestHost.StartAsync("all");

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Execute_ThenStatus_OverRest()
    {
        var agent = await File.ReadAllTextAsync(RepositoryPaths.Combine("examples", "agents", "calculator.yaml"));
        var body = new JsonObject
        {
            ["agent"] = new JsonObject { ["inline"] = new JsonObject { ["content"] = agent, ["format"] = "AGENT_FORMAT_YAML" } },
            ["input"] = "What is (17 + 25) * 2?",
            ["labels"] = new JsonObject { ["client"] = "curl" },
        };

        using var executed = await _host.Http.PostAsJsonAsync("/v1/agents/execute", body);
        var run = (await executed.Content.ReadFromJsonAsync<JsonObject>())!["run"]!;
        using var status = await _host.Http.GetAsync($"/v1/agents/{run["runId"]}/status");
        var record = (await status.Content.ReadFromJsonAsync<JsonObject>())!["run"]!;

        Assert.Equal(HttpStatusCode.OK, executed.StatusCode);
        Assert.Equal("RUN_STATUS_COMPLETED", run["status"]!.GetValue<string>());
        Assert.Equal("(17 + 25) * 2 = 84.", run["answer"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        Assert.Equal("calculator_agent", record["agent"]!["name"]!.GetValue<string>());
        Assert.Equal("curl", record["labels"]!["client"]!.GetValue<string>());
        var scrape = new PrometheusScrape(await _host.Http.GetStringAsync("/metrics"));
        Assert.True(scrape.Value("namra_runs_total", ("agent", "calculator_agent"), ("status", "completed")) >= 1);
        Assert.True(scrape.Values("namra_run_tokens_total", ("agent", "calculator_agent"), ("kind", "input")).Sum() >= 1);
    }

    [Fact]
    public async Task Validate_OverRest_ReportsDiagnostics()
    {
        var body = new JsonObject
        {
            ["agent"] = new JsonObject { ["content"] = "name: x\nversion: 1.0.0\nllm: { provider: scripted, model: s, max_tokns: 3 }\n", ["format"] = "AGENT_FORMAT_YAML" },
        };

        using var response = await _host.Http.PostAsJsonAsync("/v1/agents/validate", body);
        var result = (await response.Content.ReadFromJsonAsync<JsonObject>())!;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(result["valid"]!.GetValue<bool>());
        Assert.Contains(result["diagnostics"]!.AsArray(), d => d!["message"]!.GetValue<string>().Contains("max_tokns", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheOpenApiDocument_DescribesTheRestApi()
    {
        var document = JsonDocument.Parse(await _host.Http.GetStringAsync("/openapi/v1.json")).RootElement;

        Assert.StartsWith("3.", document.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var paths = document.GetProperty("paths");
        Assert.True(paths.GetProperty("/v1/agents/execute").TryGetProperty("post", out var execute));
        Assert.True(paths.GetProperty("/v1/agents/{runId}/status").TryGetProperty("get", out _));
        Assert.True(paths.GetProperty("/v1/agents/validate").TryGetProperty("post", out _));
        Assert.Contains("Runs an agent to the end", execute.GetProperty("summary").GetString() ?? execute.GetProperty("description").GetString(), StringComparison.Ordinal);

        // What a client generator needs: an id per operation, the key schemes, and JSON types rather than C# members.
        var operations = paths.EnumerateObject().SelectMany(path => path.Value.EnumerateObject()).Select(op => op.Value.GetProperty("operationId").GetString()).ToList();
        Assert.Equal(["ApproveToolCalls", "CancelRun", "DenyToolCalls", "Execute", "ExecuteStream", "GetRun", "GetUsage", "ListAudit", "ListRuns", "ValidateAgent"], operations.Order(StringComparer.Ordinal));
        var schemes = document.GetProperty("components").GetProperty("securitySchemes");
        Assert.Equal(("http", "bearer"), (schemes.GetProperty("bearer").GetProperty("type").GetString(), schemes.GetProperty("bearer").GetProperty("scheme").GetString()));
        Assert.Equal("x-api-key", schemes.GetProperty("apiKey").GetProperty("name").GetString());
        var text = document.GetRawText();
        Assert.DoesNotContain("kindOneofCase", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("hasNullValue", text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task AnUnknownRun_Is404_WithTheGrpcStatusAsJson()
    {
        using var response = await _host.Http.GetAsync("/v1/agents/no-such-run/status");
        var error = await response.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(5, error.GetProperty("code").GetInt32());
        Assert.Contains("no-such-run", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMisspeltField_Is400_NamingIt_NotSilentlyDropped()
    {
        using var response = await _host.Http.PostAsJsonAsync("/v1/agents/execute",
            new JsonObject { ["agent"] = new JsonObject { ["reference"] = "helper@1.0.0" }, ["input"] = "Hi", ["sesionId"] = "s-1" });
        var error = await response.Content.ReadFromJsonAsync<JsonElement>();
        using var proper = await _host.Http.PostAsJsonAsync("/v1/agents/validate",
            new JsonObject { ["agent"] = new JsonObject { ["content"] = "name: 1\n", ["file_name"] = "a.yaml" } }); // proto names are fields too

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(3, error.GetProperty("code").GetInt32());
        Assert.Equal("sesionId", error.GetProperty("details")[0].GetProperty("fieldViolations")[0].GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.OK, proper.StatusCode);
    }

    [Fact]
    public async Task ABodyThatIsNotTheRequestsJson_Is400_SayingWhy()
    {
        using var content = new StringContent("{\"input\": \"hi\", \"agent\": {\"reference\": 5}}", System.Text.Encoding.UTF8, "application/json");
        using var response = await _host.Http.PostAsync("/v1/agents/execute", content);
        var error = await response.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("namra.v1.ExecuteRequest", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("body", error.GetProperty("details")[0].GetProperty("fieldViolations")[0].GetProperty("field").GetString());
    }

    [Fact]
    public async Task ABadRequest_Is400_WithFieldViolations()
    {
        using var response = await _host.Http.PostAsJsonAsync("/v1/agents/execute", new JsonObject { ["input"] = "Hi" });
        var error = await response.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var detail = error.GetProperty("details")[0];
        Assert.Equal("type.googleapis.com/google.rpc.BadRequest", detail.GetProperty("@type").GetString());
        Assert.Equal("agent", detail.GetProperty("fieldViolations")[0].GetProperty("field").GetString());
    }
}
