namespace Namra.Orchestrator.Access;

/// <summary>How much a caller may ask: requests per minute and runs at once; 0 for no limit.</summary>
internal readonly record struct Limits(int RequestsPerMinute, int ConcurrentRuns)
{
    public bool Any => RequestsPerMinute > 0 || ConcurrentRuns > 0;
}

/// <summary>
/// The limits of one tenant, from the access file's <c>tenants</c> (<c>*</c> for every tenant it does not name): on all its
/// calls, and on the runs of each agent (by name, <c>*</c> for any other agent), counted per tenant.
/// </summary>
internal sealed record TenantPolicy(Limits Calls, IReadOnlyDictionary<string, Limits> Agents)
{
    /// <summary>No limits.</summary>
    public static TenantPolicy None { get; } = new(default, new Dictionary<string, Limits>());

    /// <summary>The limits on the runs of <paramref name="agent"/>.</summary>
    public Limits ForAgent(string agent) => Agents.GetValueOrDefault(agent, Agents.GetValueOrDefault("*"));

    /// <summary>A tenant's entry as the access file writes it.</summary>
    public sealed record Settings(int? RequestsPerMinute, int? ConcurrentRuns, Dictionary<string, LimitSettings>? Agents);

    /// <summary>Limits as the access file writes them.</summary>
    public sealed record LimitSettings(int? RequestsPerMinute, int? ConcurrentRuns);

    /// <summary>Checks and converts a tenant's entry.</summary>
    public static TenantPolicy From(string tenant, Settings settings) => new(
        Checked($"tenants.{tenant}", settings.RequestsPerMinute, settings.ConcurrentRuns),
        (settings.Agents ?? []).ToDictionary(pair => pair.Key, pair => Checked($"tenants.{tenant}.agents.{pair.Key}", pair.Value.RequestsPerMinute, pair.Value.ConcurrentRuns), StringComparer.Ordinal));

    private static Limits Checked(string where, int? requestsPerMinute, int? concurrentRuns) =>
        requestsPerMinute is < 0 or > 1_000_000 || concurrentRuns is < 0 or > 100_000
            ? throw new InvalidDataException($"{where}: requests_per_minute is 0 to 1,000,000 and concurrent_runs 0 to 100,000 (0 for no limit).")
            : new Limits(requestsPerMinute ?? 0, concurrentRuns ?? 0);
}
