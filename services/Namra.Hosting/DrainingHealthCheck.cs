using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Namra.Hosting;

/// <summary>Whether the process has begun shutting down; set by <see cref="DrainDelayService"/> and by ApplicationStopping.</summary>
public sealed class DrainState
{
    private readonly TaskCompletionSource _draining = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when draining begins.</summary>
    public Task Draining => _draining.Task;

    /// <summary>True once draining has begun.</summary>
    public bool IsDraining => _draining.Task.IsCompleted;

    internal void Begin() => _draining.TrySetResult();
}

/// <summary>
/// Reports unhealthy from the moment the process is asked to stop, so gRPC health (and so load balancers
/// and Kubernetes readiness) stops sending new calls while in-flight ones drain.
/// </summary>
internal sealed class DrainingHealthCheck(DrainState drain, IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(drain.IsDraining || lifetime.ApplicationStopping.IsCancellationRequested
            ? HealthCheckResult.Unhealthy("Shutting down: draining in-flight calls.")
            : HealthCheckResult.Healthy());
}
