using System.Diagnostics;
using System.Diagnostics.Metrics;
using Namra.Hosting.Telemetry;

namespace Namra.ToolExecutor;

/// <summary>Traces and metrics of the tool executor, named by the OpenTelemetry GenAI semantic conventions.</summary>
internal static class ToolExecutorTelemetry
{
    public const string Name = "Namra.ToolExecutor";

    public static readonly ActivitySource ActivitySource = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Tool calls, by tool, type, outcome (ok, error, timeout, invalid_arguments, interrupted) and agent.</summary>
    public static readonly NamraCounter Calls = NamraMetrics.Counter(Meter,
        "namra.tool.calls", "{call}", "Tool calls, by outcome.", "tool", "type", "outcome", "agent");

    // Tool and agent names come from definitions, which callers may send inline: a bounded number of series each.
    public static readonly BoundedLabel Tools = new(500);
    public static readonly BoundedLabel Agents = new(500);

    /// <summary>Time a tool call took.</summary>
    public static readonly NamraHistogram Duration = NamraMetrics.DurationHistogram(Meter,
        "namra.tool.call.duration", "Time of a tool call.", "tool", "type");

    public static class Attributes
    {
        public const string OperationName = "gen_ai.operation.name";
        public const string ToolName = "gen_ai.tool.name";
        public const string ToolCallId = "gen_ai.tool.call.id";
        public const string ToolType = "gen_ai.tool.type";
        public const string Outcome = "namra.tool.outcome";
        public const string RunId = "namra.run.id";
        public const string AgentName = "namra.agent.name";
    }
}
