using Microsoft.Extensions.Logging;

namespace Namra.Config;

internal static partial class Log
{
    [LoggerMessage(EventId = 2001, EventName = "FolderLoaded", Level = LogLevel.Information,
        Message = "Loaded agents folder {Path}: {Valid} valid file(s), {Invalid} invalid")]
    public static partial void FolderLoaded(ILogger logger, string path, int valid, int invalid);

    [LoggerMessage(EventId = 2002, EventName = "InvalidAgentFile", Level = LogLevel.Warning,
        Message = "Agent file {Path} is invalid and was not loaded: {FirstProblem} ({Count} problem(s))")]
    public static partial void InvalidAgentFile(ILogger logger, string path, string firstProblem, int count);

    [LoggerMessage(EventId = 2003, EventName = "FolderReloadFailed", Level = LogLevel.Error,
        Message = "Reloading agents folder {Path} failed; the previous definitions stay in use")]
    public static partial void FolderReloadFailed(ILogger logger, Exception exception, string path);

    [LoggerMessage(EventId = 2004, EventName = "AgentRegistered", Level = LogLevel.Information,
        Message = "Registered agent {Name}@{Version} ({ContentHash})")]
    public static partial void AgentRegistered(ILogger logger, string name, string version, string contentHash);
}
