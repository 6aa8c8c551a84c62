using System.Collections.Concurrent;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Loop;
using Namra.Orchestrator.Options;
using static Namra.Orchestrator.Access.SpendCounters;

namespace Namra.Orchestrator.Access;

/// <summary>
/// Holds each tenant to its spending quota (tokens and US dollars, per UTC day and month; <see cref="Quota"/>) the way a
/// run's budget is held: before each model call, the call's worst case, as the gateway computes it (<c>CountTokens</c>),
/// is set aside in the tenant's counters, which replicas share through Redis; the call is then allowed no more than that,
/// and what it used replaces the reservation once it returns. Concurrent runs on any replica therefore never take the
/// tenant past its quota; a call that does not fit ends its run as <c>BUDGET_EXCEEDED</c>, and a tenant at its quota is
/// refused new runs with <c>RESOURCE_EXHAUSTED</c> and a <c>QuotaFailure</c>. A period's counters start from the runs'
/// ledgers (every provider request, counted as the run's own budget counts it), read from the memory service the first
/// time the period is used, so a restart forgets nothing that was spent.
/// </summary>
internal sealed class TenantQuotas(AccessKeys keys, TenantLimits limits, Downstream downstream, IOptions<OrchestratorOptions> options, TimeProvider timeProvider)
{
    private static readonly TimeSpan MaxWaitForCallsInFlight = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan WaitStep = TimeSpan.FromMilliseconds(50);
    private readonly ConcurrentDictionary<string, Lazy<Task>> _seeded = new(StringComparer.Ordinal);

    /// <summary>
    /// Refuses a new run of <paramref name="agent"/> when no model call of it can fit in what the tenant has left in any
    /// period: none left, or fewer tokens than the agent's <c>llm.max_tokens</c> (every call's worst case is more).
    /// </summary>
    public async Task AdmitAsync(string tenant, AgentDefinition agent, CancellationToken cancellationToken)
    {
        var quota = keys.Policy(tenant).Quota;
        if (!quota.Any)
        {
            return;
        }

        var periods = Periods(quota, timeProvider.GetUtcNow());
        await CountedAsync(() => SeedAsync(tenant, periods, cancellationToken)).ConfigureAwait(false);
        foreach (var period in periods)
        {
            var standing = await CountedAsync(() => limits.Spend.ReadAsync(tenant, period)).ConfigureAwait(false);
            var tokensLeft = period.MaxTokens - standing.Spent.Tokens - standing.Reserved.Tokens;
            if ((period.MaxTokens > 0 && tokensLeft < Math.Max(1, agent.Llm?.MaxTokens ?? 0))
                || (period.MaxNanoUsd > 0 && standing.Spent.NanoUsd + standing.Reserved.NanoUsd >= period.MaxNanoUsd))
            {
                throw Exhausted(tenant, period, standing, $"no run can start before the {period.Name} ends");
            }
        }
    }

    /// <summary>
    /// Sets the next model call's worst case aside in the tenant's quota. Refuses (<see cref="NamraException"/>,
    /// RESOURCE_EXHAUSTED) when it does not fit, and (FAILED_PRECONDITION) when a dollar quota meets a model without a
    /// price. For a tenant without a quota nothing is set aside or counted (its usage is read from the ledgers).
    /// </summary>
    public Task<Reservation> ReserveAsync(RunContext run, CancellationToken cancellationToken) =>
        ReserveAsync(run, () => new CountTokensRequest { Llm = run.Agent.Llm, SystemPrompt = run.SystemPrompt, Messages = { run.ModelMessages }, Tools = { run.Tools } }, cancellationToken);

    /// <summary>
    /// Sets aside the worst case of another provider call of the run (an embedding): that of <paramref name="call"/> as a
    /// model call, which bounds it. See <see cref="ReserveAsync(RunContext, CancellationToken)"/>.
    /// </summary>
    public async Task<Reservation> ReserveAsync(RunContext run, Func<CountTokensRequest> call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        var tenant = run.Request.Tenant;
        var quota = keys.Policy(tenant).Quota;
        if (!quota.Any)
        {
            return Reservation.None;
        }

        var request = call();
        var worst = (await downstream.LlmGateway.CountTokensAsync(request, deadline: run.Deadline, cancellationToken: cancellationToken).ConfigureAwait(false)).Reservation;
        if (quota.ChargesUsd && worst.Cost is null)
        {
            throw new NamraException(StatusCode.FailedPrecondition,
                $"The tenant '{tenant}' has a quota in US dollars, and the gateway has no price for model '{request.Llm.Model}': give the agent llm.pricing, or the gateway Namra:LlmGateway:Models.");
        }

        var periods = Periods(quota, timeProvider.GetUtcNow());
        var amount = new Amount(worst.Tokens, quota.ChargesUsd ? Amount.Nano(worst.Cost!.TotalUsd) : 0);
        await CountedAsync(() => SeedAsync(tenant, periods, cancellationToken)).ConfigureAwait(false);
        // The call ends by the run's deadline: a reservation still held well after it was left by a replica that is gone.
        var hold = new Hold(Guid.NewGuid().ToString("N"), new DateTimeOffset(run.Deadline, TimeSpan.Zero) + options.Value.QuotaReservationGrace);
        var refused = await CountedAsync(() => limits.Spend.ReserveAsync(tenant, periods, amount, hold)).ConfigureAwait(false);

        // Held back only by calls in flight (set aside at their worst case, and likely to spend less): it waits for them to
        // settle, so that concurrent runs queue for the quota rather than fail while it has room.
        // Calls in flight may also settle between the refusal and the reading: with nothing in flight and room left, it
        // tries once more at once, and only a second such refusal stands.
        var waited = timeProvider.GetTimestamp();
        var triedWithNothingInFlight = false;
        while (refused >= 0)
        {
            var standing = await CountedAsync(() => limits.Spend.ReadAsync(tenant, periods[refused])).ConfigureAwait(false);
            var nothingInFlight = standing.Reserved.Tokens + standing.Reserved.NanoUsd == 0;
            if (Exceeds(periods[refused], standing.Spent.Tokens + amount.Tokens, standing.Spent.NanoUsd + amount.NanoUsd)
                || (nothingInFlight && triedWithNothingInFlight) || timeProvider.GetElapsedTime(waited) > MaxWaitForCallsInFlight)
            {
                throw Exhausted(tenant, periods[refused], standing,
                    $"the next model call could use up to {worst.Tokens:N0} tokens{(quota.ChargesUsd ? $" (${worst.Cost!.TotalUsd:0.######})" : "")}, more than is left");
            }

            triedWithNothingInFlight = nothingInFlight;
            if (!nothingInFlight)
            {
                await Task.Delay(WaitStep, timeProvider, cancellationToken).ConfigureAwait(false);
            }

            refused = await CountedAsync(() => limits.Spend.ReserveAsync(tenant, periods, amount, hold)).ConfigureAwait(false);
        }

        return new Reservation(limits.Spend, tenant, periods, amount, worst, hold);
    }

    // A quota is a promise about money: without its counters, no call is made (UNAVAILABLE).
    private static async Task<T> CountedAsync<T>(Func<Task<T>> read)
    {
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (StackExchange.Redis.RedisException exception)
        {
            throw new NamraException(StatusCode.Unavailable, $"The tenants' spending counters (Namra:Orchestrator:LimitsRedis) cannot be reached, so the tenant's quota cannot be kept: {exception.Message}");
        }
    }

    private static Task<bool> CountedAsync(Func<Task> act) => CountedAsync(async () =>
    {
        await act().ConfigureAwait(false);
        return true;
    });

    /// <summary>Where the tenant stands this day and this month: from its counters with a quota, else from its runs' ledgers.</summary>
    public async Task<GetUsageResponse> UsageAsync(string tenant, CancellationToken cancellationToken)
    {
        var quota = keys.Policy(tenant).Quota;
        var periods = Periods(quota, timeProvider.GetUtcNow());
        var (today, thisMonth) = quota.Any ? default : await ReadLedgersAsync(tenant, periods[0], periods[1], cancellationToken).ConfigureAwait(false);
        if (quota.Any)
        {
            await CountedAsync(() => SeedAsync(tenant, periods, cancellationToken)).ConfigureAwait(false);
        }

        var response = new GetUsageResponse { Tenant = tenant };
        foreach (var period in periods)
        {
            var standing = quota.Any ? await CountedAsync(() => limits.Spend.ReadAsync(tenant, period)).ConfigureAwait(false) : new Standing(period.Name == "day" ? today : thisMonth, default);
            response.Periods.Add(new UsagePeriod
            {
                Period = period.Name, StartTime = Timestamp.FromDateTimeOffset(period.Start), EndTime = Timestamp.FromDateTimeOffset(period.End),
                Tokens = standing.Spent.Tokens, CostUsd = Amount.Usd(standing.Spent.NanoUsd),
                ReservedTokens = standing.Reserved.Tokens, ReservedCostUsd = Amount.Usd(standing.Reserved.NanoUsd),
                MaxTokens = period.MaxTokens, MaxCostUsd = Amount.Usd(period.MaxNanoUsd),
            });
        }

        return response;
    }

    /// <summary>What one provider request spent, as the run's budget counts it (RunBudget).</summary>
    public static Amount Spent(IEnumerable<ProviderAttempt> attempts, CallReservation? reservation)
    {
        var (tokens, nano) = (0L, 0L);
        foreach (var attempt in attempts)
        {
            var (t, usd) = RunBudget.ChargeOf(attempt, reservation);
            tokens += t;
            nano += Amount.Nano(usd);
        }

        return new Amount(tokens, nano);
    }

    private static List<Period> Periods(Quota quota, DateTimeOffset now)
    {
        var day = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
        var month = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        return
        [
            new Period("day", $"day:{day:yyyy-MM-dd}", day, day.AddDays(1), quota.TokensPerDay, Amount.Nano(quota.UsdPerDay)),
            new Period("month", $"month:{month:yyyy-MM}", month, month.AddMonths(1), quota.TokensPerMonth, Amount.Nano(quota.UsdPerMonth)),
        ];
    }

    // Once per tenant and period in this process; across replicas, the first seed to land is the one kept.
    private async Task SeedAsync(string tenant, List<Period> periods, CancellationToken cancellationToken)
    {
        var key = Contracts.Tenants.Scoped(tenant, periods[1].Key + periods[0].Key);
        var seeding = _seeded.GetOrAdd(key, _ => new Lazy<Task>(() => SeedFromLedgersAsync(tenant, periods)));
        try
        {
            await seeding.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            _seeded.TryRemove(KeyValuePair.Create(key, seeding)); // tried again by the next call
            throw;
        }
    }

    private async Task SeedFromLedgersAsync(string tenant, List<Period> periods)
    {
        var (day, month) = (periods[0], periods[1]);
        if (await limits.Spend.IsSeededAsync(tenant, day).ConfigureAwait(false) && await limits.Spend.IsSeededAsync(tenant, month).ConfigureAwait(false))
        {
            return;
        }

        var (today, thisMonth) = await ReadLedgersAsync(tenant, day, month, CancellationToken.None).ConfigureAwait(false);
        await limits.Spend.SeedAsync(tenant, day, today).ConfigureAwait(false);
        await limits.Spend.SeedAsync(tenant, month, thisMonth).ConfigureAwait(false);
    }

    // Every run of the tenant made this month, newest first: its ledger's requests count in the period it was made in.
    private async Task<(Amount Today, Amount ThisMonth)> ReadLedgersAsync(string tenant, Period day, Period month, CancellationToken cancellationToken)
    {
        var (today, thisMonth) = (new Amount(0, 0), new Amount(0, 0));
        var token = "";
        do
        {
            var page = await downstream.Memory.ListRunRecordsAsync(new ListRunRecordsRequest { Tenant = tenant, PageSize = 200, PageToken = token },
                deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: cancellationToken).ConfigureAwait(false);
            token = page.NextPageToken;
            foreach (var run in page.Runs)
            {
                var made = run.CreateTime?.ToDateTimeOffset() ?? DateTimeOffset.MinValue;
                if (made < month.Start)
                {
                    token = "";
                    break;
                }

                var spent = Spent(run.Ledger, reservation: null);
                thisMonth = new Amount(thisMonth.Tokens + spent.Tokens, thisMonth.NanoUsd + spent.NanoUsd);
                if (made >= day.Start)
                {
                    today = new Amount(today.Tokens + spent.Tokens, today.NanoUsd + spent.NanoUsd);
                }
            }
        }
        while (token.Length > 0);
        return (today, thisMonth);
    }

    private static NamraException Exhausted(string tenant, Period period, Standing standing, string why)
    {
        var (spentTokens, spentUsd) = (standing.Spent.Tokens + standing.Reserved.Tokens, Amount.Usd(standing.Spent.NanoUsd + standing.Reserved.NanoUsd));
        var (subject, limit) = period.MaxNanoUsd > 0 && standing.Spent.NanoUsd + standing.Reserved.NanoUsd >= period.MaxNanoUsd || period.MaxTokens == 0
            ? ($"tenants.{tenant}.quota.usd_per_{period.Name}", $"${Amount.Usd(period.MaxNanoUsd):0.######}")
            : ($"tenants.{tenant}.quota.tokens_per_{period.Name}", $"{period.MaxTokens:N0} tokens");
        var message = $"The tenant '{tenant}' has spent {spentTokens:N0} tokens (${spentUsd:0.######}) this {period.Name}, in flight included, of its quota of {limit}: {why}.";
        return new NamraException(StatusCode.ResourceExhausted, message,
            [new Google.Rpc.QuotaFailure { Violations = { new Google.Rpc.QuotaFailure.Types.Violation { Subject = subject, Description = message } } }]);
    }

    /// <summary>A model call's worst case, set aside in the tenant's counters until the call is settled.</summary>
    public sealed class Reservation(SpendCounters? counters, string tenant, IReadOnlyList<Period> periods, Amount amount, CallReservation? worst, Hold hold)
    {
        private int _settled;

        /// <summary>Nothing set aside, nothing counted: a tenant without a quota.</summary>
        public static Reservation None { get; } = new(null, "", [], default, null, default);

        /// <summary>What the call may spend: what the run has left, within what was set aside.</summary>
        public CallBudget? Within(CallBudget? left)
        {
            if (worst is null)
            {
                return left;
            }

            var budget = left?.Clone() ?? new CallBudget();
            budget.MaxTokens = budget.HasMaxTokens ? Math.Min(budget.MaxTokens, worst.Tokens) : worst.Tokens;
            if (amount.NanoUsd > 0)
            {
                budget.MaxCostUsd = budget.HasMaxCostUsd ? Math.Min(budget.MaxCostUsd, worst.Cost.TotalUsd) : worst.Cost.TotalUsd;
            }

            return budget;
        }

        /// <summary>Replaces the reservation with what the call's requests spent; once.</summary>
        public Task SettleAsync(IEnumerable<ProviderAttempt> attempts, CallReservation? reservation) => SettleOnceAsync(Spent(attempts, reservation ?? worst));

        /// <summary>Settles a call whose outcome is unknown at all it was allowed; nothing when it was settled.</summary>
        public Task SettleUnknownAsync() => SettleOnceAsync(amount);

        // A settlement the counters do not take leaves the reservation counted until it lapses, then counted as spent at
        // its worst case: the tenant is held to more, never less.
        private async Task SettleOnceAsync(Amount spent)
        {
            if (counters is not null && Interlocked.Exchange(ref _settled, 1) == 0)
            {
                try
                {
                    await counters.SettleAsync(tenant, periods, amount, spent, hold).ConfigureAwait(false);
                }
                catch (StackExchange.Redis.RedisException)
                {
                }
            }
        }
    }
}
