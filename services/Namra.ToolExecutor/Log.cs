using Microsoft.Extensions.Logging;

namespace Namra.ToolExecutor;

internal static partial class Log
{
    [LoggerMessage(EventId = 4001, EventName = "ToolFailed", Level = LogLevel.Error,
        Message = "Tool {ToolName} ({ToolType}) failed unexpectedly; the model got an error result")]
    public static partial void ToolFailed(ILogger logger, Exception exception, string toolName, string toolType);
}
