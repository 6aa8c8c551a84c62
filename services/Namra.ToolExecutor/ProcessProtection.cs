using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Namra.ToolExecutor.Tools;

namespace Namra.ToolExecutor;

/// <summary>
/// Makes the process that hosts the tool executor non-dumpable as it starts: the programs tools run (shell commands,
/// MCP servers over stdio) cannot read its environment or memory through <c>/proc</c>, where API keys live.
/// </summary>
internal sealed class ProcessProtection(ILogger<ProcessProtection> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsLinux() && !Native.MakeNonDumpable())
        {
            Log.NotDumpable(logger);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
