using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// When the replica stops (SIGTERM: a rolling update, a node drained), its runs get the shutdown timeout to end here;
/// those still running shortly before it ends are handed over: each writes what it has done with a lease that has
/// lapsed, and another replica resumes it at once, instead of the run ending as cancelled or waiting out its lease.
/// The clock starts when stopping does, before the server drains its calls (a run a caller waits for holds the drain).
/// Only where replicas resume runs (<see cref="Options.OrchestratorOptions.RecoverRuns"/>).
/// </summary>
internal sealed partial class RunHandOver(
    ActiveRuns active,
    IHostApplicationLifetime lifetime,
    IOptions<HostOptions> host,
    IOptions<Options.OrchestratorOptions> options,
    TimeProvider timeProvider,
    ILogger<RunHandOver> logger) : IHostedService, IDisposable
{
    // What the hand-over itself is left: the runs' last writes.
    private static readonly TimeSpan Margin = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);
    private readonly CancellationTokenSource _stopped = new();
    private CancellationTokenRegistration _stopping;
    private long _stoppingAt;
    private Task _handOver = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.RecoverRuns)
        {
            // Nothing here resumes runs (the embedded CLI): a run stopped with the process ends as cancelled, truly.
            return Task.CompletedTask;
        }

        _stopping = lifetime.ApplicationStopping.Register(() =>
        {
            _stoppingAt = timeProvider.GetTimestamp();
            _handOver = HandOverWhenDueAsync();
        });
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.RecoverRuns)
        {
            return;
        }

        // Runs no caller waits for (resumed here) do not hold the server's drain: they are waited for here.
        while (active.Count > 0 && !Due && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(Poll, timeProvider, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await _stopped.CancelAsync().ConfigureAwait(false);
        await _handOver.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await HandOverAsync().ConfigureAwait(false);
        await _stopping.DisposeAsync().ConfigureAwait(false);
    }

    public void Dispose() => _stopped.Dispose();

    private bool Due => timeProvider.GetElapsedTime(_stoppingAt) >= host.Value.ShutdownTimeout - Margin;

    private async Task HandOverWhenDueAsync()
    {
        var wait = host.Value.ShutdownTimeout - Margin;
        await Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, timeProvider, _stopped.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!_stopped.IsCancellationRequested)
        {
            await HandOverAsync().ConfigureAwait(false);
        }
    }

    private async Task HandOverAsync()
    {
        if (active.HandOverAll() is var count and > 0)
        {
            HandingOver(logger, count);
            OrchestratorTelemetry.HandedOver.Add(count);
            var released = timeProvider.GetTimestamp();
            while (active.Count > 0 && timeProvider.GetElapsedTime(released) < Margin)
            {
                await Task.Delay(Poll, timeProvider, CancellationToken.None).ConfigureAwait(false); // the releases are given their time
            }
        }
    }

    [LoggerMessage(EventId = 6013, Level = LogLevel.Warning, Message = "Stopping: {Count} runs still running are handed over to other replicas")]
    private static partial void HandingOver(ILogger logger, int count);
}
