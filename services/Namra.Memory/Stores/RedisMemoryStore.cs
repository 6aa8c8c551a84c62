using System.Runtime.InteropServices;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Namra.Contracts;
using Namra.Contracts.V1;
using StackExchange.Redis;

namespace Namra.Memory.Stores;

/// <summary>
/// <c>redis</c>: each session is a hash (its facts), a hash of message ids (for de-duplication) and a list of
/// messages, changed together by one Lua script, so concurrent appends never interleave and a retried one is
/// recognised. Time-to-live is Redis's own expiry on the three keys. An acknowledged append is as durable as
/// the server's <c>appendfsync</c> makes it (<c>always</c> loses nothing). Commands fail fast while the server is
/// unreachable instead of queueing, so a caller hears <c>UNAVAILABLE</c> rather than a late write. The default
/// tenant's keys start <c>namra:</c>, another tenant's <c>namra:t:TENANT:</c>; the set of runs in progress, which the
/// recovery scan reads, is shared, its members naming the tenant.
/// </summary>
internal sealed class RedisMemoryStore(string configuration, TimeSpan timeout, TimeProvider timeProvider) : IMemoryStore, IAsyncDisposable
{
    private const string RunningKey = "namra:runs:running";

    private const string AppendScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then
          redis.call('DEL', KEYS[2], KEYS[3])
          redis.call('HSET', KEYS[1], 'agent', ARGV[2], 'created', ARGV[3])
        end
        local appended = 0
        for i = 6, #ARGV, 2 do
          if redis.call('HSETNX', KEYS[2], ARGV[i], '1') == 1 then
            redis.call('RPUSH', KEYS[3], ARGV[i + 1])
            appended = appended + 1
          end
        end
        local max = tonumber(ARGV[4])
        if max > 0 then redis.call('LTRIM', KEYS[3], -max, -1) end
        redis.call('HSET', KEYS[1], 'updated', ARGV[3])
        redis.call('ZADD', KEYS[4], 0, ARGV[1])
        local ttl = tonumber(ARGV[5])
        for k = 1, 3 do
          if ttl > 0 then redis.call('PEXPIRE', KEYS[k], ttl) else redis.call('PERSIST', KEYS[k]) end
        end
        return {appended, redis.call('LLEN', KEYS[3])}
        """;

    private const string HistoryScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return false end
        local n = tonumber(ARGV[1])
        local first = 0
        if n > 0 then first = -n end
        return {redis.call('LLEN', KEYS[2]), redis.call('LRANGE', KEYS[2], first, -1)}
        """;

    private const string DeleteScript = """
        local existed = redis.call('EXISTS', KEYS[1])
        redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
        redis.call('ZREM', KEYS[4], ARGV[1])
        return existed
        """;

    // A record, its journal (a list) and the set of running runs change together; ARGV[4] says whether it is running.
    private const string CreateRunScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('HSET', KEYS[1], 'body', ARGV[1], 'version', 1)
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
        if ARGV[4] == '1' then redis.call('ZADD', KEYS[4], ARGV[2], ARGV[5]) end
        for i = 6, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
        return 1
        """;

    private const string ReplaceRunScript = """
        if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
        redis.call('HSET', KEYS[1], 'body', ARGV[2], 'version', tonumber(ARGV[1]) + 1)
        if ARGV[3] == '1' then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5]) else redis.call('ZREM', KEYS[3], ARGV[5]) end
        for i = 6, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
        return 1
        """;

    private ConnectionMultiplexer? _redis;

    public MemoryType Type => MemoryType.Redis;

    public TimeSpan Timeout => timeout;

    private IDatabase Database => (_redis ?? throw new InvalidOperationException("The Redis store is not initialized.")).GetDatabase();

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false;
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ConnectTimeout = (int)timeout.TotalMilliseconds;
        options.AsyncTimeout = (int)timeout.TotalMilliseconds;
        options.SyncTimeout = (int)timeout.TotalMilliseconds;
        options.ClientName = "namra-memory";
        _redis = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
    }

    public async Task<AppendOutcome> AppendAsync(string tenant, string sessionId, string agentName, IReadOnlyList<Message> messages, Retention retention, CancellationToken cancellationToken)
    {
        var arguments = new List<RedisValue>(5 + (messages.Count * 2))
        {
            sessionId, agentName, timeProvider.GetUtcNow().ToUnixTimeMilliseconds(), retention.MaxMessages,
            retention.Ttl is { } ttl ? Math.Max(1, (long)ttl.TotalMilliseconds) : 0,
        };
        foreach (var message in messages)
        {
            arguments.Add(message.Id);
            arguments.Add(message.ToByteArray());
        }

        var result = (RedisResult[])(await Database.ScriptEvaluateAsync(AppendScript, SessionKeys(tenant, sessionId, SessionsKey(tenant)), [.. arguments]).ConfigureAwait(false))!;
        var appended = (int)result[0];
        return new AppendOutcome(appended, messages.Count - appended, (long)result[1]);
    }

    public async Task<History?> GetHistoryAsync(string tenant, string sessionId, int newest, CancellationToken cancellationToken)
    {
        var keys = SessionKeys(tenant, sessionId);
        var result = await Database.ScriptEvaluateAsync(HistoryScript, [keys[0], keys[2]], [newest]).ConfigureAwait(false);
        if (result.IsNull)
        {
            return null;
        }

        var parts = (RedisResult[])result!;
        var items = (RedisResult[])parts[1]!;
        return new History([.. items.Select(item => Message.Parser.ParseFrom((byte[])item!))], (long)parts[0]);
    }

    public async Task<IReadOnlyList<Session>> ListSessionsAsync(string tenant, string agentName, int limit, string afterId, CancellationToken cancellationToken)
    {
        var sessions = new List<Session>();
        var sessionsKey = SessionsKey(tenant);
        var from = afterId;
        while (sessions.Count < limit)
        {
            var ids = await Database.SortedSetRangeByValueAsync(sessionsKey, from.Length > 0 ? from : default(RedisValue), default, from.Length > 0 ? Exclude.Start : Exclude.None, Order.Ascending, 0, 100)
                .ConfigureAwait(false);
            if (ids.Length == 0)
            {
                break;
            }

            foreach (var id in ids)
            {
                var keys = SessionKeys(tenant, id!);
                var facts = await Database.HashGetAsync(keys[0], ["agent", "created", "updated"]).ConfigureAwait(false);
                if (facts[0].IsNull)
                {
                    await Database.SortedSetRemoveAsync(sessionsKey, id).ConfigureAwait(false); // expired
                    continue;
                }

                if (agentName.Length > 0 && facts[0] != agentName)
                {
                    continue;
                }

                sessions.Add(new Session
                {
                    SessionId = id!,
                    AgentName = facts[0]!,
                    MessageCount = await Database.ListLengthAsync(keys[2]).ConfigureAwait(false),
                    CreateTime = Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds((long)facts[1])),
                    UpdateTime = Timestamp.FromDateTimeOffset(DateTimeOffset.FromUnixTimeMilliseconds((long)facts[2])),
                });
                if (sessions.Count == limit)
                {
                    break;
                }
            }

            from = ids[^1]!;
        }

        return sessions;
    }

    public async Task<bool> DeleteSessionAsync(string tenant, string sessionId, CancellationToken cancellationToken) =>
        (int)await Database.ScriptEvaluateAsync(DeleteScript, SessionKeys(tenant, sessionId, SessionsKey(tenant)), [sessionId]).ConfigureAwait(false) == 1;

    public async Task<bool> CreateRunAsync(Run run, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken) =>
        (int)await Database.ScriptEvaluateAsync(CreateRunScript, [RunKey(run.Tenant, run.RunId), RunsKey(run.Tenant), JournalKey(run.Tenant, run.RunId), RunningKey],
            [run.ToByteArray(), RunPosition.Millis(run), run.RunId, Unfinished(run) ? "1" : "0", Member(run.Tenant, run.RunId), .. journal.Select(e => (RedisValue)e.ToByteArray())]).ConfigureAwait(false) == 1;

    // Steps are numbered from 1 without gaps: step n is the list's item n - 1.
    public async Task<IReadOnlyList<RunJournalEntry>> GetJournalAsync(string tenant, string runId, long after, int limit, CancellationToken cancellationToken) =>
        [.. (await Database.ListRangeAsync(JournalKey(tenant, runId), after, after + limit - 1).ConfigureAwait(false)).Select(item => RunJournalEntry.Parser.ParseFrom((byte[])item!))];

    private static bool Unfinished(Run run) => run.Status is RunStatus.Pending or RunStatus.Running or RunStatus.AwaitingApproval;

    public async Task<VersionedRun?> GetRunAsync(string tenant, string runId, CancellationToken cancellationToken)
    {
        var values = await Database.HashGetAsync(RunKey(tenant, runId), ["body", "version"]).ConfigureAwait(false);
        return values[0].IsNull ? null : new VersionedRun(Run.Parser.ParseFrom((byte[])values[0]!), (long)values[1]);
    }

    public async Task<bool> ReplaceRunAsync(Run run, long expectedVersion, IReadOnlyList<RunJournalEntry> journal, CancellationToken cancellationToken) =>
        (int)await Database.ScriptEvaluateAsync(ReplaceRunScript, [RunKey(run.Tenant, run.RunId), JournalKey(run.Tenant, run.RunId), RunningKey],
            [expectedVersion, run.ToByteArray(), Unfinished(run) ? "1" : "0", RunPosition.Millis(run), Member(run.Tenant, run.RunId), .. journal.Select(e => (RedisValue)e.ToByteArray())]).ConfigureAwait(false) == 1;

    public async Task<IReadOnlyList<VersionedRun>> ListRunsAsync(RunFilter filter, int limit, RunPosition? after, CancellationToken cancellationToken)
    {
        var runs = new List<VersionedRun>();
        var skip = 0L;
        while (runs.Count < limit)
        {
            // Runs still going (or waiting) are also kept in a set of their own, of every tenant: the recovery scan does not
            // walk every run ever made. A tenant's runs are listed from its own set.
            var inProgress = filter.Tenant is null || filter.Status is RunStatus.Running or RunStatus.AwaitingApproval;
            var ids = await Database.SortedSetRangeByScoreAsync(inProgress ? RunningKey : RunsKey(filter.Tenant!), double.NegativeInfinity, after?.CreateMillis ?? double.PositiveInfinity,
                Exclude.None, Order.Descending, skip, 200).ConfigureAwait(false);
            if (ids.Length == 0)
            {
                break;
            }

            skip += ids.Length;
            foreach (var id in ids)
            {
                var (tenant, runId) = inProgress ? Split(id!) : (filter.Tenant!, (string)id!);
                if ((filter.Tenant is null || filter.Tenant == tenant)
                    && await GetRunAsync(tenant, runId, cancellationToken).ConfigureAwait(false) is { } stored
                    && (after is null || after.IsBefore(stored.Run)) && filter.Matches(stored.Run))
                {
                    runs.Add(stored);
                    if (runs.Count == limit)
                    {
                        break;
                    }
                }
            }
        }

        return runs;
    }

    public async Task RememberAsync(string tenant, string space, StoredMemory memory, CancellationToken cancellationToken)
    {
        var value = JsonSerializer.Serialize(new StoredMemoryJson(memory.Text, memory.Metadata, memory.Model, MemoryMarshal.AsBytes(memory.Embedding.AsSpan()).ToArray()), StoredJson.Default.StoredMemoryJson);
        await Database.HashSetAsync(MemoriesKey(tenant, space), memory.Id, value).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<StoredMemory>> MemoriesAsync(string tenant, string space, int limit, CancellationToken cancellationToken)
    {
        var memories = new List<StoredMemory>();
        await foreach (var entry in Database.HashScanAsync(MemoriesKey(tenant, space), pageSize: 1000).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var stored = JsonSerializer.Deserialize((string)entry.Value!, StoredJson.Default.StoredMemoryJson)!;
            memories.Add(new StoredMemory(entry.Name!, stored.Text, stored.Metadata, stored.Model, MemoryMarshal.Cast<byte, float>(stored.Embedding).ToArray()));
            if (memories.Count == limit)
            {
                break;
            }
        }

        return memories;
    }

    public async Task<StoredMemory?> MemoryAsync(string tenant, string space, string id, CancellationToken cancellationToken)
    {
        var value = await Database.HashGetAsync(MemoriesKey(tenant, space), id).ConfigureAwait(false);
        if (value.IsNullOrEmpty)
        {
            return null;
        }

        var stored = JsonSerializer.Deserialize((string)value!, StoredJson.Default.StoredMemoryJson)!;
        return new StoredMemory(id, stored.Text, stored.Metadata, stored.Model, MemoryMarshal.Cast<byte, float>(stored.Embedding).ToArray());
    }

    public Task<bool> ForgetAsync(string tenant, string space, string id, CancellationToken cancellationToken) =>
        Database.HashDeleteAsync(MemoriesKey(tenant, space), id);

    // The audit log needs one writer at a time and SHA-256 between reading the last entry and writing the next: the SQL
    // stores keep it (the memory service refuses it here).
    public bool KeepsAudit => false;

    public Task<IReadOnlyList<AuditEntry>> AppendAuditAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken) =>
        throw new NotSupportedException("The Redis store keeps no audit log.");

    public Task<IReadOnlyList<AuditEntry>> ListAuditAsync(string? tenant, long afterSequence, int limit, CancellationToken cancellationToken) =>
        throw new NotSupportedException("The Redis store keeps no audit log.");

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }
    }

    // The default tenant keeps the keys it had before tenants, so stored data stays where it was.
    private static string Prefix(string tenant) => tenant == Tenants.Default ? "namra:" : $"namra:t:{tenant}:";

    private static RedisKey[] SessionKeys(string tenant, string sessionId, params RedisKey[] more) =>
        [$"{Prefix(tenant)}s:{{{sessionId}}}:meta", $"{Prefix(tenant)}s:{{{sessionId}}}:ids", $"{Prefix(tenant)}s:{{{sessionId}}}:msgs", .. more];

    private static RedisKey SessionsKey(string tenant) => $"{Prefix(tenant)}sessions";

    private static RedisKey RunsKey(string tenant) => $"{Prefix(tenant)}runs";

    private static RedisKey RunKey(string tenant, string runId) => $"{Prefix(tenant)}r:{runId}";

    private static RedisKey JournalKey(string tenant, string runId) => $"{Prefix(tenant)}r:{runId}:journal";

    private static RedisKey MemoriesKey(string tenant, string space) => $"{Prefix(tenant)}m:{space}";

    // A member of the set of runs in progress: the run's id, after its tenant unless that is the default.
    private static string Member(string tenant, string runId) => tenant == Tenants.Default ? runId : Tenants.Scoped(tenant, runId);

    private static (string Tenant, string RunId) Split(string member) =>
        member.IndexOf(Tenants.Separator, StringComparison.Ordinal) is var at and >= 0 ? (member[..at], member[(at + Tenants.Separator.Length)..]) : (Tenants.Default, member);

    internal sealed record StoredMemoryJson(string Text, IReadOnlyDictionary<string, string> Metadata, string Model, byte[] Embedding);
}
