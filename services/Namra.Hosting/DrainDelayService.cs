using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Namra.Hosting.Options;

namespace Namra.Hosting;

/// <summary>
/// Holds shutdown for <see cref="NamraHostOptions.DrainDelay"/> before the server stops listening. Hosted
/// services stop in reverse order of registration, and this one is registered after the web server, so it
/// stops first: health already reports NOT_SERVING (<see cref="DrainingHealthCheck"/>) while calls still land.
/// </summary>
internal sealed class DrainDelayService(IOptions<NamraHostOptions> options, TimeProvider timeProvider) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) =>
        options.Value.DrainDelay <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(options.Value.DrainDelay, timeProvider, cancellationToken);
}
