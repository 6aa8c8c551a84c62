using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Namra.Orchestrator.Options;

/// <summary>Settings of the orchestrator; section <c>Namra:Orchestrator</c>.</summary>
[System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "[Range(typeof(TimeSpan), ...)] is metadata here: the options validation source generator checks it with its own strongly typed copy, no TypeConverter.")]
public sealed class OrchestratorOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Namra:Orchestrator";

    /// <summary>
    /// When set (<c>in_memory</c>, <c>sqlite</c>, <c>redis</c> or <c>postgres</c>), every run keeps its conversation in this
    /// store whatever its agent's <c>memory.type</c> says. The embedded CLI sets <c>sqlite</c>, so sessions outlive the process.
    /// </summary>
    [RegularExpression("^(|in_memory|sqlite|redis|postgres)$")]
    public string? MemoryStoreOverride { get; set; }

    /// <summary>How long saving a run's record and messages may take after the run ends, whatever way. Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan SaveTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A file of API keys for the public API: a key per line (<c>#</c> starts a comment), or a <c>.json</c> file of hashed
    /// keys with tenants, roles, agent patterns and expiry (see <see cref="Access.AccessKeys"/>); with
    /// <c>NAMRA_API_KEYS</c>, calls must carry one.
    /// </summary>
    public string? ApiKeysFile { get; set; }

    /// <summary>
    /// Whether callers without a key or token are served (as admins of the default tenant) when no keys or tokens are
    /// configured. Unset: only when the server listens on a loopback address (<c>Namra:Host:ListenAddress</c>), so that a
    /// server reachable from a network never answers anonymous callers unless the operator says so.
    /// </summary>
    public bool? AllowAnonymous { get; set; }

    /// <summary>
    /// A Redis (StackExchange.Redis configuration string) where the tenants' limits are counted, so that replicas share
    /// them; without it each replica counts its own (see <see cref="Access.TenantLimits"/>).
    /// </summary>
    public string? LimitsRedis { get; set; }

    /// <summary>
    /// Whether an agent definition sent inline over the network may use every tool type. A definition carries its tools'
    /// authority: the commands a shell tool runs, a filesystem root, a database, MCP programs and addresses, private
    /// networks. Off (the default), such a definition may use <c>builtin.calculator</c> and <c>builtin.http</c> on public
    /// networks only, and any other tool is refused with <c>PERMISSION_DENIED</c>. Agents from the registry (the agents
    /// folder) and calls from this process (<c>namra run</c>) are not limited. Turn it on only where every caller may run
    /// programs where the tool executor runs.
    /// </summary>
    public bool TrustInlineAgents { get; set; }

    /// <summary>How long a resolved agent is reused for new runs (0 resolves every run). Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan AgentCacheDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long an agent's tool list (from the tool executor) is reused (0 lists every run). Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan ToolListCacheDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often a running run reads its record for a CancelRun sent to another replica (which then stops the model call
    /// or tool in flight), and renews its lease when due. Default 0.5 s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan CancelPollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How often a streamed run reports each tool call still running (<c>tool_running</c> events), so a client can
    /// tell a long tool from a stalled run; 0 reports nothing. Default 5 s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ToolProgressInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a replica's lease on a running run lasts unless renewed (it is renewed every third of it while the run
    /// works). A run whose replica is gone is resumed elsewhere within about this long plus <see cref="RecoveryInterval"/>.
    /// Default 15 s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.300", "01:00:00")]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long past its run's deadline a tenant's quota reservation that was never settled (its replica was lost during
    /// the call) holds before it lapses, counted as spent at its worst case. Default 1 min.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan QuotaReservationGrace { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often this replica looks for running runs whose lease lapsed, to resume them. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "01:00:00")]
    public TimeSpan RecoveryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Whether this replica resumes runs whose replica was lost. On for servers; the embedded CLI turns it off (a
    /// process that exits after its one run should not take over others).
    /// </summary>
    public bool RecoverRuns { get; set; } = true;

    /// <summary>How deep agents may call agents (<c>type: agent</c>): a run a caller started is at 0, its children at 1. Default 3.</summary>
    [Range(1, 16)]
    public int MaxAgentDepth { get; set; } = 3;

    /// <summary>Most agents one model turn may call; calls past it get an error result. Default 8.</summary>
    [Range(1, 256)]
    public int MaxAgentCallsPerTurn { get; set; } = 8;

    /// <summary>Most times one run's conversation may be handed to another agent (<c>handoffs</c>); a handoff past it is refused. Default 8.</summary>
    [Range(1, 256)]
    public int MaxHandoffs { get; set; } = 8;

    /// <summary>Most events one run may emit (text deltas included) before it is stopped. Default 100,000.</summary>
    [Range(100, 10_000_000)]
    public int MaxRunEvents { get; set; } = 100_000;

    /// <summary>
    /// Whether every call to the public API, and every change to the access file, is recorded in the audit log the memory
    /// service keeps (its default store must be <c>sqlite</c>, <c>postgres</c> or <c>in_memory</c>). Default on.
    /// </summary>
    public bool AuditLog { get; set; } = true;

    /// <summary>OIDC/JWT bearer tokens accepted by the public API beside API keys; section <c>Namra:Orchestrator:Jwt</c>.</summary>
    public JwtOptions Jwt { get; set; } = new();
}

/// <summary>
/// Bearer tokens from an OpenID Connect issuer: signed by a key the issuer publishes (its JWKS, found through
/// <c>{Authority}/.well-known/openid-configuration</c>), for <see cref="Audience"/>, unexpired; the caller's tenant, roles
/// and agent patterns are read from claims.
/// </summary>
public sealed class JwtOptions
{
    /// <summary>The issuer (<c>https://login.example.com/realms/namra</c>); tokens are accepted only when it is set.</summary>
    public string? Authority { get; set; }

    /// <summary>The audience tokens must be for (<c>aud</c>); required with <see cref="Authority"/>.</summary>
    public string? Audience { get; set; }

    /// <summary>Whether the issuer's metadata must be fetched over HTTPS. Default on; off only for an issuer on this machine.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>The claim naming the caller's tenant; the default tenant when a token has none. Default <c>tenant</c>.</summary>
    public string TenantClaim { get; set; } = "tenant";

    /// <summary>The claim listing the caller's roles (an array, or names separated by spaces). Default <c>roles</c>.</summary>
    public string RolesClaim { get; set; } = "roles";

    /// <summary>The claim listing the agents the caller may run (name patterns); any agent without it. Default <c>namra_agents</c>.</summary>
    public string AgentsClaim { get; set; } = "namra_agents";

    /// <summary>Whether bearer tokens are accepted.</summary>
    public bool Enabled => Authority is { Length: > 0 };
}

/// <summary>Validates <see cref="OrchestratorOptions"/> at start-up (source-generated).</summary>
[OptionsValidator]
internal sealed partial class OrchestratorOptionsValidator : IValidateOptions<OrchestratorOptions>;
