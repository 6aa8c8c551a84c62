using Grpc.Core;
using Grpc.Core.Interceptors;
using Namra.Hosting.Errors;
using Namra.Hosting.Roles;

namespace Namra.Hosting.Trust;

/// <summary>
/// With a service key (<see cref="ServiceTrust"/>), a service that names its callers (<see cref="NamraRole.CalledBy"/>)
/// answers only calls that carry a token signed with it, for that service, from one of those roles. Anything else reaching
/// its port is <c>UNAUTHENTICATED</c> (no or a bad token) or <c>PERMISSION_DENIED</c> (a role that does not call it). The
/// public API (which checks its own callers), health and reflection are open as before. Calls within one process do not
/// pass here.
/// </summary>
internal sealed class ServiceTrustInterceptor(ServiceTrust trust, NamraRoles roles) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await CheckAsync(context).ConfigureAwait(false);
        return await continuation(request, context).ConfigureAwait(false);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await CheckAsync(context).ConfigureAwait(false);
        await continuation(request, responseStream, context).ConfigureAwait(false);
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await CheckAsync(context).ConfigureAwait(false);
        return await continuation(requestStream, context).ConfigureAwait(false);
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await CheckAsync(context).ConfigureAwait(false);
        await continuation(requestStream, responseStream, context).ConfigureAwait(false);
    }

    private async ValueTask CheckAsync(ServerCallContext context)
    {
        if (!trust.Enabled)
        {
            return;
        }

        // "/namra.v1.ToolExecutorService/ExecuteTool": the service's full name, then the method.
        var service = context.Method.AsSpan(1, Math.Max(0, context.Method.LastIndexOf('/') - 1)).ToString();
        if (roles.Known.FirstOrDefault(role => role.Service.FullName == service) is not { CalledBy.Count: > 0 } called)
        {
            return; // the public API, health, reflection
        }

        var allowed = called.CalledBy;

        var caller = context.RequestHeaders.GetValue(ServiceTrust.Header) is { Length: > 0 } token ? await trust.CallerAsync(token, called.Name).ConfigureAwait(false) : null;
        if (caller is null)
        {
            throw new NamraException(StatusCode.Unauthenticated,
                $"The {called.Name} service answers only Namra's services: a call needs a token signed with the deployment's service key ({ServiceTrust.Header}).");
        }

        if (!caller.Split(' ').Any(allowed.Contains))
        {
            throw new NamraException(StatusCode.PermissionDenied, $"The {called.Name} service is called by {string.Join(" and ", allowed)}, not by {caller}.");
        }
    }
}
