namespace Namra.Orchestrator.Access;

/// <summary>How much a caller may ask: requests per minute and runs at once; 0 for no limit.</summary>
internal readonly record struct Limits(int RequestsPerMinute, int ConcurrentRuns)
{
    public bool Any => RequestsPerMinute > 0 || ConcurrentRuns > 0;
}

/// <summary>What a tenant may spend on model calls per day and per month (UTC); 0 for no quota.</summary>
internal readonly record struct Quota(long TokensPerDay, long TokensPerMonth, double UsdPerDay, double UsdPerMonth)
{
    public bool Any => TokensPerDay > 0 || TokensPerMonth > 0 || UsdPerDay > 0 || UsdPerMonth > 0;

    public bool ChargesUsd => UsdPerDay > 0 || UsdPerMonth > 0;
}

/// <summary>
/// The limits of one tenant, from the access file's <c>tenants</c> (<c>*</c> for every tenant it does not name): on all its
/// calls, on the runs of each agent (by name, <c>*</c> for any other agent), counted per tenant, and its spending quota.
/// </summary>
internal sealed record TenantPolicy(Limits Calls, IReadOnlyDictionary<string, Limits> Agents, Quota Quota)
{
    /// <summary>No limits.</summary>
    public static TenantPolicy None { get; } = new(default, new Dictionary<string, Limits>(), default);

    /// <summary>The limits on the runs of <paramref name="agent"/>.</summary>
    public Limits ForAgent(string agent) => Agents.GetValueOrDefault(agent, Agents.GetValueOrDefault("*"));

    /// <summary>A tenant's entry as the access file writes it.</summary>
    public sealed record Settings(int? RequestsPerMinute, int? ConcurrentRuns, Dictionary<string, LimitSettings>? Agents, QuotaSettings? Quota);

    /// <summary>A quota as the access file writes it.</summary>
    public sealed record QuotaSettings(long? TokensPerDay, long? TokensPerMonth, double? UsdPerDay, double? UsdPerMonth);

    /// <summary>Limits as the access file writes them.</summary>
    public sealed record LimitSettings(int? RequestsPerMinute, int? ConcurrentRuns);

    /// <summary>Checks and converts a tenant's entry.</summary>
    public static TenantPolicy From(string tenant, Settings settings) => new(
        Checked($"tenants.{tenant}", settings.RequestsPerMinute, settings.ConcurrentRuns),
        (settings.Agents ?? []).ToDictionary(pair => pair.Key, pair => Checked($"tenants.{tenant}.agents.{pair.Key}", pair.Value.RequestsPerMinute, pair.Value.ConcurrentRuns), StringComparer.Ordinal),
        settings.Quota is { } quota ? Checked($"tenants.{tenant}.quota", quota) : default);

    private static Quota Checked(string where, QuotaSettings quota) =>
        quota.TokensPerDay < 0 || quota.TokensPerMonth < 0 || quota.UsdPerDay < 0 || quota.UsdPerMonth < 0
            || !double.IsFinite(quota.UsdPerDay ?? 0) || !double.IsFinite(quota.UsdPerMonth ?? 0)
            ? throw new InvalidDataException($"{where}: tokens_per_day, tokens_per_month, usd_per_day and usd_per_month are 0 or more (0 for no quota).")
            : new Quota(quota.TokensPerDay ?? 0, quota.TokensPerMonth ?? 0, quota.UsdPerDay ?? 0, quota.UsdPerMonth ?? 0);

    private static Limits Checked(string where, int? requestsPerMinute, int? concurrentRuns) =>
        requestsPerMinute is < 0 or > 1_000_000 || concurrentRuns is < 0 or > 100_000
            ? throw new InvalidDataException($"{where}: requests_per_minute is 0 to 1,000,000 and concurrent_runs 0 to 100,000 (0 for no limit).")
            : new Limits(requestsPerMinute ?? 0, concurrentRuns ?? 0);
}
