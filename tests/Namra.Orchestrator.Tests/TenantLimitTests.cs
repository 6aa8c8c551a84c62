using System.Net;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing;
using Namra.Testing.Containers;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Tenants held to the limits of the access file: requests per minute on every call and per agent, and runs executing at
/// once, refused with RESOURCE_EXHAUSTED and a RetryInfo (429 and Retry-After over REST); one server counting in process,
/// and two replicas counting together in Redis.
/// </summary>
public sealed class TenantLimitTests : IAsyncLifetime
{
    private const string Acme = "nk_acme_0301";
    private const string Globex = "nk_globex_0302";
    private const string Initech = "nk_initech_0303";
    private const string Umbrella = "nk_umbrella_0304";

    private readonly string _file = Path.Combine(Path.GetTempPath(), $"namra-access-{Guid.NewGuid():N}.json");
    private FakeProviderServer _anthropic = null!;

    public async ValueTask InitializeAsync()
    {
        _anthropic = await FakeProviderServer.StartAsync();
        _anthropic.DefaultReply = AnthropicWire.TextTurn(10, 2, "Done.");
        await File.WriteAllTextAsync(_file, $$"""
            {
              "tenants": {
                "acme": { "requests_per_minute": 3 },
                "initech": { "agents": { "slow_agent": { "requests_per_minute": 1 } } },
                "umbrella": { "concurrent_runs": 1 },
                "*": { "requests_per_minute": 1000 }
              },
              "keys": [
                { "id": "acme", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Acme)}}", "tenant": "acme", "roles": ["runner"] },
                { "id": "globex", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Globex)}}", "tenant": "globex", "roles": ["runner"] },
                { "id": "initech", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Initech)}}", "tenant": "initech", "roles": ["runner"] },
                { "id": "umbrella", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Umbrella)}}", "tenant": "umbrella", "roles": ["runner"] } ]
            }
            """);
    }

    public async ValueTask DisposeAsync()
    {
        await _anthropic.DisposeAsync();
        File.Delete(_file);
    }

    [Fact]
    public async Task ATenantPastItsRequestsPerMinute_IsRefusedWithWhenToRetry_OverGrpcAndRest_AndOthersAreNot()
    {
        await using var host = await StartAsync();
        var client = new AgentService.AgentServiceClient(host.Channel);

        for (var i = 0; i < 3; i++)
        {
            await client.ListRunsAsync(new ListRunsRequest(), Key(Acme));
        }

        var refused = await Assert.ThrowsAsync<RpcException>(() => client.ListRunsAsync(new ListRunsRequest(), Key(Acme)).ResponseAsync);
        using var rest = new HttpRequestMessage(HttpMethod.Get, "/v1/runs") { Headers = { { "x-api-key", Acme } } };
        using var restRefused = await host.Http.SendAsync(rest);
        var other = await client.ListRunsAsync(new ListRunsRequest(), Key(Globex));

        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("tenant 'acme' made its 3 requests of this minute", refused.Status.Detail, StringComparison.Ordinal);
        var info = Assert.Single(RpcDetails.Of<Google.Rpc.ErrorInfo>(refused));
        Assert.Equal(("RATE_LIMITED", "acme", "3"), (info.Reason, info.Metadata["tenant"], info.Metadata["limit"]));
        var retry = Assert.Single(RpcDetails.Of<Google.Rpc.RetryInfo>(refused)).RetryDelay.ToTimeSpan();
        Assert.InRange(retry, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60));
        Assert.Equal((HttpStatusCode)429, restRefused.StatusCode);
        Assert.InRange(int.Parse(restRefused.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        Assert.Empty(other.Runs);
    }

    [Fact]
    public async Task AnAgentPastItsRunsPerMinute_IsRefused_WhileTheTenantsOtherAgentsRun()
    {
        await using var host = await StartAsync();
        var client = new AgentService.AgentServiceClient(host.Channel);

        var first = await client.ExecuteAsync(new ExecuteRequest { Agent = Agent("slow_agent"), Input = "Hi." }, Key(Initech));
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest { Agent = Agent("slow_agent"), Input = "Hi." }, Key(Initech)).ResponseAsync);
        var other = await client.ExecuteAsync(new ExecuteRequest { Agent = Agent("quick_agent"), Input = "Hi." }, Key(Initech));

        Assert.Equal(RunStatus.Completed, first.Run.Status);
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Equal(("RATE_LIMITED", "slow_agent"), (RpcDetails.Of<Google.Rpc.ErrorInfo>(refused)[0].Reason, RpcDetails.Of<Google.Rpc.ErrorInfo>(refused)[0].Metadata["agent"]));
        Assert.Equal(RunStatus.Completed, other.Run.Status);
    }

    [Fact]
    public async Task ATenantAtItsConcurrentRuns_IsRefusedUntilOneEnds()
    {
        await using var host = await StartAsync();
        var client = new AgentService.AgentServiceClient(host.Channel);
        await HeldRunRefusesAnotherAsync(client, client);
    }

    [Fact]
    public async Task TwoReplicasSharingRedis_CountOneLimit()
    {
        await using var redis = await LocalContainers.StartRedisAsync();
        await using var first = await StartAsync(redis.ConnectionString);
        await using var second = await StartAsync(redis.ConnectionString);
        var one = new AgentService.AgentServiceClient(first.Channel);
        var two = new AgentService.AgentServiceClient(second.Channel);

        // Three calls of acme's minute, spread over both replicas; the fourth is refused wherever it lands.
        await one.ListRunsAsync(new ListRunsRequest(), Key(Acme));
        await two.ListRunsAsync(new ListRunsRequest(), Key(Acme));
        await one.ListRunsAsync(new ListRunsRequest(), Key(Acme));
        var refused = await Assert.ThrowsAsync<RpcException>(() => two.ListRunsAsync(new ListRunsRequest(), Key(Acme)).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);

        // Umbrella's one run executing on the first replica holds the second's door shut.
        await HeldRunRefusesAnotherAsync(one, two);
    }

    // A run held by the provider takes umbrella's only slot: another (here or on another replica) is refused until it ends.
    private async Task HeldRunRefusesAnotherAsync(AgentService.AgentServiceClient holder, AgentService.AgentServiceClient other)
    {
        var before = _anthropic.Requests.Count;
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Thinking")], HoldAfter: 2));
        var held = holder.ExecuteAsync(new ExecuteRequest { Agent = Agent("held_agent"), Input = "Think.", RunId = $"held-{Guid.NewGuid():N}" }, Key(Umbrella));
        await _anthropic.WaitForRequestsAsync(before + 1, TimeSpan.FromSeconds(30));

        var refused = await Assert.ThrowsAsync<RpcException>(() => other.ExecuteAsync(new ExecuteRequest { Agent = Agent("held_agent"), Input = "Me too." }, Key(Umbrella)).ResponseAsync);
        var elsewhere = await other.ExecuteAsync(new ExecuteRequest { Agent = Agent("held_agent"), Input = "Hi." }, Key(Globex));
        var runs = await holder.ListRunsAsync(new ListRunsRequest { Status = RunStatus.Running }, Key(Umbrella));
        await holder.CancelRunAsync(new CancelRunRequest { RunId = Assert.Single(runs.Runs).RunId }, Key(Umbrella));
        var cancelled = (await held.ResponseAsync.WaitAsync(TimeSpan.FromSeconds(30))).Run;
        var after = await other.ExecuteAsync(new ExecuteRequest { Agent = Agent("held_agent"), Input = "Now?" }, Key(Umbrella));

        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Equal("TOO_MANY_RUNS", RpcDetails.Of<Google.Rpc.ErrorInfo>(refused)[0].Reason);
        Assert.Contains("'umbrella' has its 1 run(s) executing", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Completed, elsewhere.Run.Status);
        Assert.Equal(RunStatus.Cancelled, cancelled.Status);
        Assert.Equal(RunStatus.Completed, after.Run.Status);
    }

    private Task<NamraTestHost> StartAsync(string? redis = null) => KeyedServers.StartAsync(_file, _anthropic, redis);

    private static AgentSource Agent(string name) => KeyedServers.Agent(name);

    private static Metadata Key(string key) => KeyedServers.Bearer(key);
}
