using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Namra.Hosting.Options;

namespace Namra.Hosting;

/// <summary>
/// Holds shutdown for <see cref="NamraHostOptions.DrainDelay"/> before anything stops: the host runs every
/// <see cref="IHostedLifecycleService.StoppingAsync"/> before any service's <c>StopAsync</c>, the web server's
/// included. Health already reports NOT_SERVING (<see cref="DrainingHealthCheck"/>) while calls still land.
/// </summary>
internal sealed class DrainDelayService(IOptions<NamraHostOptions> options, DrainState drain, TimeProvider timeProvider) : IHostedLifecycleService
{
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        drain.Begin();
        return options.Value.DrainDelay <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(options.Value.DrainDelay, timeProvider, cancellationToken);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
