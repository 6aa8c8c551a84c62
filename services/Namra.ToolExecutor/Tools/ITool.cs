using System.Text.Json;
using Namra.Contracts.V1;

namespace Namra.ToolExecutor.Tools;

/// <summary>What a tool returned, for the model. An error result is a result: the model reads it and corrects.</summary>
internal sealed record ToolOutcome(string Content, bool IsError = false)
{
    public static ToolOutcome Error(string message) => new(message, IsError: true);
}

/// <summary>
/// One call of a tool: the tool's name, the key that identifies the call for its whole life (the run's id and the
/// model's call id), sent to external systems that deduplicate (<c>Idempotency-Key</c>), so a call sent again after
/// an interruption is recognised; and the model's call id, the run and the agent, for tool providers.
/// </summary>
internal sealed record ToolCallInfo(string Name, string IdempotencyKey, string CallId = "", string RunId = "", string AgentName = "");

/// <summary>A tool the model sees: its name, description and JSON Schema of arguments.</summary>
internal sealed record ToolDescription(string Name, string Description, string InputSchemaJson);

/// <summary>
/// One kind of tool (a built-in, MCP, a tool provider). Configured per agent entry; describes the tools the entry
/// provides and runs calls of them. Implementations are bounded in time (they honour the token) and report
/// failures as error outcomes, throwing only for bugs.
/// </summary>
internal interface ITool
{
    /// <summary>The tool type this implementation serves.</summary>
    ToolType Type { get; }

    /// <summary>The tools an agent entry provides; a built-in provides one, named as the entry.</summary>
    Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken);

    /// <summary>Runs one call whose arguments already match the tool's schema.</summary>
    Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken);

    /// <summary>
    /// Whether running this call twice has the effect of running it once (a calculation, a read), so a call
    /// interrupted by a lost orchestrator replica may run again. No, unless the tool knows better.
    /// </summary>
    bool IsIdempotent(ToolConfig config, JsonElement arguments) => false;

    /// <summary>
    /// Why an entry sent by an untrusted caller must not run (it would run programs, read files or databases, reach
    /// private networks, or send this process's environment); null when it may. Refused unless the tool knows better.
    /// </summary>
    string? RefuseUntrusted(ToolConfig config) =>
        "it can run programs, read files or databases, or reach private networks";

    /// <summary>Whether every call this entry allows is idempotent, whatever its arguments (what the entry's settings permit).</summary>
    bool IsAlwaysIdempotent(ToolConfig config) => false;
}
