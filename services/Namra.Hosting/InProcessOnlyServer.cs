using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;

namespace Namra.Hosting;

/// <summary>
/// The web server of a host whose services are called only from its own process (the CLI's embedded mode): it
/// listens nowhere, so starting costs no sockets, no HTTP/2 and no endpoint routing, and nothing is exposed.
/// </summary>
internal sealed class InProcessOnlyServer : IServer
{
    public IFeatureCollection Features { get; } = new FeatureCollection();

    public Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
        where TContext : notnull => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
    }
}
