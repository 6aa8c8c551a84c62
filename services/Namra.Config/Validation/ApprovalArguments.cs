using Namra.Contracts.V1;

namespace Namra.Config.Validation;

/// <summary>
/// The arguments a built-in tool's calls take, and for those that take few values, the values its settings allow:
/// what an <c>approval</c> condition may name. MCP and gRPC tools describe their arguments only when they run: null.
/// </summary>
internal static class ApprovalArguments
{
    public static IReadOnlyDictionary<string, IReadOnlyList<string>?>? Of(ToolConfig tool) => tool.Type switch
    {
        ToolType.BuiltinHttp => new Dictionary<string, IReadOnlyList<string>?>
        {
            ["url"] = null,
            ["method"] = tool.Http is { AllowedMethods.Count: > 0 } http ? [.. http.AllowedMethods] : ["GET"],
            ["headers"] = null,
            ["body"] = null,
        },
        ToolType.BuiltinFilesystem => new Dictionary<string, IReadOnlyList<string>?>
        {
            ["operation"] = tool.Filesystem is { HasReadOnly: true, ReadOnly: false } ? ["read", "write", "list", "search"] : ["read", "list", "search"],
            ["path"] = null,
            ["content"] = null,
            ["query"] = null,
        },
        ToolType.BuiltinShell => new Dictionary<string, IReadOnlyList<string>?>
        {
            ["command"] = tool.Shell is { AllowedCommands.Count: > 0 } shell ? [.. shell.AllowedCommands] : null,
            ["args"] = null,
        },
        ToolType.BuiltinDatabase => new Dictionary<string, IReadOnlyList<string>?> { ["sql"] = null, ["parameters"] = null },
        ToolType.BuiltinCalculator => new Dictionary<string, IReadOnlyList<string>?> { ["expression"] = null },
        _ => null,
    };
}
