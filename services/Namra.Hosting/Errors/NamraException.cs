using Google.Protobuf;
using Grpc.Core;

namespace Namra.Hosting.Errors;

/// <summary>
/// A failure that a caller can act on. Services throw these from domain code; the hosting interceptor turns
/// them into a gRPC status with the code, message and rich details they carry. Anything else becomes
/// <see cref="StatusCode.Internal"/> with a generic message.
/// </summary>
public class NamraException : Exception
{
    /// <summary>Creates an exception for a status code other than OK, UNKNOWN or INTERNAL.</summary>
    public NamraException(StatusCode statusCode, string message, IReadOnlyList<IMessage>? details = null, Exception? innerException = null)
        : base(message, innerException)
    {
        if (statusCode is StatusCode.OK or StatusCode.Unknown)
        {
            throw new ArgumentOutOfRangeException(nameof(statusCode), statusCode, "A failure needs a specific status code.");
        }

        StatusCode = statusCode;
        Details = details ?? [];
    }

    /// <summary>The gRPC status code that describes the failure.</summary>
    public StatusCode StatusCode { get; }

    /// <summary>Rich error details (google.rpc.* or namra.v1 messages) sent in <c>grpc-status-details-bin</c>.</summary>
    public IReadOnlyList<IMessage> Details { get; }
}

/// <summary>The caller sent something invalid: <c>INVALID_ARGUMENT</c> with a <c>google.rpc.BadRequest</c>.</summary>
public sealed class InvalidArgumentException(string message, IReadOnlyList<Google.Rpc.BadRequest.Types.FieldViolation> violations, IReadOnlyList<IMessage>? extraDetails = null)
    : NamraException(StatusCode.InvalidArgument, message, [new Google.Rpc.BadRequest { FieldViolations = { violations } }, .. extraDetails ?? []])
{
    /// <summary>Creates the exception for one invalid field.</summary>
    public InvalidArgumentException(string field, string description)
        : this($"{field}: {description}", [new Google.Rpc.BadRequest.Types.FieldViolation { Field = field, Description = description }])
    {
    }
}

/// <summary>The thing asked for does not exist: <c>NOT_FOUND</c> with a <c>google.rpc.ResourceInfo</c>.</summary>
public sealed class NotFoundException(string resourceType, string resourceName, string message)
    : NamraException(StatusCode.NotFound, message, [new Google.Rpc.ResourceInfo { ResourceType = resourceType, ResourceName = resourceName, Description = message }]);

/// <summary>The thing to create exists already, differently: <c>ALREADY_EXISTS</c>.</summary>
public sealed class AlreadyExistsException(string resourceType, string resourceName, string message)
    : NamraException(StatusCode.AlreadyExists, message, [new Google.Rpc.ResourceInfo { ResourceType = resourceType, ResourceName = resourceName, Description = message }]);
