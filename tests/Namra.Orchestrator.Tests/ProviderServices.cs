using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Every service in one host against a local Anthropic provider, or the gateway a process of its own beside the
/// others (<c>split</c> in <see cref="StartAsync"/>), with extra settings for the host.
/// </summary>
internal sealed class ProviderServices : IAsyncDisposable
{
    private readonly NamraTestHost _host;
    private readonly ServerProcess? _gateway;

    private ProviderServices(NamraTestHost host, ServerProcess? gateway)
    {
        _host = host;
        _gateway = gateway;
        Client = new AgentService.AgentServiceClient(host.Channel);
    }

    public AgentService.AgentServiceClient Client { get; }

    /// <summary>The orchestrator's REST API and metrics.</summary>
    public HttpClient Http => _host.Http;

    public static async Task<ProviderServices> StartAsync(FakeProviderServer anthropic, bool split, IDictionary<string, string?>? settings = null)
    {
        var environment = new Dictionary<string, string> { ["ANTHROPIC_API_KEY"] = "sk-ant-test", ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString() };
        var hostSettings = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>());
        if (!split)
        {
            return new ProviderServices(await NamraTestHost.StartAsync("all", hostSettings, builder => ProviderEnvironment.Use(builder, environment)), null);
        }

        var gateway = ServerProcess.Start("llm-gateway", out var address, environment);
        hostSettings["Namra:Services:LlmGateway"] = address;
        return new ProviderServices(await NamraTestHost.StartAsync("config,tool-executor,memory,orchestrator", hostSettings), gateway);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        _gateway?.Dispose();
    }
}

/// <summary>Streams of runs, read whole.</summary>
internal static class RunStreams
{
    /// <summary>Every event of the run <paramref name="request"/> starts, in order, to its end.</summary>
    public static async Task<List<RunEvent>> EventsAsync(this AgentService.AgentServiceClient client, ExecuteStreamRequest request)
    {
        var events = new List<RunEvent>();
        using var call = client.ExecuteStream(request);
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            events.Add(item.Event);
        }

        return events;
    }
}
