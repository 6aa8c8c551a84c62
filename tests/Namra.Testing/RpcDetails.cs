using Google.Protobuf;
using Grpc.Core;

namespace Namra.Testing;

/// <summary>Reads the rich error details (<c>grpc-status-details-bin</c>) of a failed call.</summary>
public static class RpcDetails
{
    /// <summary>The details of type <typeparamref name="T"/> carried by the exception.</summary>
    public static IReadOnlyList<T> Of<T>(RpcException exception) where T : class, IMessage<T>, new()
    {
        ArgumentNullException.ThrowIfNull(exception);
        var status = exception.GetRpcStatus();
        if (status is null)
        {
            return [];
        }

        var descriptor = new T().Descriptor;
        return status.Details.Where(any => any.Is(descriptor)).Select(any => any.Unpack<T>()).ToList();
    }
}
