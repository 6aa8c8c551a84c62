using System.Net;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Keys of two tenants on one server: each sees, cancels and decides only its own runs, and another tenant's run is
/// not found (over gRPC and REST), even when both chose the same run id and session id.
/// </summary>
public sealed class TenantIsolationTests : IAsyncLifetime
{
    private const string Acme = "nk_acme_0201";
    private const string Globex = "nk_globex_0202";
    private const string Guarded = """
        name: guarded_calc
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - tool_calls: [ { name: calculator, arguments: { expression: "1 + 1" } } ]
            - text: "2."
        tools:
          - { name: calculator, type: builtin.calculator, approval: always }
        """;

    private readonly string _file = Path.Combine(Path.GetTempPath(), $"namra-access-{Guid.NewGuid():N}.json");
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        await File.WriteAllTextAsync(_file, $$"""
            { "keys": [
              { "id": "acme-ops", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Acme)}}", "tenant": "acme", "roles": ["runner", "approver"] },
              { "id": "globex-ops", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Globex)}}", "tenant": "globex", "roles": ["runner", "approver"] } ] }
            """);
        _host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Orchestrator:ApiKeysFile"] = _file });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        File.Delete(_file);
    }

    [Fact]
    public async Task AnotherTenantsRun_IsNotFound_ForEveryMethod_AndItsIdsAreFreeToReuse()
    {
        var client = new AgentService.AgentServiceClient(_host.Channel);
        var acme = new Metadata { { "authorization", $"Bearer {Acme}" } };
        var globex = new Metadata { { "authorization", $"Bearer {Globex}" } };
        var waiting = (await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Guarded), Input = "Add.", RunId = "order-1", SessionId = "chat" }, acme)).Run;

        var read = await Refused(() => client.GetRunAsync(new GetRunRequest { RunId = "order-1" }, globex).ResponseAsync);
        var cancel = await Refused(() => client.CancelRunAsync(new CancelRunRequest { RunId = "order-1" }, globex).ResponseAsync);
        var approve = await Refused(() => client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "order-1" }, globex).ResponseAsync);
        var deny = await Refused(() => client.DenyToolCallsAsync(new DenyToolCallsRequest { RunId = "order-1" }, globex).ResponseAsync);
        var listed = await client.ListRunsAsync(new ListRunsRequest { View = RunView.Full }, globex);
        using var rest = new HttpRequestMessage(HttpMethod.Get, "/v1/runs/order-1") { Headers = { { "x-api-key", Globex } } };
        using var restRead = await _host.Http.SendAsync(rest);
        var stillWaiting = await client.GetRunAsync(new GetRunRequest { RunId = "order-1" }, acme);
        // The same run id and session, chosen by the other tenant: another run, with another conversation.
        var globexOwn = (await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Guarded), Input = "Add, please.", RunId = "order-1", SessionId = "chat" }, globex)).Run;
        await client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "order-1" }, acme);
        var acmeEnded = await Eventually.HoldsAsync(() => client.GetRunAsync(new GetRunRequest { RunId = "order-1" }, acme).ResponseAsync, r => r.Run.Status == RunStatus.Completed);
        var globexRun = await client.GetRunAsync(new GetRunRequest { RunId = "order-1" }, globex);
        var memory = new MemoryService.MemoryServiceClient(_host.Channel);
        var acmeChat = await memory.GetHistoryAsync(new GetHistoryRequest { Tenant = "acme", SessionId = "chat" });
        var globexChat = await memory.GetHistoryAsync(new GetHistoryRequest { Tenant = "globex", SessionId = "chat" });

        Assert.Equal((RunStatus.AwaitingApproval, "acme"), (waiting.Status, waiting.Tenant));
        Assert.All(new[] { read, cancel, approve, deny }, failure => Assert.Equal(StatusCode.NotFound, failure.StatusCode));
        Assert.Empty(listed.Runs);
        Assert.Equal(HttpStatusCode.NotFound, restRead.StatusCode);
        Assert.Equal((RunStatus.AwaitingApproval, false), (stillWaiting.Run.Status, stillWaiting.Run.CancelRequested));
        Assert.Equal((RunStatus.AwaitingApproval, "globex", "Add, please."), (globexOwn.Status, globexOwn.Tenant, globexOwn.Input));
        Assert.Equal(("2.", RunStatus.AwaitingApproval), (acmeEnded.Run.Answer, globexRun.Run.Status));
        Assert.Equal("Add.", acmeChat.Messages[0].Content[0].Text);
        Assert.Empty(globexChat.Messages);
        var metrics = new Namra.Testing.Telemetry.PrometheusScrape(await _host.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative)));
        Assert.Equal(1, metrics.Value("namra_runs_total", ("tenant", "acme"), ("agent", "guarded_calc"), ("status", "completed")));
        Assert.True(metrics.Values("namra_run_tokens_total", ("tenant", "acme")).Sum() > 0);
    }

    private static async Task<RpcException> Refused(Func<Task> call) => await Assert.ThrowsAsync<RpcException>(call);
}
