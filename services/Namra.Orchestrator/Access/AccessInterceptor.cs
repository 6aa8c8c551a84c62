using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Options;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Access;

/// <summary>
/// Guards every method of the public API (<c>namra.v1.AgentService</c>, over gRPC and REST alike). With keys configured
/// (<see cref="AccessKeys"/>) or bearer tokens accepted (<see cref="BearerTokens"/>), a call must send
/// <c>authorization: Bearer KEY</c> or <c>x-api-key: KEY</c> with a known, unexpired key, or <c>authorization: Bearer
/// TOKEN</c> with a valid token, or it is <c>UNAUTHENTICATED</c>; then the key's roles must grant the method's permission, or it is
/// <c>PERMISSION_DENIED</c> naming the permission. Without keys every caller may do everything (a local deployment, the
/// embedded CLI). The principal is kept in the call's <c>UserState</c> for the service (which agents it may run, whether
/// its inline definitions keep their tools' authority). Keys are compared by hash and never logged. Every call, admitted
/// or refused, is recorded in the audit log (<see cref="AuditLog"/>).
/// </summary>
internal sealed class AccessInterceptor(AccessKeys keys, BearerTokens tokens, TenantLimits limits, AuditLog audit, IOptions<OrchestratorOptions> options,
    IOptions<Hosting.Options.NamraHostOptions> host, TimeProvider timeProvider) : Interceptor
{
    // Anonymous callers are served where the operator allows them, or where only this machine can call.
    private readonly bool _anonymous = options.Value.AllowAnonymous
        ?? (System.Net.IPAddress.TryParse(host.Value.ListenAddress, out var address) && System.Net.IPAddress.IsLoopback(address));

    private const string PublicService = "/namra.v1.AgentService/";
    private const int MaxAuditDetail = 2000;

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        TResponse response = default!;
        await GuardAsync(context, async () => response = await continuation(request, context).ConfigureAwait(false)).ConfigureAwait(false);
        return response;
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        GuardAsync(context, () => continuation(request, responseStream, context));

    // Admits the call, runs it, and records how it ended, admitted or refused.
    private async Task GuardAsync(ServerCallContext context, Func<Task> call)
    {
        try
        {
            await AdmitAsync(context).ConfigureAwait(false);
            await call().ConfigureAwait(false);
            Audit(context, null);
        }
        catch (Exception exception) when (IsPublic(context))
        {
            Audit(context, exception);
            throw;
        }
    }

    private static bool IsPublic(ServerCallContext context) => context.Method.StartsWith(PublicService, StringComparison.Ordinal);

    // Who called (unknown when no credential was accepted), what, on what, and how it ended.
    private void Audit(ServerCallContext context, Exception? failure)
    {
        if (!IsPublic(context))
        {
            return;
        }

        var principal = context.UserState.TryGetValue(Principal.UserStateKey, out var known) && known is Principal admitted ? admitted : null;
        var facts = context.UserState.TryGetValue(AuditLog.FactsKey, out var noted) && noted is AuditLog.Facts done ? done : null;
        var (code, detail) = failure switch
        {
            null => (StatusCode.OK, facts?.Detail ?? ""),
            NamraException namra => (namra.StatusCode, namra.Message),
            RpcException rpc => (rpc.StatusCode, rpc.Status.Detail),
            OperationCanceledException => (StatusCode.Cancelled, "The caller went away."),
            _ => (StatusCode.Internal, failure.GetType().Name),
        };
        audit.Record(new Contracts.V1.AuditEntry
        {
            Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow()),
            Principal = principal?.Id ?? "unknown",
            Tenant = principal?.Tenant ?? Contracts.Tenants.Default,
            Action = context.Method[PublicService.Length..],
            Agent = facts?.Agent ?? "",
            RunId = facts?.RunId ?? "",
            Outcome = CodeName(code),
            Detail = detail.Length > MaxAuditDetail ? detail[..MaxAuditDetail] : detail,
            Tokens = facts?.Tokens ?? 0,
            CostUsd = facts?.CostUsd ?? 0,
        });
    }

    /// <summary>A status code as the gRPC specification names it (<c>PERMISSION_DENIED</c>).</summary>
    public static string CodeName(StatusCode code) => code == StatusCode.OK
        ? "OK"
        : string.Concat(code.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? $"_{c}" : char.ToUpperInvariant(c).ToString()));

    /// <summary>The principal of a call the interceptor admitted; unrestricted for calls from this process.</summary>
    public static Principal Of(ServerCallContext context) =>
        context.UserState.TryGetValue(Principal.UserStateKey, out var principal) && principal is Principal known ? known : Principal.Unrestricted;

    /// <summary>The permission each public method needs; admin for any method this build does not name.</summary>
    public static Permission Needed(string method) => method[(method.LastIndexOf('/') + 1)..] switch
    {
        "ValidateAgent" => Permission.ValidateAgents,
        "Execute" or "ExecuteStream" => Permission.Execute,
        "GetRun" or "ListRuns" or "GetUsage" => Permission.ReadRuns,
        "CancelRun" => Permission.CancelRuns,
        "ApproveToolCalls" or "DenyToolCalls" => Permission.ApproveToolCalls,
        "ListAudit" => Permission.ReadAudit,
        _ => Permission.Admin,
    };

    private async ValueTask AdmitAsync(ServerCallContext context)
    {
        if (!context.Method.StartsWith(PublicService, StringComparison.Ordinal))
        {
            return;
        }

        var principal = await AuthenticateAsync(context).ConfigureAwait(false);
        context.UserState[Principal.UserStateKey] = principal;
        var needed = Needed(context.Method);
        if (!principal.Has(needed))
        {
            throw new NamraException(StatusCode.PermissionDenied,
                $"The key '{principal.Id}' lacks the permission {Principal.Name(needed)} (its roles: {(principal.Roles.Count > 0 ? string.Join(", ", principal.Roles) : "none")}).",
                [new Google.Rpc.ErrorInfo { Reason = "PERMISSION_MISSING", Domain = "namra.dev", Metadata = { ["permission"] = Principal.Name(needed), ["key"] = principal.Id } }]);
        }

        // Then counted against its tenant's requests per minute (a refused call counts nothing).
        await limits.AdmitCallAsync(principal, context).ConfigureAwait(false);
    }

    private async ValueTask<Principal> AuthenticateAsync(ServerCallContext context)
    {
        var jwt = options.Value.Jwt;
        if (!keys.Required && !jwt.Enabled)
        {
            return _anonymous ? Principal.Unrestricted : throw new NamraException(StatusCode.Unauthenticated,
                $"This server listens on {host.Value.ListenAddress} and admits no anonymous callers, and it has no keys: set NAMRA_API_KEYS or Namra:Orchestrator:ApiKeysFile (or Jwt:Authority), or Namra:Orchestrator:AllowAnonymous=true.");
        }

        var bearer = context.RequestHeaders.GetValue("authorization") is { } authorization && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? authorization["Bearer ".Length..].Trim()
            : null;
        if (jwt.Enabled && bearer is not null && BearerTokens.LooksLikeToken(bearer))
        {
            return await tokens.AuthenticateAsync(context).ConfigureAwait(false);
        }

        var presented = bearer ?? context.RequestHeaders.GetValue("x-api-key");
        if (presented is null)
        {
            throw new NamraException(StatusCode.Unauthenticated, jwt.Enabled
                ? $"Send a bearer token from {jwt.Authority} (authorization: Bearer TOKEN), or an API key (x-api-key: KEY)."
                : "Send an API key: authorization: Bearer KEY (or x-api-key: KEY).");
        }

        var entry = keys.Find(presented) ?? throw new NamraException(StatusCode.Unauthenticated, "The API key is not valid.");
        if (entry.Expires is { } expires && expires <= timeProvider.GetUtcNow())
        {
            throw new NamraException(StatusCode.Unauthenticated, $"The API key '{entry.Principal.Id}' expired at {expires:u}.");
        }

        return entry.Principal;
    }
}
