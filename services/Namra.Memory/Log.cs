using Microsoft.Extensions.Logging;

namespace Namra.Memory;

internal static partial class Log
{
    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "The {Store} memory store is not ready yet: {Reason}")]
    public static partial void StoreNotReady(ILogger logger, string store, string reason);
}
