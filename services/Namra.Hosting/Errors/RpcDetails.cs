using Google.Protobuf;
using Grpc.Core;

namespace Namra.Hosting.Errors;

/// <summary>Reads the rich error details (<c>grpc-status-details-bin</c>) of a failed call to another service.</summary>
public static class RpcDetails
{
    /// <summary>The details of type <typeparamref name="T"/> carried by the exception.</summary>
    public static IReadOnlyList<T> Of<T>(RpcException exception) where T : class, IMessage<T>, new()
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception.GetRpcStatus() is not { } status)
        {
            return [];
        }

        var descriptor = new T().Descriptor;
        return [.. status.Details.Where(any => any.Is(descriptor)).Select(any => any.Unpack<T>())];
    }
}
