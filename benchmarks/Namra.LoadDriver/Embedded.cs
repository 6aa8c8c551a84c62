using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Server;

namespace Namra.LoadDriver;

/// <summary>
/// Namra embedded, as <c>namra run</c> hosts it: the five services and their caller in one process, every call
/// through the in-process transport (no socket, no HTTP/2). Sends its own runs and measures itself, like the
/// baseline. Settings come from the environment the driver gives it (the provider, the agents folder).
/// </summary>
internal static class Embedded
{
    public static async Task<int> RunAsync(int runs, int concurrency, CancellationToken cancellationToken)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Production });
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["services"] = "all" });
        var app = NamraComposition.BuildInProcess(builder);
        await app.StartAsync(cancellationToken);
        try
        {
            var idleRss = Process.GetCurrentProcess().WorkingSet64;
            var client = new AgentService.AgentServiceClient(app.Services.GetRequiredService<NamraServiceChannels>().For("orchestrator"));
            var request = new ExecuteRequest { Agent = new AgentSource { Reference = "load_agent@1.0.0" }, Input = "What is (17 + 25) * 2?" };
            return await SelfMeasured.RunAsync(async ct => Driver.EnsureCompleted((await client.ExecuteAsync(request, cancellationToken: ct)).Run), idleRss, runs, concurrency, cancellationToken);
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
            await ((IAsyncDisposable)app).DisposeAsync();
        }
    }
}
