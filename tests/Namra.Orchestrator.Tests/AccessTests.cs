using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Access;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Keys with tenants, roles, agent patterns and expiry (an access file of hashed keys, read again when it changes):
/// each public method needs its permission, over gRPC and REST alike, and a refusal names it.
/// </summary>
public sealed class AccessTests : IAsyncLifetime
{
    private const string Viewer = "nk_viewer_0001";
    private const string Runner = "nk_runner_0002";
    private const string Approver = "nk_approver_0003";
    private const string Expired = "nk_expired_0004";
    private const string Inline = "nk_inline_0005";
    private const string Auditor = "nk_auditor_0007";
    private const string InlineOnly = "nk_inline_only_0008";
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"namra-access-{Guid.NewGuid():N}.json");
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        await WriteAsync(Key("viewer", Viewer, "[\"viewer\"]"), Key("runner", Runner, "[\"runner\"]", "\"agents\": [\"calc*\"],"), Key("approver", Approver, "[\"approver\"]"),
            Key("expired", Expired, "[\"admin\"]", "\"expires\": \"2020-01-01T00:00:00Z\","), Key("inline", Inline, "[\"runner\", \"inline\"]"),
            Key("auditor", Auditor, "[\"auditor\"]"), Key("inline-only", InlineOnly, "[\"inline\"]"));
        _host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Orchestrator:ApiKeysFile"] = _file });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        File.Delete(_file);
    }

    public static TheoryData<string, string, bool> Grants => new()
    {
        // key, method, allowed
        { Viewer, "ListRuns", true },
        { Viewer, "ValidateAgent", true },
        { Viewer, "Execute", false },
        { Viewer, "CancelRun", false },
        { Viewer, "ApproveToolCalls", false },
        { Runner, "Execute", true },
        { Runner, "CancelRun", true },
        { Runner, "ApproveToolCalls", false },
        { Approver, "ApproveToolCalls", true },
        { Approver, "Execute", false },
        { Approver, "ListRuns", true },
        { Viewer, "GetUsage", true },
        { Approver, "GetUsage", true },
        { Viewer, "ListAudit", false },
        { Runner, "ListAudit", false },
    };

    [Theory]
    [MemberData(nameof(Grants))]
    public async Task EachMethod_NeedsItsPermission_AndARefusalNamesIt(string key, string method, bool allowed)
    {
        var client = new AgentService.AgentServiceClient(_host.Channel);
        var headers = new Metadata { { "authorization", $"Bearer {key}" } };

        Func<Task> call = method switch
        {
            "ListRuns" => () => client.ListRunsAsync(new ListRunsRequest(), headers).ResponseAsync,
            "ValidateAgent" => () => client.ValidateAgentAsync(new ValidateAgentRequest { Agent = InlineAgents.Yaml(Calculator).Inline }, headers).ResponseAsync,
            "Execute" => () => client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Calculator), Input = "1+1" }, headers).ResponseAsync,
            "CancelRun" => () => client.CancelRunAsync(new CancelRunRequest { RunId = "no-such-run" }, headers).ResponseAsync,
            "GetUsage" => () => client.GetUsageAsync(new GetUsageRequest(), headers).ResponseAsync,
            "ListAudit" => () => client.ListAuditAsync(new ListAuditRequest(), headers).ResponseAsync,
            _ => () => client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "no-such-run" }, headers).ResponseAsync,
        };
        var failure = await Record(call);

        if (allowed)
        {
            Assert.True(failure is null or { StatusCode: not StatusCode.PermissionDenied and not StatusCode.Unauthenticated }, failure?.Status.Detail);
        }
        else
        {
            Assert.Equal(StatusCode.PermissionDenied, failure?.StatusCode);
            var info = Assert.Single(RpcDetails.Of<Google.Rpc.ErrorInfo>(failure!));
            Assert.Equal(("PERMISSION_MISSING", Namra.Orchestrator.Access.Principal.Name(Namra.Orchestrator.Access.AccessInterceptor.Needed("/namra.v1.AgentService/" + method))),
                (info.Reason, info.Metadata["permission"]));
            Assert.Contains("lacks the permission", failure!.Status.Detail, StringComparison.Ordinal);
        }
    }

    public static TheoryData<string, string, string> EveryMethod => new()
    {
        // method, a key with its permission, a key without it
        { "ValidateAgent", Viewer, Approver },
        { "Execute", Runner, Viewer },
        { "ExecuteStream", Runner, Approver },
        { "GetRun", Viewer, InlineOnly },
        { "ListRuns", Approver, InlineOnly },
        { "CancelRun", Runner, Viewer },
        { "ApproveToolCalls", Approver, Runner },
        { "DenyToolCalls", Approver, Viewer },
        { "GetUsage", Viewer, InlineOnly },
        { "ListAudit", Auditor, Runner },
    };

    [Theory]
    [MemberData(nameof(EveryMethod))]
    public async Task EveryPublicMethod_IsServedWithItsPermission_AndRefusedWithoutIt_OverGrpcAndRest(string method, string allowed, string refused)
    {
        var client = new AgentService.AgentServiceClient(_host.Channel);
        var agent = InlineAgents.Yaml(Calculator);
        Func<Metadata, Task> grpc = method switch
        {
            "ValidateAgent" => headers => client.ValidateAgentAsync(new ValidateAgentRequest { Agent = agent.Inline }, headers).ResponseAsync,
            "Execute" => headers => client.ExecuteAsync(new ExecuteRequest { Agent = agent, Input = "1+1" }, headers).ResponseAsync,
            "ExecuteStream" => async headers =>
            {
                using var stream = client.ExecuteStream(new ExecuteStreamRequest { Agent = agent, Input = "1+1" }, headers);
                await foreach (var _ in stream.ResponseStream.ReadAllAsync())
                {
                }
            },
            "GetRun" => headers => client.GetRunAsync(new GetRunRequest { RunId = "no-such-run" }, headers).ResponseAsync,
            "ListRuns" => headers => client.ListRunsAsync(new ListRunsRequest(), headers).ResponseAsync,
            "CancelRun" => headers => client.CancelRunAsync(new CancelRunRequest { RunId = "no-such-run" }, headers).ResponseAsync,
            "ApproveToolCalls" => headers => client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = "no-such-run" }, headers).ResponseAsync,
            "DenyToolCalls" => headers => client.DenyToolCallsAsync(new DenyToolCallsRequest { RunId = "no-such-run" }, headers).ResponseAsync,
            "GetUsage" => headers => client.GetUsageAsync(new GetUsageRequest(), headers).ResponseAsync,
            _ => headers => client.ListAuditAsync(new ListAuditRequest(), headers).ResponseAsync,
        };
        var inline = new JsonObject { ["content"] = Calculator, ["format"] = "AGENT_FORMAT_YAML" };
        HttpRequestMessage Rest(string key)
        {
            var request = method switch
            {
                "ValidateAgent" => new HttpRequestMessage(HttpMethod.Post, "/v1/agents/validate") { Content = JsonContent.Create(new JsonObject { ["agent"] = inline.DeepClone() }) },
                "Execute" => new HttpRequestMessage(HttpMethod.Post, "/v1/agents/execute") { Content = JsonContent.Create(new JsonObject { ["agent"] = new JsonObject { ["inline"] = inline.DeepClone() }, ["input"] = "1+1" }) },
                "ExecuteStream" => new HttpRequestMessage(HttpMethod.Post, "/v1/agents/execute:stream") { Content = JsonContent.Create(new JsonObject { ["agent"] = new JsonObject { ["inline"] = inline.DeepClone() }, ["input"] = "1+1" }) },
                "GetRun" => new HttpRequestMessage(HttpMethod.Get, "/v1/agents/no-such-run/status"),
                "ListRuns" => new HttpRequestMessage(HttpMethod.Get, "/v1/runs"),
                "CancelRun" => new HttpRequestMessage(HttpMethod.Post, "/v1/agents/no-such-run/cancel") { Content = JsonContent.Create(new JsonObject()) },
                "ApproveToolCalls" => new HttpRequestMessage(HttpMethod.Post, "/v1/runs/no-such-run/approvals") { Content = JsonContent.Create(new JsonObject()) },
                "DenyToolCalls" => new HttpRequestMessage(HttpMethod.Post, "/v1/runs/no-such-run/denials") { Content = JsonContent.Create(new JsonObject()) },
                "GetUsage" => new HttpRequestMessage(HttpMethod.Get, "/v1/usage"),
                _ => new HttpRequestMessage(HttpMethod.Get, "/v1/audit"),
            };
            request.Headers.Add("x-api-key", key);
            return request;
        }

        var served = await Record(() => grpc(new Metadata { { "authorization", $"Bearer {allowed}" } }));
        var denied = await Record(() => grpc(new Metadata { { "authorization", $"Bearer {refused}" } }));
        using var restServedRequest = Rest(allowed);
        using var restServed = await _host.Http.SendAsync(restServedRequest);
        using var restDeniedRequest = Rest(refused);
        using var restDenied = await _host.Http.SendAsync(restDeniedRequest);

        Assert.True(served is null or { StatusCode: not (StatusCode.PermissionDenied or StatusCode.Unauthenticated) }, served?.Status.Detail);
        Assert.Equal(StatusCode.PermissionDenied, denied?.StatusCode);
        Assert.Equal(Principal.Name(AccessInterceptor.Needed("/namra.v1.AgentService/" + method)), RpcDetails.Of<Google.Rpc.ErrorInfo>(denied!)[0].Metadata["permission"]);
        Assert.True(restServed.StatusCode is not (HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized), $"{method} over REST: {restServed.StatusCode}");
        Assert.Equal(HttpStatusCode.Forbidden, restDenied.StatusCode);
    }

    [Fact]
    public async Task Rest_RefusesAsGrpcDoes_403ForAMissingPermission()
    {
        var body = new JsonObject { ["agent"] = new JsonObject { ["inline"] = new JsonObject { ["content"] = Calculator, ["format"] = "AGENT_FORMAT_YAML" } }, ["input"] = "1+1" };
        using var refused = new HttpRequestMessage(HttpMethod.Post, "/v1/agents/execute") { Content = JsonContent.Create(body), Headers = { { "x-api-key", Viewer } } };
        using var served = new HttpRequestMessage(HttpMethod.Get, "/v1/runs") { Headers = { { "x-api-key", Viewer } } };

        using var forbidden = await _host.Http.SendAsync(refused);
        using var ok = await _host.Http.SendAsync(served);

        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task ManyFirstCallsAtOnce_AreAllAdmitted_WhileTheFileIsRead()
    {
        // A fresh server: the keys file is read by the first call, and every call arriving meanwhile waits for it.
        await using var fresh = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Orchestrator:ApiKeysFile"] = _file });
        var client = new AgentService.AgentServiceClient(fresh.Channel);

        var failures = await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Record(() => client.ListRunsAsync(new ListRunsRequest(), new Metadata { { "x-api-key", Viewer } }).ResponseAsync)));

        Assert.All(failures, failure => Assert.Null(failure));
    }

    [Fact]
    public async Task AKeyLimitedToSomeAgents_MayRunOnlyThose()
    {
        var client = new AgentService.AgentServiceClient(_host.Channel);
        var headers = new Metadata { { "authorization", $"Bearer {Runner}" } };

        var allowed = await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Calculator), Input = "1+1" }, headers);
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(
            new ExecuteRequest { Agent = InlineAgents.Yaml(Calculator.Replace("name: calc_agent", "name: other_agent", StringComparison.Ordinal)), Input = "1+1" }, headers).ResponseAsync);

        Assert.Equal(RunStatus.Completed, allowed.Run.Status);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("may run only the agents calc*; not other_agent", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnExpiredKey_IsUnauthenticated_SayingWhen()
    {
        var failure = await Assert.ThrowsAsync<RpcException>(() => new AgentService.AgentServiceClient(_host.Channel)
            .ListRunsAsync(new ListRunsRequest(), new Metadata { { "authorization", $"Bearer {Expired}" } }).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, failure.StatusCode);
        Assert.Contains("'expired' expired at 2020-01-01", failure.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(Expired, failure.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InlineDefinitions_KeepTheirToolsAuthority_OnlyForAKeyGrantedIt()
    {
        // A shell tool in an inline definition: refused for a runner, run for a runner with the inline role.
        var shell = Calculator + "  - { name: sh, type: builtin.shell, config: { allowed_commands: [echo] } }\n";
        var client = new AgentService.AgentServiceClient(_host.Channel);

        var refused = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(shell), Input = "1+1" },
            new Metadata { { "authorization", $"Bearer {Runner}" } }).ResponseAsync);
        var trusted = await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(shell), Input = "1+1" }, new Metadata { { "authorization", $"Bearer {Inline}" } });

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("builtin.shell", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Completed, trusted.Run.Status);
    }

    [Fact]
    public async Task TheAccessFile_IsReadAgainWhenItChanges_WithoutARestart()
    {
        const string Added = "nk_added_0006";
        var client = new AgentService.AgentServiceClient(_host.Channel);
        var headers = new Metadata { { "authorization", $"Bearer {Added}" } };
        var before = await Assert.ThrowsAsync<RpcException>(() => client.ListRunsAsync(new ListRunsRequest(), headers).ResponseAsync);

        await WriteAsync(Key("viewer", Viewer, "[\"viewer\"]"), Key("added", Added, "[\"viewer\"]"));
        File.SetLastWriteTimeUtc(_file, DateTime.UtcNow.AddSeconds(1));
        RpcException? after = before;
        for (var i = 0; i < 40 && after is not null; i++)
        {
            await Task.Delay(100);
            after = await Record(() => client.ListRunsAsync(new ListRunsRequest(), headers).ResponseAsync);
        }

        Assert.Equal(StatusCode.Unauthenticated, before.StatusCode);
        Assert.Null(after); // served within the file's check interval (2 s)
    }

    private const string Calculator = """
        name: calc_agent
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - text: "2."
        tools:
          - { name: calculator, type: builtin.calculator }

        """;

    private Task WriteAsync(params string[] keys) => File.WriteAllTextAsync(_file, "{ \"keys\": [" + string.Join(",", keys) + "] }");

    private static string Key(string id, string key, string roles, string extra = "") =>
        $"{{ \"id\": \"{id}\", \"sha256\": \"{Namra.Orchestrator.Access.AccessKeys.Hash(key)}\", \"tenant\": \"acme\", {extra} \"roles\": {roles} }}";

    private static async Task<RpcException?> Record(Func<Task> call)
    {
        try
        {
            await call();
            return null;
        }
        catch (RpcException exception)
        {
            return exception;
        }
    }
}

/// <summary>A server without keys answers anonymous callers only where the operator allows them.</summary>
public sealed class AnonymousAccessTests
{
    [Fact]
    public async Task WithoutKeys_AServerThatAdmitsNoAnonymousCallers_RefusesEveryCall_SayingWhatToSet()
    {
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Orchestrator:AllowAnonymous"] = "false" });

        var refused = await Assert.ThrowsAsync<RpcException>(() => new AgentService.AgentServiceClient(host.Channel).ListRunsAsync(new ListRunsRequest()).ResponseAsync);
        using var rest = await host.Http.GetAsync(new Uri("/v1/runs", UriKind.Relative));

        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        Assert.Contains("admits no anonymous callers", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("NAMRA_API_KEYS", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, rest.StatusCode);
    }
}

/// <summary>A keys file that is named but missing admits nobody: a wrong path never opens the API.</summary>
public sealed class MissingAccessFileTests
{
    [Fact]
    public async Task ANamedKeysFileThatIsMissing_RefusesEveryCall()
    {
        await using var host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Orchestrator:ApiKeysFile"] = Path.Combine(Path.GetTempPath(), $"namra-no-such-keys-{Guid.NewGuid():N}.json"),
        });

        var refused = await Assert.ThrowsAsync<RpcException>(() => new AgentService.AgentServiceClient(host.Channel).ListRunsAsync(new ListRunsRequest()).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
    }
}

/// <summary>With keys, a decision on a waiting run records the key that made it, whatever the caller says its name is.</summary>
public sealed class KeyedApprovalTests : IAsyncLifetime
{
    private const string Approver = "nk_approver_0101";
    private const string Runner = "nk_runner_0102";
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"namra-access-{Guid.NewGuid():N}.json");
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        await File.WriteAllTextAsync(_file, $$"""
            { "keys": [
              { "id": "ops-approver", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Approver)}}", "roles": ["approver"] },
              { "id": "ci-runner", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Runner)}}", "roles": ["runner"] } ] }
            """);
        _host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Orchestrator:ApiKeysFile"] = _file });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        File.Delete(_file);
    }

    [Fact]
    public async Task TheDecision_RecordsTheKeyThatMadeIt()
    {
        const string Guarded = """
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
        var client = new AgentService.AgentServiceClient(_host.Channel);
        var waiting = (await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Guarded), Input = "Add." }, new Metadata { { "authorization", $"Bearer {Runner}" } })).Run;

        var refused = await Assert.ThrowsAsync<RpcException>(() => client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = waiting.RunId },
            new Metadata { { "authorization", $"Bearer {Runner}" } }).ResponseAsync);
        var decided = (await client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = waiting.RunId, DecidedBy = "ana" },
            new Metadata { { "authorization", $"Bearer {Approver}" } })).Run;

        Assert.Equal(RunStatus.AwaitingApproval, waiting.Status);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode); // the key that started the run may not approve it
        Assert.Equal("ana (key ops-approver)", decided.Approvals[0].DecidedBy);
    }
}
