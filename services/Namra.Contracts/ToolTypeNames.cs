using Namra.Contracts.V1;

namespace Namra.Contracts;

/// <summary>The names tool types have in agent files (<c>type: builtin.shell</c>), for messages and metric labels.</summary>
public static class ToolTypeNames
{
    /// <summary>The agent-file name of <paramref name="type"/>; <c>unspecified</c> for a value this build does not know.</summary>
    public static string Of(ToolType type) => type switch
    {
        ToolType.BuiltinHttp => "builtin.http",
        ToolType.BuiltinFilesystem => "builtin.filesystem",
        ToolType.BuiltinCalculator => "builtin.calculator",
        ToolType.BuiltinDatabase => "builtin.database",
        ToolType.BuiltinShell => "builtin.shell",
        ToolType.Mcp => "mcp",
        ToolType.Grpc => "grpc",
        ToolType.Python => "python",
        ToolType.Agent => "agent",
        _ => "unspecified",
    };
}
