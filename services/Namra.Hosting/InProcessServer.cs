using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Namra.Hosting;

/// <summary>
/// Serves this process's own calls in memory: the services a process hosts together call each other through
/// <see cref="CreateHandler"/>, which runs the same request pipeline (routing, interceptors, gRPC) as a call over
/// the network, without sockets or HTTP/2 framing. Kestrel keeps serving everyone else on the configured ports.
/// </summary>
public sealed class InProcessServer : IDisposable
{
    private readonly TestServer _server;

    /// <summary>Creates the in-memory server over the host's services.</summary>
    public InProcessServer(IServiceProvider services) =>
        _server = new TestServer(services, Microsoft.Extensions.Options.Options.Create(new TestServerOptions { PreserveExecutionContext = false, AllowSynchronousIO = false }));

    /// <summary>A handler that sends requests straight into this process's pipeline.</summary>
    public HttpMessageHandler CreateHandler() => _server.CreateHandler();

    internal Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
        where TContext : notnull => ((IServer)_server).StartAsync(application, cancellationToken);

    internal Task StopAsync(CancellationToken cancellationToken) => ((IServer)_server).StopAsync(cancellationToken);

    /// <inheritdoc/>
    public void Dispose() => _server.Dispose();
}

/// <summary>Kestrel for the network, and the in-process server for this process's own calls, over one application.</summary>
internal sealed class NetworkAndInProcessServer(IServer network, InProcessServer inProcess) : IServer
{
    public IFeatureCollection Features => network.Features;

    public async Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
        where TContext : notnull
    {
        await inProcess.StartAsync(application, cancellationToken).ConfigureAwait(false);
        await network.StartAsync(application, cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await network.StopAsync(cancellationToken).ConfigureAwait(false);
        await inProcess.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => network.Dispose();

    /// <summary>Wraps the registered server (Kestrel) so both serve the application.</summary>
    public static void Register(IServiceCollection services)
    {
        var network = services.Last(d => d.ServiceType == typeof(IServer));
        services.Remove(network);
        services.AddSingleton<InProcessServer>();
        services.AddSingleton<IServer>(provider => new NetworkAndInProcessServer(
            network.ImplementationInstance as IServer
                ?? network.ImplementationFactory?.Invoke(provider) as IServer
                ?? (IServer)ActivatorUtilities.CreateInstance(provider, network.ImplementationType!),
            provider.GetRequiredService<InProcessServer>()));
    }
}
