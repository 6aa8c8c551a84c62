using Grpc.Core;

namespace Namra.Hosting.Clients;

/// <summary>What a failed call to another Namra service tells about whether it reached the service.</summary>
public static class CallFailures
{
    /// <summary>
    /// Whether the call failed before reaching the service (its connection could not be made), so sending it again
    /// cannot do its work twice. A call that is not safe to repeat (a model turn, a tool call) is sent again only then.
    /// </summary>
    public static bool NeverReachedTheService(RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return UnavailableRetry.NothingWasSent(exception);
    }
}
