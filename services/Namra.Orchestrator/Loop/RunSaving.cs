using Grpc.Core;
using Microsoft.Extensions.Logging;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Writes how a run ended: its new messages to the session (idempotent by message id), then its record with the
/// journal's last step. While the memory service is down the replica keeps the run and tries again, so the stored
/// state catches up with what the caller was told as soon as the store is back.
/// </summary>
internal static class RunSaving
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(250);
    // Short enough that the replica holding the run writes its end before another replica's scan finds the lease lapsed,
    // once the store is back (the scan runs every RecoveryInterval, 5 s by default).
    private static readonly TimeSpan LongestRetry = TimeSpan.FromSeconds(1);

    /// <summary>One attempt within <see cref="OrchestratorOptions.SaveTimeout"/>; false when the store did not take it.</summary>
    public static async Task<bool> TrySaveAsync(RunContext run, Downstream downstream, OrchestratorOptions options, MemoryType store, TimeProvider timeProvider, ILogger logger)
    {
        using var save = new CancellationTokenSource(options.SaveTimeout, timeProvider);
        var deadline = timeProvider.GetUtcNow().UtcDateTime + options.SaveTimeout;
        var state = run.State;
        try
        {
            if (run.Request.SessionId.Length > 0 && state.NewMessages.Count > 0 && !run.MessagesSaved)
            {
                await AppendAsync(run, downstream, store, deadline, save.Token).ConfigureAwait(false);
            }

            run.Journal.AddEnd(state.Run.Status);
            await run.Journal.WriteAsync(deadline, save.Token).ConfigureAwait(false);
            return true;
        }
        catch (LeaseLostException)
        {
            return true; // another replica has the run: it writes the end
        }
        catch (DownstreamException exception) when (exception.StatusCode is StatusCode.InvalidArgument or StatusCode.NotFound or StatusCode.FailedPrecondition
            or StatusCode.PermissionDenied or StatusCode.Unimplemented)
        {
            // Refused for good (the record is gone, or the write is wrong): trying again would not help.
            Log.SaveFailed(logger, exception, run.Request.RunId);
            return true;
        }
        catch (Exception exception) when (exception is RpcException or NamraException or OperationCanceledException)
        {
            Log.SaveFailed(logger, exception, run.Request.RunId);
            return false;
        }
    }

    /// <summary>Tries again, backing off, until the store takes the run's end or another replica takes the run.</summary>
    public static async Task KeepSavingAsync(RunContext run, Downstream downstream, OrchestratorOptions options, MemoryType store, TimeProvider timeProvider, ILogger logger)
    {
        try
        {
            for (var wait = FirstRetry; !await TrySaveAsync(run, downstream, options, store, timeProvider, logger).ConfigureAwait(false); wait = Min(wait * 2, LongestRetry))
            {
                await Task.Delay(wait, timeProvider).ConfigureAwait(false);
            }
        }
        finally
        {
            run.Journal.Dispose();
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    // The session's new messages. One the store refuses for good (too large) ends a completed run as failed, saying so,
    // and the record is written without them.
    private static async Task AppendAsync(RunContext run, Downstream downstream, MemoryType store, DateTime deadline, CancellationToken cancellationToken)
    {
        var agent = run.Request.Agent;
        try
        {
            await downstream.Memory.AppendMessagesAsync(new AppendMessagesRequest
            {
                Tenant = run.Request.Tenant,
                SessionId = run.Request.SessionId,
                AgentName = agent.Name,
                Messages = { run.State.NewMessages },
                Store = store,
                Retention = new SessionRetention { Ttl = agent.Memory?.Ttl },
            }, deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException exception) when (exception.StatusCode is StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.OutOfRange or StatusCode.ResourceExhausted)
        {
            run.State.Fail(RunStatus.Failed, exception.StatusCode, $"The conversation could not be saved to the session: the memory service refused it ({exception.Status.Detail}).");
        }

        run.MessagesSaved = true;
    }
}
