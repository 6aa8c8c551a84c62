using Microsoft.Extensions.Logging;

namespace Namra.ToolExecutor;

internal static partial class Log
{
    [LoggerMessage(EventId = 4001, EventName = "ToolFailed", Level = LogLevel.Error,
        Message = "Tool {ToolName} ({ToolType}) failed unexpectedly; the model got an error result")]
    public static partial void ToolFailed(ILogger logger, Exception exception, string toolName, string toolType);

    [LoggerMessage(EventId = 4002, EventName = "ShellWithoutPidNamespace", Level = LogLevel.Warning,
        Message = "Shell tools run in a process group, not a PID namespace of their own (unshare is refused here: run as root, or allow user namespaces): commands see the other processes of this machine")]
    public static partial void ShellWithoutPidNamespace(ILogger logger);

    [LoggerMessage(EventId = 4003, EventName = "ShellSandboxMissing", Level = LogLevel.Warning,
        Message = "{Program} (util-linux) is not installed: shell tools run without it")]
    public static partial void ShellSandboxMissing(ILogger logger, string program);

    [LoggerMessage(EventId = 4004, EventName = "NotDumpable", Level = LogLevel.Warning,
        Message = "This process could not be made non-dumpable: commands of its own account could read its environment")]
    public static partial void NotDumpable(ILogger logger);

    [LoggerMessage(EventId = 4005, EventName = "PythonPluginStarted", Level = LogLevel.Information,
        Message = "Python plugin {Module} started, serving {ToolCount} tools")]
    public static partial void PythonPluginStarted(ILogger logger, string module, int toolCount);

    [LoggerMessage(EventId = 4006, EventName = "PythonPluginWrote", Level = LogLevel.Information,
        Message = "Python plugin {Module}: {Line}")]
    public static partial void PythonPluginWrote(ILogger logger, string module, string line);

    [LoggerMessage(EventId = 4007, EventName = "PythonPluginNotStopped", Level = LogLevel.Warning,
        Message = "Python plugin {Module} could not be stopped")]
    public static partial void PythonPluginNotStopped(ILogger logger, Exception exception, string module);

    [LoggerMessage(EventId = 4008, EventName = "ToolOutlivedItsTimeout", Level = LogLevel.Warning,
        Message = "Tool {ToolName} ({ToolType}) was still running at its timeout of {TimeoutSeconds} s, ignoring its cancellation: the call was answered with a timeout and the tool left to finish")]
    public static partial void ToolOutlivedItsTimeout(ILogger logger, string toolName, string toolType, double timeoutSeconds);
}
