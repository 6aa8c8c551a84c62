using StackExchange.Redis;

namespace Namra.Orchestrator.Access;

/// <summary>
/// What each tenant has spent on model calls per period, and set aside for calls in flight: a reservation is taken in
/// every period at once, or in none, and only while spent plus set aside plus it stays within each period's quota.
/// Dollars are counted in billionths, so that sums are exact. A period's counters are seeded once from the runs' ledgers
/// (see <see cref="TenantQuotas"/>) before they are used.
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

    /// <summary>Whether the period's counters were seeded.</summary>
    public abstract Task<bool> IsSeededAsync(string tenant, Period period);

    /// <summary>Adds what the ledgers say was spent, unless the period was seeded already (by another replica).</summary>
    public abstract Task SeedAsync(string tenant, Period period, Amount spent);

    /// <summary>Sets <paramref name="amount"/> aside in every period; returns the index of the first period it would exceed (nothing set aside), or -1.</summary>
    public abstract Task<int> ReserveAsync(string tenant, IReadOnlyList<Period> periods, Amount amount);

    /// <summary>Releases what was set aside and adds what was spent.</summary>
    public abstract Task SettleAsync(string tenant, IReadOnlyList<Period> periods, Amount reserved, Amount spent);

    /// <summary>Where a period stands.</summary>
    public abstract Task<Standing> ReadAsync(string tenant, Period period);

    /// <summary>Counts in this process.</summary>
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

        public override Task<int> ReserveAsync(string tenant, IReadOnlyList<Period> periods, Amount amount)
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

        public override Task SettleAsync(string tenant, IReadOnlyList<Period> periods, Amount reserved, Amount spent)
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

    /// <summary>Counts in Redis, shared by every replica: a hash per tenant and period, changed by scripts.</summary>
    public sealed class Shared(ConnectionMultiplexer redis) : SpendCounters
    {
        // KEYS: a hash per period. ARGV: tokens, nano, then for each period its max tokens, max nano and expiry (ms).
        private const string ReserveScript = """
            for i, key in ipairs(KEYS) do
              local h = redis.call('HMGET', key, 'tokens', 'nano', 'rtokens', 'rnano')
              local t = tonumber(h[1] or '0') + tonumber(h[3] or '0') + tonumber(ARGV[1])
              local n = tonumber(h[2] or '0') + tonumber(h[4] or '0') + tonumber(ARGV[2])
              local maxT = tonumber(ARGV[3 * i])
              local maxN = tonumber(ARGV[3 * i + 1])
              if (maxT > 0 and t > maxT) or (maxN > 0 and n > maxN) then return i end
            end
            for i, key in ipairs(KEYS) do
              redis.call('HINCRBY', key, 'rtokens', ARGV[1])
              redis.call('HINCRBY', key, 'rnano', ARGV[2])
              redis.call('PEXPIREAT', key, ARGV[3 * i + 2])
            end
            return 0
            """;

        // KEYS: a hash per period. ARGV: reserved tokens, reserved nano, spent tokens, spent nano.
        private const string SettleScript = """
            for i, key in ipairs(KEYS) do
              redis.call('HINCRBY', key, 'rtokens', -tonumber(ARGV[1]))
              redis.call('HINCRBY', key, 'rnano', -tonumber(ARGV[2]))
              redis.call('HINCRBY', key, 'tokens', ARGV[3])
              redis.call('HINCRBY', key, 'nano', ARGV[4])
            end
            return 0
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

        public override async Task<int> ReserveAsync(string tenant, IReadOnlyList<Period> periods, Amount amount) =>
            (int)await redis.GetDatabase().ScriptEvaluateAsync(ReserveScript, [.. periods.Select(period => Key(tenant, period))],
                [amount.Tokens, amount.NanoUsd, .. periods.SelectMany(period => new RedisValue[] { period.MaxTokens, period.MaxNanoUsd, Expiry(period) })]).ConfigureAwait(false) - 1;

        public override async Task SettleAsync(string tenant, IReadOnlyList<Period> periods, Amount reserved, Amount spent) =>
            await redis.GetDatabase().ScriptEvaluateAsync(SettleScript, [.. periods.Select(period => Key(tenant, period))],
                [reserved.Tokens, reserved.NanoUsd, spent.Tokens, spent.NanoUsd]).ConfigureAwait(false);

        public override async Task<Standing> ReadAsync(string tenant, Period period)
        {
            var values = await redis.GetDatabase().HashGetAsync(Key(tenant, period), ["tokens", "nano", "rtokens", "rnano"]).ConfigureAwait(false);
            long Read(int i) => values[i].IsNull ? 0 : (long)values[i];
            return new Standing(new Amount(Read(0), Read(1)), new Amount(Read(2), Read(3)));
        }

        private static RedisKey Key(string tenant, Period period) => $"namra:spend:{tenant}:{period.Key}";

        // Kept a day past the period's end, for late settlements and reads.
        private static long Expiry(Period period) => period.End.AddDays(1).ToUnixTimeMilliseconds();
    }

    /// <summary>Whether spending this much would take the period past its quota.</summary>
    public static bool Exceeds(Period period, long tokens, long nano) =>
        (period.MaxTokens > 0 && tokens > period.MaxTokens) || (period.MaxNanoUsd > 0 && nano > period.MaxNanoUsd);
}
