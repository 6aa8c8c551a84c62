using StackExchange.Redis;

namespace Namra.Orchestrator.Access;

/// <summary>
/// Counts the runs executing per scope (a tenant, or a tenant's agent). A run takes a slot in every scope it counts in,
/// or in none: a refusal names the first scope that is full. Runs waiting for approval hold no slot.
/// </summary>
internal abstract class RunSlots
{
    /// <summary>A scope (a tenant's runs, or its runs of one <paramref name="Agent"/>) and the most it may have executing.</summary>
    public readonly record struct Scope(string Tenant, string? Agent, int Limit)
    {
        public string Name => Agent is null ? Tenant : Contracts.Tenants.Scoped(Tenant, Agent);
    }

    /// <summary>The slot taken, or the scope that refused it.</summary>
    public readonly record struct Taken(IAsyncDisposable? Slot, Scope? Refused);

    /// <summary>No slot: nothing is counted.</summary>
    public static IAsyncDisposable Nothing { get; } = new NoSlot();

    /// <summary>
    /// Takes a slot for the run <paramref name="member"/> in every scope, unless one is full; with <paramref name="force"/>
    /// (a run resumed elsewhere, already admitted once) it is taken whatever the counts.
    /// </summary>
    public abstract Task<Taken> TakeAsync(IReadOnlyList<Scope> scopes, string member, bool force, CancellationToken cancellationToken);

    private sealed class NoSlot : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>Counts in this process.</summary>
    public sealed class InProcess : RunSlots
    {
        private readonly Dictionary<string, HashSet<string>> _running = new(StringComparer.Ordinal);

        public override Task<Taken> TakeAsync(IReadOnlyList<Scope> scopes, string member, bool force, CancellationToken cancellationToken)
        {
            lock (_running)
            {
                foreach (var scope in scopes)
                {
                    if (!force && _running.TryGetValue(scope.Name, out var members) && members.Count >= scope.Limit && !members.Contains(member))
                    {
                        return Task.FromResult(new Taken(null, scope));
                    }
                }

                foreach (var scope in scopes)
                {
                    if (!_running.TryGetValue(scope.Name, out var members))
                    {
                        _running[scope.Name] = members = new HashSet<string>(StringComparer.Ordinal);
                    }

                    members.Add(member);
                }
            }

            return Task.FromResult(new Taken(new Slot(() =>
            {
                lock (_running)
                {
                    foreach (var scope in scopes)
                    {
                        if (_running.TryGetValue(scope.Name, out var members) && members.Remove(member) && members.Count == 0)
                        {
                            _running.Remove(scope.Name);
                        }
                    }
                }

                return Task.CompletedTask;
            }), null));
        }
    }

    /// <summary>
    /// Counts in Redis, shared by every replica: a sorted set per scope whose members are runs, scored by when their slot
    /// lapses (Redis's clock). The replica renews its runs' slots every third of the lease; a replica that dies stops
    /// renewing, and its runs' slots lapse after one lease, as their leases do. (The concurrency limiter of
    /// <c>RedisRateLimiting</c> forgets a permit after a fixed minute, which a run may outlive.)
    /// </summary>
    public sealed class Shared(ConnectionMultiplexer redis, TimeSpan lease) : RunSlots
    {
        // KEYS: a set per scope. ARGV: lease (ms), member, force (1/0), then each scope's limit.
        private const string TakeScript = """
            local time = redis.call('TIME')
            local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
            for i, key in ipairs(KEYS) do redis.call('ZREMRANGEBYSCORE', key, '-inf', now) end
            if ARGV[3] ~= '1' then
              for i, key in ipairs(KEYS) do
                if not redis.call('ZSCORE', key, ARGV[2]) and redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then return i end
              end
            end
            for i, key in ipairs(KEYS) do
              redis.call('ZADD', key, now + tonumber(ARGV[1]), ARGV[2])
              redis.call('PEXPIRE', key, tonumber(ARGV[1]) * 2)
            end
            return 0
            """;

        private const string RenewScript = """
            local time = redis.call('TIME')
            local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
            for i, key in ipairs(KEYS) do
              redis.call('ZADD', key, 'XX', now + tonumber(ARGV[1]), ARGV[2])
              redis.call('PEXPIRE', key, tonumber(ARGV[1]) * 2)
            end
            return 0
            """;

        public override async Task<Taken> TakeAsync(IReadOnlyList<Scope> scopes, string member, bool force, CancellationToken cancellationToken)
        {
            var keys = scopes.Select(scope => (RedisKey)$"namra:limits:runs:{scope.Name}").ToArray();
            var leaseMillis = (long)lease.TotalMilliseconds;
            var refused = (int)await redis.GetDatabase().ScriptEvaluateAsync(TakeScript, keys,
                [leaseMillis, member, force ? "1" : "0", .. scopes.Select(scope => (RedisValue)scope.Limit)]).ConfigureAwait(false);
            if (refused > 0)
            {
                return new Taken(null, scopes[refused - 1]);
            }

            var renewing = new CancellationTokenSource();
            var renewals = RenewAsync(keys, leaseMillis, member, renewing.Token);
            return new Taken(new Slot(async () =>
            {
                await renewing.CancelAsync().ConfigureAwait(false);
                await renewals.ConfigureAwait(false);
                renewing.Dispose();
                try
                {
                    var database = redis.GetDatabase();
                    await Task.WhenAll(keys.Select(key => database.SortedSetRemoveAsync(key, member))).ConfigureAwait(false);
                }
                catch (RedisException)
                {
                    // The slot lapses by itself within a lease.
                }
            }), null);
        }

        private async Task RenewAsync(RedisKey[] keys, long leaseMillis, string member, CancellationToken cancellationToken)
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(lease / 3, cancellationToken).ConfigureAwait(false);
                    await redis.GetDatabase().ScriptEvaluateAsync(RenewScript, keys, [leaseMillis, member]).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (RedisException)
                {
                    // Renewed at the next turn, or lapsed: the run goes on either way.
                }
            }
        }
    }

    private sealed class Slot(Func<Task> release) : IAsyncDisposable
    {
        private int _released;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                await release().ConfigureAwait(false);
            }
        }
    }
}
