using System.Collections.Concurrent;
using System.Collections.Immutable;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Namra.Contracts;
using Namra.Contracts.V1;

namespace Namra.Memory.Stores;

/// <summary>
/// <c>in_memory</c>: everything in this process, lost when it stops. The default for one-off runs. It keeps the
/// newest <paramref name="maxRuns"/> run records: past that, the oldest finished ones are forgotten, so a server
/// left running on the default store does not grow without end. Run records, their journals and conversations are kept
/// as their wire bytes, as a database keeps them: a copy no caller can change, a fraction of the memory of the
/// messages, and nothing in them for the garbage collector to trace (measured at the default limit: peak RSS of an
/// embedded process under load 240 → 172 MB, collection pauses halved; benchmarks/README.md).
/// </summary>
internal sealed class InMemoryStore(TimeProvider timeProvider, int maxRuns) : IMemoryStore
{
    // A run still going is passed over this many times per eviction before eviction gives up until the next create.
    private const int MaxRunsPassedOver = 16;
    private readonly ConcurrentQueue<string> _runsOldestFirst = new();
    private int _runCount; // kept here: ConcurrentDictionary.Count takes every lock of the table
    private readonly ConcurrentDictionary<string, SessionState> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StoredRun> _runs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ImmutableArray<byte[]>> _journals = new(StringComparer.Ordinal);
    private readonly Lock _runWrites = new(); // a record and its journal change together
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, StoredMemory>> _memories = new(StringComparer.Ordinal);
    private readonly List<AuditEntry> _audit = [];
    private readonly HashSet<string> _auditIds = new(StringComparer.Ordinal);

    public MemoryType Type => MemoryType.InMemory;

    public Task InitializeAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<AppendOutcome> AppendAsync(string tenant, string sessionId, string agentName, IReadOnlyList<Message> messages, Retention retention, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        var key = Key(tenant, sessionId);
        while (true)
        {
            var state = _sessions.GetOrAdd(key, _ => new SessionState(agentName, now));
            lock (state)
            {
                if (state.Deleted || state.IsExpired(now))
                {
                    state.Deleted = true;
                    _sessions.TryRemove(KeyValuePair.Create(key, state));
                    continue; // a fresh session takes its place
                }

                var appended = 0;
                foreach (var message in messages)
                {
                    if (state.Ids.Add(message.Id))
                    {
                        state.Messages.Add(message.ToByteArray());
                        appended++;
                    }
                }

                if (retention.MaxMessages > 0 && state.Messages.Count > retention.MaxMessages)
                {
                    state.Messages.RemoveRange(0, state.Messages.Count - retention.MaxMessages);
                }

                state.Updated = now;
                state.ExpireAt = retention.Ttl is { } ttl ? now + ttl : null;
                return Task.FromResult(new AppendOutcome(appended, messages.Count - appended, state.Messages.Count));
            }
        }
    }

    public Task<History?> GetHistoryAsync(string tenant, string sessionId, int newest, CancellationToken cancellationToken)
    {
        if (!_sessions.TryGetValue(Key(tenant, sessionId), out var state))
        {
            return Task.FromResult<History?>(null);
        }

        lock (state)
        {
            if (state.Deleted || state.IsExpired(timeProvider.GetUtcNow()))
            {
                return Task.FromResult<History?>(null);
            }

            var skip = newest > 0 ? Math.Max(0, state.Messages.Count - newest) : 0;
            return Task.FromResult<History?>(new History([.. state.Messages.Skip(skip).Select(Message.Parser.ParseFrom)], state.Messages.Count));
        }
    }

    public Task<IReadOnlyList<Session>> ListSessionsAsync(string tenant, string agentName, int limit, string afterId, CancellationToken cancellationToken)
    {
        var now = timeProvider.GetUtcNow();
        var page = new List<Session>();
        var prefix = Key(tenant, "");
        foreach (var (id, state) in _sessions
            .Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal))
            .Select(p => (Id: p.Key[prefix.Length..], State: p.Value))
            .OrderBy(p => p.Id, StringComparer.Ordinal))
        {
            if (string.CompareOrdinal(id, afterId) <= 0 && afterId.Length > 0)
            {
                continue;
            }

            lock (state)
            {
                if (state.Deleted || state.IsExpired(now) || (agentName.Length > 0 && state.AgentName != agentName))
                {
                    continue;
                }

                page.Add(new Session
                {
                    SessionId = id,
                    AgentName = state.AgentName,
                    MessageCount = state.Messages.Count,
                    CreateTime = Timestamp.FromDateTimeOffset(state.Created),
                    UpdateTime = Timestamp.FromDateTimeOffset(state.Updated),
                });
            }

            if (page.Count == limit)
            {
                break;
            }
        }

        return Task.FromResult<IReadOnlyList<Session>>(page);
    }

    public Task<bool> DeleteSessionAsync(string tenant, string sessionId, CancellationToken cancellationToken)
    {
        if (!_sessions.TryRemove(Key(tenant, sessionId), out var state))
        {
            return Task.FromResult(false);
        }

        lock (state)
        {
            var existed = !state.Deleted && !state.IsExpired(timeProvider.GetUtcNow());
            state.Deleted = true;
            return Task.FromResult(existed);
        }
    }

    public Task<bool> CreateRunAsync(Run run, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken)
    {
        lock (_runWrites)
        {
            if (!_runs.TryAdd(RunKey(run), StoredRun.Of(run, 1)))
            {
                return Task.FromResult(false);
            }

            _journals[RunKey(run)] = [.. journal.Select(e => e.ToByteArray())];
        }

        _runsOldestFirst.Enqueue(RunKey(run));
        if (Interlocked.Increment(ref _runCount) > maxRuns)
        {
            ForgetOldestRuns();
        }

        return Task.FromResult(true);
    }

    // Oldest first; a run that has not finished goes to the back of the queue, so its saves keep working.
    private void ForgetOldestRuns()
    {
        var passedOver = 0;
        while (Volatile.Read(ref _runCount) > maxRuns && passedOver < MaxRunsPassedOver && _runsOldestFirst.TryDequeue(out var key))
        {
            if (_runs.TryGetValue(key, out var stored) && stored.Status is RunStatus.Pending or RunStatus.Running or RunStatus.AwaitingApproval)
            {
                _runsOldestFirst.Enqueue(key);
                passedOver++;
                continue;
            }

            if (_runs.TryRemove(key, out _))
            {
                _journals.TryRemove(key, out _);
                Interlocked.Decrement(ref _runCount);
            }
        }
    }

    public Task<VersionedRun?> GetRunAsync(string tenant, string runId, CancellationToken cancellationToken) =>
        Task.FromResult(_runs.TryGetValue(Key(tenant, runId), out var stored) ? stored.Read() : null);

    // From the fields kept beside the bytes: a journal write does not parse the record it replaces.
    public Task<RunHead?> GetRunHeadAsync(string tenant, string runId, CancellationToken cancellationToken) =>
        Task.FromResult(_runs.TryGetValue(Key(tenant, runId), out var stored) ? new RunHead(stored.Version, stored.CreateTime?.Clone(), stored.JournalLength) : null);

    public Task<bool> ReplaceRunAsync(Run run, long expectedVersion, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken)
    {
        lock (_runWrites)
        {
            var key = RunKey(run);
            if (!_runs.TryGetValue(key, out var stored) || stored.Version != expectedVersion)
            {
                return Task.FromResult(false);
            }

            _runs[key] = StoredRun.Of(run, expectedVersion + 1);
            if (journal.Count > 0)
            {
                _journals[key] = _journals.GetValueOrDefault(key, []).AddRange(journal.Select(e => e.ToByteArray()));
            }

            return Task.FromResult(true);
        }
    }

    // Steps are numbered from 1 without gaps: step n is the list's item n - 1.
    public Task<IReadOnlyList<RunJournalEntry>> GetJournalAsync(string tenant, string runId, long after, int limit, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<RunJournalEntry>>(_journals.TryGetValue(Key(tenant, runId), out var journal) && after < journal.Length
            ? [.. journal.Skip((int)after).Take(limit).Select(RunJournalEntry.Parser.ParseFrom)]
            : []);

    public Task<IReadOnlyList<VersionedRun>> ListRunsAsync(RunFilter filter, int limit, RunPosition? after, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<VersionedRun>>([.. _runs.Values
            .Where(v => filter.Matches(v.Tenant, v.AgentName, v.SessionId, v.Status) && (after is null || after.IsBefore(v.CreateMillis, v.RunId)))
            .OrderByDescending(v => v.CreateMillis).ThenByDescending(v => v.RunId, StringComparer.Ordinal)
            .Take(limit)
            .Select(v => v.Read())]);

    public Task RememberAsync(string tenant, string space, StoredMemory memory, CancellationToken cancellationToken)
    {
        _memories.GetOrAdd(Key(tenant, space), _ => new(StringComparer.Ordinal))[memory.Id] = memory;
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<StoredMemory>> MemoriesAsync(string tenant, string space, int limit, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<StoredMemory>>(_memories.TryGetValue(Key(tenant, space), out var memories) ? [.. memories.Values.Take(limit)] : []);

    public Task<StoredMemory?> MemoryAsync(string tenant, string space, string id, CancellationToken cancellationToken) =>
        Task.FromResult(_memories.TryGetValue(Key(tenant, space), out var memories) ? memories.GetValueOrDefault(id) : null);

    public Task<bool> ForgetAsync(string tenant, string space, string id, CancellationToken cancellationToken) =>
        Task.FromResult(_memories.TryGetValue(Key(tenant, space), out var memories) && memories.TryRemove(id, out _));

    public Task<IReadOnlyList<AuditEntry>> AppendAuditAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken)
    {
        lock (_audit)
        {
            var stored = new List<AuditEntry>(entries.Count);
            foreach (var entry in entries)
            {
                if (!_auditIds.Add(entry.Id))
                {
                    continue;
                }

                var linked = entry.Clone();
                Contracts.AuditChain.Link(linked, _audit.Count > 0 ? _audit[^1] : null);
                _audit.Add(linked);
                stored.Add(linked.Clone());
            }

            return Task.FromResult<IReadOnlyList<AuditEntry>>(stored);
        }
    }

    public Task<IReadOnlyList<AuditEntry>> ListAuditAsync(string? tenant, long afterSequence, int limit, CancellationToken cancellationToken)
    {
        lock (_audit)
        {
            // Numbered from 1 without gaps: the entry after a sequence is at that index.
            return Task.FromResult<IReadOnlyList<AuditEntry>>([.. _audit.Skip((int)Math.Min(afterSequence, _audit.Count))
                .Where(entry => tenant is null || entry.Tenant == tenant).Take(limit).Select(entry => entry.Clone())]);
        }
    }

    private static string Key(string tenant, string id) => Tenants.Scoped(tenant, id);

    private static string RunKey(Run run) => Key(run.Tenant, run.RunId);

    // A run record as kept: its wire bytes, with what lists filter and order by (which never change, but for the status),
    // and what a replacement of it checks or keeps (GetRunHeadAsync).
    private sealed record StoredRun(byte[] Record, long Version, string Tenant, string RunId, string AgentName, string SessionId, RunStatus Status, long CreateMillis,
        Timestamp? CreateTime, long JournalLength)
    {
        public static StoredRun Of(Run run, long version) =>
            new(run.ToByteArray(), version, run.Tenant, run.RunId, run.Agent?.Name ?? "", run.SessionId, run.Status, RunPosition.Millis(run), run.CreateTime?.Clone(), run.JournalLength);

        public VersionedRun Read() => new(Run.Parser.ParseFrom(Record), Version);
    }

    private sealed class SessionState(string agentName, DateTimeOffset created)
    {
        public string AgentName { get; } = agentName;
        public DateTimeOffset Created { get; } = created;
        public DateTimeOffset Updated { get; set; } = created;
        public DateTimeOffset? ExpireAt { get; set; }
        public bool Deleted { get; set; }
        public List<byte[]> Messages { get; } = []; // wire bytes, as run records are kept
        public HashSet<string> Ids { get; } = new(StringComparer.Ordinal);

        public bool IsExpired(DateTimeOffset now) => ExpireAt is { } at && at <= now;
    }
}
