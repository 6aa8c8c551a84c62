using System.Threading.RateLimiting;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Options;
using RedisRateLimiting;
using StackExchange.Redis;

namespace Namra.Orchestrator.Access;

/// <summary>
/// Holds each tenant to the limits of its policy (<see cref="TenantPolicy"/>): requests per minute on all its public calls
/// and on the runs of each agent, and how many runs it (and each agent) may have executing at once. A refusal is
/// <c>RESOURCE_EXHAUSTED</c> with a <c>RetryInfo</c> (and <c>Retry-After</c> over REST). In one process the counts are
/// <see cref="System.Threading.RateLimiting"/> limiters; with <c>Namra:Orchestrator:LimitsRedis</c> they live in Redis,
/// so replicas share them (fixed windows of <c>RedisRateLimiting</c>, and run slots leased like runs are, see
/// <see cref="RunSlots"/>), as are the spending counters of <see cref="TenantQuotas"/>. While Redis cannot be reached, calls are admitted and a warning is logged: limits protect the
/// service, and are not a reason to stop it.
/// </summary>
internal sealed partial class TenantLimits : IAsyncDisposable
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan SlotRetry = TimeSpan.FromSeconds(1);
    private readonly AccessKeys _keys;
    private readonly ILogger<TenantLimits> _logger;
    private readonly ConnectionMultiplexer? _redis;
    private readonly PartitionedRateLimiter<(string Scope, int Limit)> _requests;

    public TenantLimits(AccessKeys keys, IOptions<OrchestratorOptions> options, TimeProvider timeProvider, ILogger<TenantLimits> logger)
    {
        _keys = keys;
        _logger = logger;
        if (options.Value.LimitsRedis is { Length: > 0 } configuration)
        {
            var redis = ConfigurationOptions.Parse(configuration);
            redis.AbortOnConnectFail = false;
            redis.BacklogPolicy = BacklogPolicy.FailFast;
            redis.ClientName = "namra-limits";
            redis.ConnectTimeout = redis.AsyncTimeout = redis.SyncTimeout = 2000;
            _redis = ConnectionMultiplexer.Connect(redis);
            var shared = _redis;
            _requests = PartitionedRateLimiter.Create<(string Scope, int Limit), string>(key => RedisRateLimitPartition.GetFixedWindowRateLimiter(
                $"namra:{key.Scope}:{key.Limit}", _ => new RedisFixedWindowRateLimiterOptions { ConnectionMultiplexerFactory = () => shared, PermitLimit = key.Limit, Window = Window }));
            Slots = new RunSlots.Shared(_redis, options.Value.LeaseDuration);
            Spend = new SpendCounters.Shared(_redis, timeProvider);
        }
        else
        {
            // The limit is part of the key: a policy changed in the access file starts a new window.
            _requests = PartitionedRateLimiter.Create<(string Scope, int Limit), (string, int)>(key => RateLimitPartition.GetFixedWindowLimiter(key, _ =>
                new FixedWindowRateLimiterOptions { PermitLimit = key.Limit, Window = Window, QueueLimit = 0, AutoReplenishment = true }));
            Slots = new RunSlots.InProcess();
            Spend = new SpendCounters.InProcess(timeProvider);
        }
    }

    /// <summary>Where the runs executing are counted.</summary>
    public RunSlots Slots { get; }

    /// <summary>Where the tenants' spending is counted (<see cref="TenantQuotas"/>).</summary>
    public SpendCounters Spend { get; }

    /// <summary>Counts a public call against its tenant's requests per minute; refuses it past the limit.</summary>
    public async ValueTask AdmitCallAsync(Principal principal, ServerCallContext context)
    {
        var limit = _keys.Policy(principal.Tenant).Calls.RequestsPerMinute;
        if (limit > 0)
        {
            await TakeAsync(principal.Tenant, limit, $"The tenant '{principal.Tenant}' made its {limit:N0} requests of this minute", principal.Tenant, agent: null, context).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Admits a new run of <paramref name="agent"/>: counts it against the agent's requests per minute, and takes a slot
    /// among the tenant's and the agent's runs executing at once, kept until the returned slot is disposed.
    /// </summary>
    public async ValueTask<IAsyncDisposable> AdmitRunAsync(string tenant, string agent, string runId, ServerCallContext context)
    {
        var policy = _keys.Policy(tenant);
        var limits = policy.ForAgent(agent);
        if (limits.RequestsPerMinute > 0)
        {
            await TakeAsync(Contracts.Tenants.Scoped(tenant, agent), limits.RequestsPerMinute, $"The agent {agent} was started its {limits.RequestsPerMinute:N0} times of this minute by the tenant '{tenant}'",
                tenant, agent, context).ConfigureAwait(false);
        }

        var counted = Counted(tenant, agent, policy.Calls.ConcurrentRuns, limits.ConcurrentRuns);
        if (counted.Count == 0)
        {
            return RunSlots.Nothing;
        }

        RunSlots.Taken taken;
        try
        {
            taken = await Slots.TakeAsync(counted, Contracts.Tenants.Scoped(tenant, runId), force: false, context.CancellationToken).ConfigureAwait(false);
        }
        catch (RedisException exception)
        {
            LimitsUnreachable(_logger, exception.Message);
            return RunSlots.Nothing;
        }

        if (taken.Refused is { } full)
        {
            var what = full.Agent is not null
                ? $"The tenant '{tenant}' has its {full.Limit:N0} run(s) of the agent {agent} executing"
                : $"The tenant '{tenant}' has its {full.Limit:N0} run(s) executing";
            throw Refused($"{what}; try again when one ends.", SlotRetry, "TOO_MANY_RUNS", tenant, agent, full.Limit, context);
        }

        return taken.Slot!;
    }

    /// <summary>Counts a run resumed on this replica (its slot had lapsed with the replica that ran it), whatever the limits say.</summary>
    public async ValueTask<IAsyncDisposable> ResumedAsync(string tenant, string agent, string runId)
    {
        var policy = _keys.Policy(tenant);
        var counted = Counted(tenant, agent, policy.Calls.ConcurrentRuns, policy.ForAgent(agent).ConcurrentRuns);
        try
        {
            return counted.Count == 0 ? RunSlots.Nothing : (await Slots.TakeAsync(counted, Contracts.Tenants.Scoped(tenant, runId), force: true, CancellationToken.None).ConfigureAwait(false)).Slot!;
        }
        catch (RedisException exception)
        {
            LimitsUnreachable(_logger, exception.Message);
            return RunSlots.Nothing;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _requests.Dispose();
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static List<RunSlots.Scope> Counted(string tenant, string agent, int tenantRuns, int agentRuns)
    {
        var scopes = new List<RunSlots.Scope>(2);
        if (tenantRuns > 0)
        {
            scopes.Add(new RunSlots.Scope(tenant, null, tenantRuns));
        }

        if (agentRuns > 0)
        {
            scopes.Add(new RunSlots.Scope(tenant, agent, agentRuns));
        }

        return scopes;
    }

    private async ValueTask TakeAsync(string scope, int limit, string what, string tenant, string? agent, ServerCallContext context)
    {
        RateLimitLease lease;
        try
        {
            lease = await _requests.AcquireAsync((scope, limit), 1, context.CancellationToken).ConfigureAwait(false);
        }
        catch (RedisException exception)
        {
            LimitsUnreachable(_logger, exception.Message);
            return;
        }

        using (lease)
        {
            if (!lease.IsAcquired)
            {
                // In process the limiter says how long until the window turns; Redis's says it in whole seconds.
                var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter.Name, out var after) switch
                {
                    true when after is TimeSpan span => span,
                    true when after is int seconds => TimeSpan.FromSeconds(seconds),
                    _ => Window,
                };
                throw Refused($"{what}; try again in {Math.Ceiling(retryAfter.TotalSeconds):0} s.", retryAfter, "RATE_LIMITED", tenant, agent, limit, context);
            }
        }
    }

    private static NamraException Refused(string message, TimeSpan retryAfter, string reason, string tenant, string? agent, int limit, ServerCallContext context)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        if (!Hosting.Clients.InProcessCalls.IsInProcess(context))
        {
            context.GetHttpContext().Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var info = new Google.Rpc.ErrorInfo { Reason = reason, Domain = "namra.dev", Metadata = { ["tenant"] = tenant, ["limit"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture) } };
        if (agent is not null)
        {
            info.Metadata["agent"] = agent;
        }

        return new NamraException(StatusCode.ResourceExhausted, message, [info, new Google.Rpc.RetryInfo { RetryDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(seconds)) }]);
    }

    [LoggerMessage(EventId = 6030, Level = LogLevel.Warning, Message = "Redis for the tenants' limits cannot be reached; the call is admitted without counting it: {Problem}")]
    private static partial void LimitsUnreachable(ILogger logger, string problem);
}
