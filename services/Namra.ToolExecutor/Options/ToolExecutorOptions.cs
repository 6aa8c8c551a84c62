using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Namra.ToolExecutor.Options;

/// <summary>Settings of the tool executor; section <c>Namra:ToolExecutor</c>.</summary>
[System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "[Range(typeof(TimeSpan), ...)] is metadata here: the options validation source generator checks it with its own strongly typed copy, no TypeConverter.")]
public sealed class ToolExecutorOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Namra:ToolExecutor";

    /// <summary>Longest a call may run when its tool sets no <c>timeout</c>; the caller's deadline caps it either way. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most characters of a tool's output returned to the model; the rest is cut with a note. Default 65,536.</summary>
    [Range(256, 16 * 1024 * 1024)]
    public int MaxOutputCharacters { get; set; } = 65_536;

    /// <summary>Largest arguments JSON accepted, in characters. Default 1 MiB.</summary>
    [Range(256, 16 * 1024 * 1024)]
    public int MaxArgumentsCharacters { get; set; } = 1024 * 1024;

    /// <summary>
    /// Programs an <c>mcp</c> entry may start over stdio (its <c>command</c>, compared exactly); any when empty.
    /// Set it where agent definitions come from callers rather than from the operator.
    /// </summary>
    public IList<string> AllowedMcpCommands { get; } = [];

    /// <summary>Most MCP servers open at once. Default 32.</summary>
    [Range(1, 4096)]
    public int MaxMcpSessions { get; set; } = 32;

    /// <summary>An MCP server unused this long is closed (a stdio server is stopped). Default 10 minutes.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan McpIdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Account that <c>builtin.shell</c> commands run as when the tool executor runs as root (a name from
    /// <c>/etc/passwd</c> or a numeric id), with no capabilities. Default <c>nobody</c>; empty runs them as root, which
    /// lets a command do anything root can. The commands' working directories must be readable (and writable, for
    /// commands that write) by this account.
    /// </summary>
    public string ShellUser { get; set; } = "nobody";

    /// <summary>How <c>builtin.shell</c> commands are kept apart from the executor and each other. Default <see cref="ShellIsolation.Auto"/>.</summary>
    public ShellIsolation ShellIsolation { get; set; } = ShellIsolation.Auto;

    /// <summary>Longest an MCP server may take to start and answer its initialization. Default 60 s.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan McpStartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The interpreter that runs <c>python</c> entries' plugins (<c>INTERPRETER -m namra.plugin</c>); it needs grpcio and
    /// protobuf (Debian: <c>python3-grpcio</c>, <c>python3-protobuf</c>). Default <c>/usr/bin/python3</c> where it
    /// exists, else <c>python3</c> on the PATH. Set it to a virtual environment's <c>bin/python</c> for tools with
    /// dependencies of their own.
    /// </summary>
    public string PythonInterpreter { get; set; } = "";

    /// <summary>Most Python plugins running at once (one per distinct module and environment). Default 32.</summary>
    [Range(1, 4096)]
    public int MaxPythonPlugins { get; set; } = 32;

    /// <summary>A Python plugin with no call for this long is stopped; the next call starts it again. Default 10 minutes.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan PythonIdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Longest a Python plugin may take to import its module and serve its tools. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan PythonStartTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>How shell commands are isolated.</summary>
public enum ShellIsolation
{
    /// <summary>A PID namespace with its own <c>/proc</c> where the system allows it (as root, or with user namespaces), else a process group.</summary>
    Auto,

    /// <summary>A process group, killed whole when the command ends: the command can see the machine's other processes.</summary>
    ProcessGroup,
}

/// <summary>Validates <see cref="ToolExecutorOptions"/> at start-up (source-generated).</summary>
[OptionsValidator]
internal sealed partial class ToolExecutorOptionsValidator : IValidateOptions<ToolExecutorOptions>;
