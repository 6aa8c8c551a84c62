using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Namra.Hosting.Clients;

/// <summary>
/// A call to another Namra service failed: thrown by every client <see cref="NamraServiceChannels"/> hands out (see
/// <see cref="DownstreamFailures"/>), so a failure always names the service at fault. It is an
/// <see cref="RpcException"/> whose status a caller can act on, and a handler that lets it escape answers with it:
/// <list type="bullet">
/// <item>An answer about the request itself (invalid, not found, refused, exhausted) keeps its code, message and details.</item>
/// <item>A service that is gone or dropped the call is <c>UNAVAILABLE</c>; one that did not answer in time, <c>DEADLINE_EXCEEDED</c>;
/// any other failure keeps its code (<c>INTERNAL</c> for <c>UNKNOWN</c>), its message saying which service failed.</item>
/// <item>Its details are the service's own, with a <c>google.rpc.ResourceInfo</c> naming the service when it sent none.</item>
/// </list>
/// </summary>
public sealed class DownstreamException : RpcException
{
    private DownstreamException(Status status, Metadata trailers, string service, RpcException cause, bool neverReached)
        : base(status, trailers, status.Detail)
    {
        Service = service;
        Cause = cause;
        NeverReachedTheService = neverReached;
    }

    /// <summary>The role name of the service at fault (<c>memory</c>, <c>llm-gateway</c>...).</summary>
    public string Service { get; }

    /// <summary>The failure as the call met it.</summary>
    public RpcException Cause { get; }

    /// <summary>
    /// Whether the call failed before reaching the service (its connection could not be made), so sending it again
    /// cannot do its work twice.
    /// </summary>
    public bool NeverReachedTheService { get; }

    /// <summary>The failure <paramref name="cause"/> of a call to <paramref name="service"/> (a role name), whose gRPC service is <paramref name="descriptor"/>.</summary>
    public static DownstreamException From(string service, ServiceDescriptor descriptor, RpcException cause)
    {
        ArgumentNullException.ThrowIfNull(cause);
        ArgumentNullException.ThrowIfNull(descriptor);
        var code = cause.StatusCode switch
        {
            StatusCode.OK or StatusCode.Unknown => StatusCode.Internal,
            StatusCode.Cancelled => StatusCode.Unavailable, // not by the caller: the service dropped the call
            _ => cause.StatusCode,
        };
        var detail = cause.Status.Detail;
        var remote = cause.GetRpcStatus();
        // A failure another service already named (it called one further on) keeps its words: one name is enough.
        var named = remote is not null && remote.Details.Any(any => any.Is(Google.Rpc.ResourceInfo.Descriptor)
            && any.Unpack<Google.Rpc.ResourceInfo>().ResourceType.EndsWith("Service", StringComparison.Ordinal));
        var message = named ? detail : cause.StatusCode switch
        {
            StatusCode.Unavailable or StatusCode.Cancelled => $"The {service} service is unavailable: {detail}",
            StatusCode.DeadlineExceeded when detail is "" or "Deadline Exceeded" => $"The {service} service did not answer before the call's deadline.",
            StatusCode.DeadlineExceeded => $"The {service} service ran out of time: {detail}",
            StatusCode.InvalidArgument or StatusCode.NotFound or StatusCode.AlreadyExists or StatusCode.FailedPrecondition or StatusCode.OutOfRange
                or StatusCode.PermissionDenied or StatusCode.Unauthenticated or StatusCode.ResourceExhausted or StatusCode.Aborted => detail,
            _ => $"The {service} service failed: {detail}",
        };

        var status = new Google.Rpc.Status { Code = (int)code, Message = message };
        if (remote is not null)
        {
            status.Details.Add(remote.Details);
        }

        if (!status.Details.Any(detail => detail.Is(Google.Rpc.ResourceInfo.Descriptor)))
        {
            status.Details.Add(Any.Pack(ResourceOf(service, descriptor, $"failed with {code}")));
        }

        var rpc = status.ToRpcException();
        return new DownstreamException(new Status(code, message, cause), rpc.Trailers, service, cause, UnavailableRetry.NothingWasSent(cause));
    }

    /// <summary>A detail naming <paramref name="service"/> (a role, whose gRPC service is <paramref name="descriptor"/>) and what went wrong with it.</summary>
    public static Google.Rpc.ResourceInfo ResourceOf(string service, ServiceDescriptor descriptor, string description)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return new() { ResourceType = descriptor.FullName, ResourceName = service, Description = description };
    }
}
