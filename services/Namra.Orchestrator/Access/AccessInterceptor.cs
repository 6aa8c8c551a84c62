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
/// its inline definitions keep their tools' authority). Keys are compared by hash and never logged.
/// </summary>
internal sealed class AccessInterceptor(AccessKeys keys, BearerTokens tokens, TenantLimits limits, IOptions<OrchestratorOptions> options, TimeProvider timeProvider) : Interceptor
{
    private const string PublicService = "/namra.v1.AgentService/";

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await AdmitAsync(context).ConfigureAwait(false);
        return await continuation(request, context).ConfigureAwait(false);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await AdmitAsync(context).ConfigureAwait(false);
        await continuation(request, responseStream, context).ConfigureAwait(false);
    }

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
        _ => Permission.Admin,
    };

    private async ValueTask AdmitAsync(ServerCallContext context)
    {
        if (!context.Method.StartsWith(PublicService, StringComparison.Ordinal))
        {
            return;
        }

        var principal = await AuthenticateAsync(context).ConfigureAwait(false);
        var needed = Needed(context.Method);
        if (!principal.Has(needed))
        {
            throw new NamraException(StatusCode.PermissionDenied,
                $"The key '{principal.Id}' lacks the permission {Principal.Name(needed)} (its roles: {(principal.Roles.Count > 0 ? string.Join(", ", principal.Roles) : "none")}).",
                [new Google.Rpc.ErrorInfo { Reason = "PERMISSION_MISSING", Domain = "namra.dev", Metadata = { ["permission"] = Principal.Name(needed), ["key"] = principal.Id } }]);
        }

        // Then counted against its tenant's requests per minute (a refused call counts nothing).
        await limits.AdmitCallAsync(principal, context).ConfigureAwait(false);
        context.UserState[Principal.UserStateKey] = principal;
    }

    private async ValueTask<Principal> AuthenticateAsync(ServerCallContext context)
    {
        var jwt = options.Value.Jwt;
        if (!keys.Required && !jwt.Enabled)
        {
            return Principal.Unrestricted;
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
