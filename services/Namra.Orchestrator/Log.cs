using Microsoft.Extensions.Logging;

namespace Namra.Orchestrator;

internal static partial class Log
{
    [LoggerMessage(EventId = 6001, Level = LogLevel.Error, Message = "Run {RunId} failed unexpectedly")]
    public static partial void RunFailed(ILogger logger, Exception exception, string runId);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Error, Message = "Run {RunId} ended but could not be saved")]
    public static partial void SaveFailed(ILogger logger, Exception exception, string runId);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Debug, Message = "Refused a REST body for {Path}: {Problem}")]
    public static partial void BodyRefused(ILogger logger, string path, string problem);
}
