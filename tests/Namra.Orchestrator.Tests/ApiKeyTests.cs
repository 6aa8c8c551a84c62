using System.Net;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>With API keys configured, the public API (gRPC and REST) answers only calls that carry one.</summary>
public sealed class ApiKeyTests : IAsyncLifetime
{
    private const string Key = "nk_live_0123456789abcdef";
    private readonly string _keys = Path.GetTempFileName();
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        await File.WriteAllTextAsync(_keys, $"# keys of the public API\n{Key}\nnk_other_key\n");
        _host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Orchestrator:ApiKeysFile"] = _keys });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        File.Delete(_keys);
    }

    [Fact]
    public async Task Grpc_WithoutAKeyOrWithAWrongOne_IsUnauthenticated_AndWithOneIsServed()
    {
        var client = new AgentService.AgentServiceClient(_host.Channel);
        var request = new ListRunsRequest();

        var missing = await Assert.ThrowsAsync<RpcException>(() => client.ListRunsAsync(request).ResponseAsync);
        var wrong = await Assert.ThrowsAsync<RpcException>(() => client.ListRunsAsync(request, new Metadata { { "authorization", "Bearer nk_guess" } }).ResponseAsync);
        var served = await client.ListRunsAsync(request, new Metadata { { "authorization", $"Bearer {Key}" } });

        Assert.Equal(StatusCode.Unauthenticated, missing.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        Assert.DoesNotContain(Key, wrong.Status.Detail, StringComparison.Ordinal);
        Assert.NotNull(served);
    }

    [Fact]
    public async Task Rest_IsGuardedToo()
    {
        using var missing = await _host.Http.GetAsync("/v1/runs");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/runs") { Headers = { { "x-api-key", Key } } };
        using var served = await _host.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task InternalServices_AreNotBehindThePublicKeys()
    {
        var agents = await new ConfigService.ConfigServiceClient(_host.Channel).ListAgentsAsync(new ListAgentsRequest());

        Assert.NotNull(agents);
    }
}
