using System.Text.Json.Serialization;

namespace Namra.ToolExecutor.Tools;

/// <summary>An MCP server's settings as written, before <c>${VAR}</c> is resolved: the identity of its session.</summary>
internal sealed record McpServerIdentity(
    string Transport,
    string Command,
    IReadOnlyList<string> Arguments,
    IReadOnlyList<KeyValuePair<string, string>> Environment,
    string Url,
    IReadOnlyList<KeyValuePair<string, string>> Headers);

/// <summary>A Python plugin's settings as written: the identity of its process.</summary>
internal sealed record PythonPluginIdentity(string Module, IReadOnlyList<KeyValuePair<string, string>> Variables);

/// <summary>The identities of shared instances (<see cref="SharedInstances{T}"/>) as JSON, by generated code.</summary>
[JsonSerializable(typeof(McpServerIdentity))]
[JsonSerializable(typeof(PythonPluginIdentity))]
internal sealed partial class InstanceKeys : JsonSerializerContext;
