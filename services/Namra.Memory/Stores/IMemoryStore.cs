using Namra.Contracts.V1;

namespace Namra.Memory.Stores;

/// <summary>
/// Where sessions, run records and memories are kept. Implementations make an acknowledged write durable as far
/// as their medium allows, de-duplicate messages by id within a session, and keep concurrent appends to one
/// session whole and ordered. Every record belongs to a tenant: a session, run or namespace is named by its tenant
/// and its id together, so the same id in two tenants names two records, and nothing of one tenant is read, listed
/// or changed through another (a run carries its tenant in <see cref="Run.Tenant"/>, set by the service). They throw only for bugs and for an unreachable backend (which the service
/// turns into <c>UNAVAILABLE</c>).
/// </summary>
internal interface IMemoryStore
{
    /// <summary>The store's kind.</summary>
    MemoryType Type { get; }

    /// <summary>Longest one call may take, end to end (<c>Namra:Memory:StoreTimeout</c>); none for a store in this process.</summary>
    TimeSpan Timeout => System.Threading.Timeout.InfiniteTimeSpan;

    /// <summary>Connects and creates or upgrades the schema; called once before the first request.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>Appends the messages whose ids the session does not have yet, in order, then applies the retention.</summary>
    Task<AppendOutcome> AppendAsync(string tenant, string sessionId, string agentName, IReadOnlyList<Message> messages, Retention retention, CancellationToken cancellationToken);

    /// <summary>The newest <paramref name="newest"/> messages of a live session, oldest first, and its total; null when there is none.</summary>
    Task<History?> GetHistoryAsync(string tenant, string sessionId, int newest, CancellationToken cancellationToken);

    /// <summary>Live sessions ordered by id, after <paramref name="afterId"/>.</summary>
    Task<IReadOnlyList<Session>> ListSessionsAsync(string tenant, string agentName, int limit, string afterId, CancellationToken cancellationToken);

    /// <summary>Deletes a session and its messages; false when there was none.</summary>
    Task<bool> DeleteSessionAsync(string tenant, string sessionId, CancellationToken cancellationToken);

    /// <summary>
    /// Stores a new run record at version 1 with the first steps of its journal, in one write (copies: the caller may
    /// change its objects afterwards); false when one with its id exists.
    /// </summary>
    Task<bool> CreateRunAsync(Run run, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken);

    /// <summary>A run record and its version, as an object of the caller's own to change; null when there is none.</summary>
    Task<VersionedRun?> GetRunAsync(string tenant, string runId, CancellationToken cancellationToken);

    /// <summary>
    /// What replacing a run record needs of the stored one (its version, creation time and journal length); null when
    /// there is none. A store that keeps these beside the record answers without reading the record.
    /// </summary>
    async Task<RunHead?> GetRunHeadAsync(string tenant, string runId, CancellationToken cancellationToken) =>
        await GetRunAsync(tenant, runId, cancellationToken).ConfigureAwait(false) is { } stored ? RunHead.Of(stored) : null;

    /// <summary>
    /// Replaces a run record if it is still at <paramref name="expectedVersion"/>, appending <paramref name="journal"/>
    /// to its journal in the same write; false (and nothing written) otherwise.
    /// </summary>
    Task<bool> ReplaceRunAsync(Run run, long expectedVersion, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken);

    /// <summary>
    /// At most <paramref name="limit"/> steps of a run's journal after step <paramref name="after"/> (0 for the first),
    /// oldest first; empty when there are none.
    /// </summary>
    Task<IReadOnlyList<RunJournalEntry>> GetJournalAsync(string tenant, string runId, long after, int limit, CancellationToken cancellationToken);

    /// <summary>Run records matching the filter, newest first, after the given position.</summary>
    Task<IReadOnlyList<VersionedRun>> ListRunsAsync(RunFilter filter, int limit, RunPosition? after, CancellationToken cancellationToken);

    /// <summary>Stores or replaces a memory.</summary>
    Task RememberAsync(string tenant, string space, StoredMemory memory, CancellationToken cancellationToken);

    /// <summary>The memories of a namespace (at most <paramref name="limit"/>), for exact similarity search.</summary>
    Task<IReadOnlyList<StoredMemory>> MemoriesAsync(string tenant, string space, int limit, CancellationToken cancellationToken);

    /// <summary>One memory of the namespace by its id; null when there is none.</summary>
    Task<StoredMemory?> MemoryAsync(string tenant, string space, string id, CancellationToken cancellationToken);

    /// <summary>Deletes one memory of the namespace; false when there was none.</summary>
    Task<bool> ForgetAsync(string tenant, string space, string id, CancellationToken cancellationToken);

    /// <summary>Whether the store keeps the audit log (<see cref="AppendAuditAsync"/>).</summary>
    bool KeepsAudit => true;

    /// <summary>
    /// Appends audit entries after the last one, each numbered and chained to the one before (<see cref="Contracts.AuditChain"/>),
    /// in one write, one writer at a time (across processes too); an entry whose id the log holds is skipped. Returns those stored.
    /// </summary>
    Task<IReadOnlyList<AuditEntry>> AppendAuditAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken);

    /// <summary>Audit entries after <paramref name="afterSequence"/> in order, of one tenant or (null) of all.</summary>
    Task<IReadOnlyList<AuditEntry>> ListAuditAsync(string? tenant, long afterSequence, int limit, CancellationToken cancellationToken);
}

/// <summary>Retention of a session: most messages kept (0 = all), and how long it lives after its last append (null = forever).</summary>
internal readonly record struct Retention(int MaxMessages, TimeSpan? Ttl);

/// <summary>What an append did.</summary>
internal readonly record struct AppendOutcome(int Appended, int Duplicates, long MessageCount);

/// <summary>A window of a session's messages, oldest first, and how many it holds in all.</summary>
internal sealed record History(IReadOnlyList<Message> Messages, long Total);

/// <summary>A run record with the version its etag names.</summary>
internal sealed record VersionedRun(Run Run, long Version);

/// <summary>Of a stored run record, what a replacement keeps or checks: its version, creation time and journal length.</summary>
internal sealed record RunHead(long Version, Google.Protobuf.WellKnownTypes.Timestamp? CreateTime, long JournalLength)
{
    public static RunHead Of(VersionedRun stored) => new(stored.Version, stored.Run.CreateTime, stored.Run.JournalLength);
}

/// <summary>Which run records to list: those of <paramref name="Tenant"/>, or of every tenant when it is null (the recovery scan).</summary>
internal sealed record RunFilter(string? Tenant, string AgentName, string SessionId, RunStatus Status)
{
    public bool Matches(Run run) => Matches(run.Tenant, run.Agent?.Name ?? "", run.SessionId, run.Status);

    public bool Matches(string tenant, string agentName, string sessionId, RunStatus status) =>
        (Tenant is null || Namra.Contracts.Tenants.OrDefault(tenant) == Tenant)
        && (AgentName.Length == 0 || agentName == AgentName)
        && (SessionId.Length == 0 || sessionId == SessionId)
        && (Status == RunStatus.Unspecified || status == Status);
}

/// <summary>A place in the newest-first order of run records: creation time, then id.</summary>
internal sealed record RunPosition(long CreateMillis, string RunId)
{
    public static long Millis(Run run) => run.CreateTime?.ToDateTimeOffset().ToUnixTimeMilliseconds() ?? 0;

    /// <summary>True when <paramref name="run"/> comes after this position, newest first.</summary>
    public bool IsBefore(Run run) => IsBefore(Millis(run), run.RunId);

    /// <summary>True when the run created at <paramref name="millis"/> with id <paramref name="runId"/> comes after this position.</summary>
    public bool IsBefore(long millis, string runId) =>
        millis < CreateMillis || (millis == CreateMillis && string.CompareOrdinal(runId, RunId) < 0);
}

/// <summary>A remembered text with its embedding.</summary>
internal sealed record StoredMemory(string Id, string Text, IReadOnlyDictionary<string, string> Metadata, string Model, float[] Embedding);
