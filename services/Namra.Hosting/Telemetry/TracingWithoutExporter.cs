using System.Diagnostics;
using Microsoft.Extensions.Hosting;

namespace Namra.Hosting.Telemetry;

/// <summary>
/// Tracing when no exporter is configured: Namra's spans, incoming requests and outgoing HTTP calls still start
/// activities, so logs, errors and run records carry trace ids and trace context goes on to the services this
/// one calls, with the sampling decision the OpenTelemetry SDK's default sampler would make (a new trace is
/// sampled, a child follows its parent), so services that do export still record the whole trace. What is
/// left out is the SDK's pipeline (instrumentation callbacks, processors, metrics, the log bridge): about a tenth
/// of a distributed run's CPU, for spans nobody would receive.
/// </summary>
internal sealed class TracingWithoutExporter : IHostedService, IDisposable
{
    private readonly ActivityListener _listener = new()
    {
        ShouldListenTo = source => source.Name.StartsWith(NamraHostingExtensions.TelemetryPrefix, StringComparison.Ordinal)
            || source.Name is "Microsoft.AspNetCore" or "System.Net.Http",
        Sample = (ref ActivityCreationOptions<ActivityContext> options) =>
            options.Parent == default || options.Parent.TraceFlags.HasFlag(ActivityTraceFlags.Recorded)
                ? ActivitySamplingResult.AllDataAndRecorded
                : ActivitySamplingResult.PropagationData,
    };

    public Task StartAsync(CancellationToken cancellationToken)
    {
        ActivitySource.AddActivityListener(_listener);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _listener.Dispose();
}
