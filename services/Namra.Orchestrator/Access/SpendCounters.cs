using StackExchange.Redis;

namespace Namra.Orchestrator.Access;

/// <summary>
/// What each tenant has spent on model calls per period, and set aside for calls in flight: a reservation is taken in
/// every period at once, or in none, and only while spent plus set aside plus it stays within each period's quota.
/// Dollars are counted in billionths, so that sums are exact. A period's counters are seeded once from the runs' ledgers
/// (see <see cref="TenantQuotas"/>) before they are used. A reservation never settled (its replica was killed during the
/// call, or the counters could not be reached when it ended) lapses at its <see cref="Hold.LapsesAt"/>: it is then
/// counted as spent at its worst case, as a call whose outcome is unknown, and stops holding back the tenant's other
/// calls; a settlement that comes after that corrects what was counted.
/// </summary>
internal abstract class SpendCounters
{
    /// <summary>Tokens and billionths of a US dollar.</summary>
    public readonly record struct Amount(long Tokens, long NanoUsd)
    {
        public static long Nano(double usd) => (long)Math.Ceiling(usd * 1e9);

        public static double Usd(long nano) => nano / 1e9;
    }

    /// <summary>One period of a tenant's quota: its key (<c>day:2026-11-27</c>), when it ends, and its limits (0 for none).</summary>
    public readonly record struct Period(string Name, string Key, DateTimeOffset Start, DateTimeOffset End, long MaxTokens, long MaxNanoUsd);

    /// <summary>Spent, and set aside for calls in flight.</summary>
    public readonly record struct Standing(Amount Spent, Amount Reserved);

    /// <summary>One call's reservation: its id, and when it lapses if it is never settled (after the call's deadline).</summary>
    public readonly record struct Hold(string Id, DateTimeOffset LapsesAt);

    /// <summary>Whether the period's counters were seeded.</summary>
    public abstract Task<bool> IsSeededAsync(string tenant, Period period);

    /// <summary>Adds what the ledgers say was spent, unless the period was seeded already (by another replica).</summary>
    public abstract Task SeedAsync(string tenant, Period period, Amount spent);

    /// <summary>Sets <paramref name="amount"/> aside in every period; returns the index of the first period it would exceed (nothing set aside), or -1.</summary>
    public abstract Task<int> ReserveAsync(string tenant, IReadOnlyList<Period> periods, Amount amount, Hold hold);

    /// <summary>Releases what <paramref name="hold"/> set aside and adds what was spent (if it lapsed, corrects its worst case to what was spent).</summary>
    public abstract Task SettleAsync(string tenant, IReadOnlyList<Period> periods, Amount reserved, Amount spent, Hold hold);

    /// <summary>Where a period stands.</summary>
    public abstract Task<Standing> ReadAsync(string tenant, Period period);

    /// <summary>
    /// Counts in this process. Its reservations do not lapse: they end with the process that would have settled them, and
    /// a restarted process counts from the runs' ledgers.
    /// </summary>
    public sealed class InProcess(TimeProvider timeProvider) : SpendCounters
    {
        private readonly Dictionary<string, Counter> _counters = new(StringComparer.Ordinal);

        public override Task<bool> IsSeededAsync(string tenant, Period period)
        {
            lock (_counters)
            {
                return Task.FromResult(Of(tenant, period).Seeded);
            }
        }

        public override Task SeedAsync(string tenant, Period period, Amount spent)
        {
            lock (_counters)
            {
                var counter = Of(tenant, period);
                if (!counter.Seeded)
                {
                    (counter.Seeded, counter.Tokens, counter.Nano) = (true, counter.Tokens + spent.Tokens, counter.Nano + spent.NanoUsd);
                }
            }

            return Task.CompletedTask;
        }

        public override Task<int> ReserveAsync(string tenant, IReadOnlyList<Period> periods, Amount amount, Hold hold)
        {
            lock (_counters)
            {
                for (var i = 0; i < periods.Count; i++)
                {
                    var counter = Of(tenant, periods[i]);
                    if (Exceeds(periods[i], counter.Tokens + counter.ReservedTokens + amount.Tokens, counter.Nano + counter.ReservedNano + amount.NanoUsd))
                    {
                        return Task.FromResult(i);
                    }
                }

                foreach (var period in periods)
                {
                    var counter = Of(tenant, period);
                    counter.ReservedTokens += amount.Tokens;
                    counter.ReservedNano += amount.NanoUsd;
                }
            }

            return Task.FromResult(-1);
        }

        public override Task SettleAsync(string tenant, IReadOnlyList<Period> periods, Amount reserved, Amount spent, Hold hold)
        {
            lock (_counters)
            {
                foreach (var period in periods)
                {
                    var counter = Of(tenant, period);
                    counter.ReservedTokens -= reserved.Tokens;
                    counter.ReservedNano -= reserved.NanoUsd;
                    counter.Tokens += spent.Tokens;
                    counter.Nano += spent.NanoUsd;
                }
            }

            return Task.CompletedTask;
        }

        public override Task<Standing> ReadAsync(string tenant, Period period)
        {
            lock (_counters)
            {
                var counter = Of(tenant, period);
                return Task.FromResult(new Standing(new Amount(counter.Tokens, counter.Nano), new Amount(counter.ReservedTokens, counter.ReservedNano)));
            }
        }

        // Periods past are forgotten as new ones begin.
        private Counter Of(string tenant, Period period)
        {
            var key = Contracts.Tenants.Scoped(tenant, period.Key);
            if (!_counters.TryGetValue(key, out var counter))
            {
                var now = timeProvider.GetUtcNow();
                foreach (var stale in _counters.Where(pair => pair.Value.End < now).Select(pair => pair.Key).ToList())
                {
                    _counters.Remove(stale);
                }

                _counters[key] = counter = new Counter { End = period.End };
            }

            return counter;
        }

        private sealed class Counter
        {
            public DateTimeOffset End { get; init; }
            public bool Seeded { get; set; }
            public long Tokens { get; set; }
            public long Nano { get; set; }
            public long ReservedTokens { get; set; }
            public long ReservedNano { get; set; }
        }
    }

    /// <summary>
    /// Counts in Redis, shared by every replica: a hash per tenant and period, changed by scripts, and beside it a hash of
    /// the reservations in flight (id: tokens, billionths, when it lapses) and a sorted set of their ids by when they
    /// lapse, so that one a killed replica left behind lapses, found in logarithmic time however many are in flight.
    /// </summary>
    public sealed class Shared(ConnectionMultiplexer redis, TimeProvider timeProvider) : SpendCounters
    {
        // KEYS: the periods' counters, then their reservations, then those by when they lapse. Reservations past their
        // time are counted as spent. Amounts are taken away as 0 - x: Lua's -x of 0 is -0, which HINCRBY refuses as not an
        // integer.
        private const string Lapse = """
            local n = #KEYS / 3
            local function lapse(counters, held, due, now)
              if redis.call('HLEN', held) > redis.call('ZCARD', due) then
                -- Held by a replica of a version that kept no sorted set: indexed once.
                local entries = redis.call('HGETALL', held)
                for j = 1, #entries, 2 do
                  redis.call('ZADD', due, 'NX', string.match(entries[j + 1], '^%d+ %d+ (%d+)$'), entries[j])
                end
              end
              for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now)) do
                local entry = redis.call('HGET', held, id)
                redis.call('ZREM', due, id)
                if entry then
                  local t, c = string.match(entry, '^(%d+) (%d+) %d+$')
                  redis.call('HDEL', held, id)
                  redis.call('HINCRBY', counters, 'rtokens', 0 - tonumber(t))
                  redis.call('HINCRBY', counters, 'rnano', 0 - tonumber(c))
                  redis.call('HINCRBY', counters, 'tokens', t)
                  redis.call('HINCRBY', counters, 'nano', c)
                end
              end
            end
            """;

        // ARGV: tokens, nano, the reservation's id, when it lapses (ms), now (ms), then for each period its max tokens,
        // max nano and expiry (ms).
        private const string ReserveScript = Lapse + "\n" + """
            local now = tonumber(ARGV[5])
            for i = 1, n do lapse(KEYS[i], KEYS[n + i], KEYS[2 * n + i], now) end
            for i = 1, n do
              local h = redis.call('HMGET', KEYS[i], 'tokens', 'nano', 'rtokens', 'rnano')
              local t = tonumber(h[1] or '0') + tonumber(h[3] or '0') + tonumber(ARGV[1])
              local c = tonumber(h[2] or '0') + tonumber(h[4] or '0') + tonumber(ARGV[2])
              local maxT = tonumber(ARGV[3 + 3 * i])
              local maxN = tonumber(ARGV[4 + 3 * i])
              if (maxT > 0 and t > maxT) or (maxN > 0 and c > maxN) then return i end
            end
            for i = 1, n do
              redis.call('HINCRBY', KEYS[i], 'rtokens', ARGV[1])
              redis.call('HINCRBY', KEYS[i], 'rnano', ARGV[2])
              redis.call('HSET', KEYS[n + i], ARGV[3], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[4])
              redis.call('ZADD', KEYS[2 * n + i], ARGV[4], ARGV[3])
              for k = 0, 2 do redis.call('PEXPIREAT', KEYS[k * n + i], ARGV[5 + 3 * i]) end
            end
            return 0
            """;

        // ARGV: reserved tokens, reserved nano, spent tokens, spent nano, the reservation's id. A reservation that lapsed
        // was counted as spent at its worst case: what was spent replaces that.
        private const string SettleScript = """
            local n = #KEYS / 3
            for i = 1, n do
              redis.call('ZREM', KEYS[2 * n + i], ARGV[5])
              if redis.call('HDEL', KEYS[n + i], ARGV[5]) == 1 then
                redis.call('HINCRBY', KEYS[i], 'rtokens', 0 - tonumber(ARGV[1]))
                redis.call('HINCRBY', KEYS[i], 'rnano', 0 - tonumber(ARGV[2]))
                redis.call('HINCRBY', KEYS[i], 'tokens', ARGV[3])
                redis.call('HINCRBY', KEYS[i], 'nano', ARGV[4])
              elseif redis.call('EXISTS', KEYS[i]) == 1 then
                redis.call('HINCRBY', KEYS[i], 'tokens', tonumber(ARGV[3]) - tonumber(ARGV[1]))
                redis.call('HINCRBY', KEYS[i], 'nano', tonumber(ARGV[4]) - tonumber(ARGV[2]))
              end
            end
            return 0
            """;

        // ARGV: now (ms). The period's counters after lapsing what is past its time.
        private const string ReadScript = Lapse + "\n" + """
            lapse(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]))
            return redis.call('HMGET', KEYS[1], 'tokens', 'nano', 'rtokens', 'rnano')
            """;

        private const string SeedScript = """
            if redis.call('HSETNX', KEYS[1], 'seeded', '1') == 1 then
              redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
              redis.call('HINCRBY', KEYS[1], 'nano', ARGV[2])
              redis.call('PEXPIREAT', KEYS[1], ARGV[3])
            end
            return 0
            """;

        public override async Task<bool> IsSeededAsync(string tenant, Period period) =>
            await redis.GetDatabase().HashExistsAsync(Key(tenant, period), "seeded").ConfigureAwait(false);

        public override async Task SeedAsync(string tenant, Period period, Amount spent) =>
            await redis.GetDatabase().ScriptEvaluateAsync(SeedScript, [Key(tenant, period)], [spent.Tokens, spent.NanoUsd, Expiry(period)]).ConfigureAwait(false);

        public override async Task<int> ReserveAsync(string tenant, IReadOnlyList<Period> periods, Amount amount, Hold hold) =>
            (int)await redis.GetDatabase().ScriptEvaluateAsync(ReserveScript, Keys(tenant, periods),
                [amount.Tokens, amount.NanoUsd, hold.Id, hold.LapsesAt.ToUnixTimeMilliseconds(), timeProvider.GetUtcNow().ToUnixTimeMilliseconds(),
                    .. periods.SelectMany(period => new RedisValue[] { period.MaxTokens, period.MaxNanoUsd, Expiry(period) })]).ConfigureAwait(false) - 1;

        public override async Task SettleAsync(string tenant, IReadOnlyList<Period> periods, Amount reserved, Amount spent, Hold hold) =>
            await redis.GetDatabase().ScriptEvaluateAsync(SettleScript, Keys(tenant, periods),
                [reserved.Tokens, reserved.NanoUsd, spent.Tokens, spent.NanoUsd, hold.Id]).ConfigureAwait(false);

        public override async Task<Standing> ReadAsync(string tenant, Period period)
        {
            var values = (RedisValue[])(await redis.GetDatabase().ScriptEvaluateAsync(ReadScript, Keys(tenant, [period]),
                [timeProvider.GetUtcNow().ToUnixTimeMilliseconds()]).ConfigureAwait(false))!;
            long Read(int i) => values[i].IsNull ? 0 : (long)values[i];
            return new Standing(new Amount(Read(0), Read(1)), new Amount(Read(2), Read(3)));
        }

        // The periods' counters, then their reservations, then those by when they lapse.
        private static RedisKey[] Keys(string tenant, IReadOnlyList<Period> periods) =>
            [.. periods.Select(period => Key(tenant, period)), .. periods.Select(period => (RedisKey)$"{Key(tenant, period)}:held"),
                .. periods.Select(period => (RedisKey)$"{Key(tenant, period)}:due")];

        private static RedisKey Key(string tenant, Period period) => $"namra:spend:{tenant}:{period.Key}";

        // Kept a day past the period's end, for late settlements and reads.
        private static long Expiry(Period period) => period.End.AddDays(1).ToUnixTimeMilliseconds();
    }

    /// <summary>Whether spending this much would take the period past its quota.</summary>
    public static bool Exceeds(Period period, long tokens, long nano) =>
        (period.MaxTokens > 0 && tokens > period.MaxTokens) || (period.MaxNanoUsd > 0 && nano > period.MaxNanoUsd);
}
