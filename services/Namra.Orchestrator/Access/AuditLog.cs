using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Orchestrator.Loop;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Access;

/// <summary>
/// Records every call to the public API (who, for which tenant, what, on which agent and run, how it ended, what the run
/// cost) and every change to the access file in the audit log, which the memory service keeps hash-chained
/// (<c>AppendAuditEntries</c>). Entries are queued and appended in order, many in one write, off the call's path: a slow or
/// unreachable memory service delays the log, not the API. An append that fails is tried again, with the same entry ids
/// (the service skips what it holds, so a retry whose first answer was lost adds nothing twice), until the service takes
/// it. Entries are lost only when this replica stops before they are written (it tries for a few seconds as it stops), or
/// when the queue is full: both are logged as errors and counted (<c>namra_audit_entries_total{result="lost"}</c>). Each
/// stored entry is also written as a log record (category <c>Namra.Audit</c>), which OpenTelemetry exports with the others
/// when OTLP is configured: a copy outside the store to check it against.
/// </summary>
internal sealed partial class AuditLog : IAsyncDisposable
{
    private const int MaxBatch = 500;
    private const int MaxQueued = 100_000;
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);
    private readonly Downstream _downstream;
    private readonly ILogger _logger;
    private readonly bool _enabled;
    private readonly Channel<AuditEntry> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lazy<Task> _writer;

    public AuditLog(Downstream downstream, ILoggerFactory loggers, IOptions<OrchestratorOptions> options)
    {
        _downstream = downstream;
        _logger = loggers.CreateLogger("Namra.Audit");
        _enabled = options.Value.AuditLog;
        _queue = Channel.CreateBounded<AuditEntry>(new BoundedChannelOptions(MaxQueued) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite },
            dropped =>
            {
                Lost(_logger, 1, "the queue of entries waiting for the memory service is full");
                OrchestratorTelemetry.AuditEntries.Add(1, "lost");
            });
        _writer = new Lazy<Task>(() => Task.Run(WriteAsync));
    }

    /// <summary>The key in <c>ServerCallContext.UserState</c> of what a call did (<see cref="Facts"/>), set by the service.</summary>
    public const string FactsKey = "namra.audit";

    /// <summary>What a call did, for its entry: the agent and run it ran or named, what the run spent, and how it ended.</summary>
    public sealed record Facts(string Agent, string RunId, long Tokens = 0, double CostUsd = 0, string Detail = "")
    {
        public static Facts Of(Run run) => new(run.Agent?.Name ?? "", run.RunId, run.Usage?.Total ?? 0, run.Cost?.TotalUsd ?? 0, $"run {RunLoop.StatusName(run.Status)}");
    }

    /// <summary>Notes what a call did, for its entry.</summary>
    public static void Note(ServerCallContext context, Facts facts) => context.UserState[FactsKey] = facts;

    /// <summary>Queues an entry for the log, giving it its id.</summary>
    public void Record(AuditEntry entry)
    {
        if (!_enabled)
        {
            return;
        }

        entry.Id = Guid.CreateVersion7().ToString("N");
        _ = _writer.Value;
        _queue.Writer.TryWrite(entry);
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_writer.IsValueCreated)
        {
            // What is queued gets a few seconds to be written.
            _stopping.CancelAfter(TimeSpan.FromSeconds(5));
            await _writer.Value.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
    }

    private async Task WriteAsync()
    {
        var batch = new List<AuditEntry>(MaxBatch);
        var delay = TimeSpan.FromMilliseconds(100);
        var failing = false;
        try
        {
            while (batch.Count > 0 || await _queue.Reader.WaitToReadAsync(_stopping.Token).ConfigureAwait(false))
            {
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var next))
                {
                    batch.Add(next);
                }

                try
                {
                    var stored = await _downstream.Memory.AppendAuditEntriesAsync(new AppendAuditEntriesRequest { Entries = { batch } },
                        deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: _stopping.Token).ConfigureAwait(false);
                    foreach (var entry in stored.Entries)
                    {
                        Recorded(_logger, entry.Sequence, entry.Principal, entry.Tenant, entry.Action, entry.Agent, entry.RunId, entry.Outcome, entry.CostUsd, entry.Hash);
                    }

                    OrchestratorTelemetry.AuditEntries.Add(batch.Count, "stored");
                    batch.Clear();
                    (delay, failing) = (TimeSpan.FromMilliseconds(100), false);
                }
                catch (RpcException exception) when (!_stopping.IsCancellationRequested)
                {
                    // Tried again, the same entries first, until the memory service takes them.
                    if (!failing)
                    {
                        Waiting(_logger, batch.Count, exception.Status.Detail);
                        failing = true;
                    }

                    await Task.Delay(delay, _stopping.Token).ConfigureAwait(false);
                    delay = TimeSpan.FromTicks(Math.Min(MaxRetryDelay.Ticks, delay.Ticks * 2));
                }
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or RpcException)
        {
            // Stopping: what is left is lost.
            var left = batch.Count + _queue.Reader.Count;
            if (left > 0)
            {
                Lost(_logger, left, "this replica stopped before the memory service took them");
                OrchestratorTelemetry.AuditEntries.Add(left, "lost");
            }
        }
    }

    [LoggerMessage(EventId = 6040, Level = LogLevel.Information,
        Message = "Audit {Sequence}: {Principal} of {Tenant} {Action} agent={Agent} run={RunId} outcome={Outcome} cost_usd={CostUsd} hash={Hash}")]
    private static partial void Recorded(ILogger logger, long sequence, string principal, string tenant, string action, string agent, string runId, string outcome, double costUsd, string hash);

    [LoggerMessage(EventId = 6041, Level = LogLevel.Error, Message = "{Count} audit entries were lost: {Problem}")]
    private static partial void Lost(ILogger logger, int count, string problem);

    [LoggerMessage(EventId = 6042, Level = LogLevel.Warning, Message = "{Count} audit entries wait for the memory service, and are tried again: {Problem}")]
    private static partial void Waiting(ILogger logger, int count, string problem);
}
