using System.Collections.Concurrent;

namespace Namra.Orchestrator.Loop;

/// <summary>The runs this replica is executing, so <c>CancelRun</c> can stop one at once.</summary>
internal sealed class ActiveRuns
{
    private readonly ConcurrentDictionary<string, Registration> _runs = new(StringComparer.Ordinal);

    /// <summary>Runs executing here.</summary>
    public int Count => _runs.Count;

    /// <summary>Registers a run of a tenant; its token fires when the caller goes or the run is cancelled.</summary>
    public Registration Register(string tenant, string runId, CancellationToken caller)
    {
        var registration = new Registration(this, Key(tenant, runId), caller);
        _runs[Key(tenant, runId)] = registration;
        return registration;
    }

    /// <summary>
    /// Stops every run executing here without ending it (the replica is shutting down): each releases its lease for
    /// another replica to resume it at once.
    /// </summary>
    public int HandOverAll()
    {
        var count = 0;
        foreach (var registration in _runs.Values)
        {
            registration.HandOver();
            count++;
        }

        return count;
    }

    /// <summary>What a run cancelled by <c>CancelRun</c> says, with the reason its caller gave, if any.</summary>
    public static string CancelReason(string given) => given.Length > 0 ? $"Cancelled: {given}" : "Cancelled by CancelRun.";

    /// <summary>Cancels a run executing here, for the reason its caller gave (may be empty); false when it is not.</summary>
    public bool TryCancel(string tenant, string runId, string given)
    {
        if (!_runs.TryGetValue(Key(tenant, runId), out var registration))
        {
            return false;
        }

        registration.Cancel(given);
        return true;
    }

    // Two tenants may use the same run id.
    private static string Key(string tenant, string runId) => Contracts.Tenants.Scoped(tenant, runId);

    /// <summary>One executing run.</summary>
    public sealed class Registration : IDisposable
    {
        private readonly ActiveRuns _owner;
        private readonly string _key;
        private readonly CancellationTokenSource _source;

        internal Registration(ActiveRuns owner, string key, CancellationToken caller)
        {
            _owner = owner;
            _key = key;
            _source = CancellationTokenSource.CreateLinkedTokenSource(caller);
        }

        public CancellationToken Token => _source.Token;

        /// <summary>The reason <c>CancelRun</c>'s caller gave (may be empty); null when it was not cancelled so.</summary>
        public string? GivenReason { get; private set; }

        /// <summary>Whether it was stopped to go on on another replica.</summary>
        public bool HandedOver { get; private set; }

        internal void Cancel(string given)
        {
            GivenReason = given;
            _source.Cancel();
        }

        internal void HandOver()
        {
            HandedOver = true;
            try
            {
                _source.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // it has just ended
            }
        }

        public void Dispose()
        {
            _owner._runs.TryRemove(KeyValuePair.Create(_key, this));
            _source.Dispose();
        }
    }
}
