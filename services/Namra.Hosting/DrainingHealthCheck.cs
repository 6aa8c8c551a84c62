using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Namra.Hosting;

/// <summary>
/// Reports unhealthy from the moment the process is asked to stop, so gRPC health (and so load balancers
/// and Kubernetes readiness) stops sending new calls while in-flight ones drain.
/// </summary>
internal sealed class DrainingHealthCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(lifetime.ApplicationStopping.IsCancellationRequested
            ? HealthCheckResult.Unhealthy("Shutting down: draining in-flight calls.")
            : HealthCheckResult.Healthy());
}
