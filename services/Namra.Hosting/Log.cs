using Microsoft.Extensions.Logging;

namespace Namra.Hosting;

internal static partial class Log
{
    [LoggerMessage(EventId = 1001, EventName = "UnhandledException", Level = LogLevel.Error,
        Message = "Unhandled exception in {GrpcMethod} (trace id {TraceId}); the caller got INTERNAL")]
    public static partial void UnhandledException(ILogger logger, Exception exception, string grpcMethod, string traceId);

    [LoggerMessage(EventId = 1002, EventName = "Listening", Level = LogLevel.Information,
        Message = "Namra {Roles} listening: gRPC on {GrpcAddress}, HTTP (metrics, REST) on {HttpAddress}")]
    public static partial void Listening(ILogger logger, string roles, Uri grpcAddress, Uri httpAddress);

    [LoggerMessage(EventId = 1003, EventName = "Draining", Level = LogLevel.Information,
        Message = "Stopping: health reports NOT_SERVING, in-flight calls get up to {ShutdownTimeout} to finish")]
    public static partial void Draining(ILogger logger, TimeSpan shutdownTimeout);
}
