using System.Collections.Concurrent;

namespace Namra.Orchestrator.Loop;

/// <summary>The runs this replica is executing, so <c>CancelRun</c> can stop one at once.</summary>
internal sealed class ActiveRuns
{
    private readonly ConcurrentDictionary<string, Registration> _runs = new(StringComparer.Ordinal);

    /// <summary>Registers a run; its token fires when the caller goes or the run is cancelled.</summary>
    public Registration Register(string runId, CancellationToken caller)
    {
        var registration = new Registration(this, runId, caller);
        _runs[runId] = registration;
        return registration;
    }

    /// <summary>Cancels a run executing here; false when it is not.</summary>
    public bool TryCancel(string runId, string reason)
    {
        if (!_runs.TryGetValue(runId, out var registration))
        {
            return false;
        }

        registration.Cancel(reason);
        return true;
    }

    /// <summary>One executing run.</summary>
    public sealed class Registration : IDisposable
    {
        private readonly ActiveRuns _owner;
        private readonly string _runId;
        private readonly CancellationTokenSource _source;

        internal Registration(ActiveRuns owner, string runId, CancellationToken caller)
        {
            _owner = owner;
            _runId = runId;
            _source = CancellationTokenSource.CreateLinkedTokenSource(caller);
        }

        public CancellationToken Token => _source.Token;

        /// <summary>Why it was cancelled, when <c>CancelRun</c> did it.</summary>
        public string? Reason { get; private set; }

        internal void Cancel(string reason)
        {
            Reason = reason;
            _source.Cancel();
        }

        public void Dispose()
        {
            _owner._runs.TryRemove(KeyValuePair.Create(_runId, this));
            _source.Dispose();
        }
    }
}
