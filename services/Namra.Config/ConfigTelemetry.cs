using System.Diagnostics;
using System.Diagnostics.Metrics;
using Namra.Hosting.Telemetry;

namespace Namra.Config;

/// <summary>Traces and metrics of the config service (exported over OTLP and on <c>/metrics</c>).</summary>
internal static class ConfigTelemetry
{
    public const string Name = "Namra.Config";

    public static readonly ActivitySource ActivitySource = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Definitions validated, by <c>result</c> (valid, invalid) and <c>format</c> (yaml, toml).</summary>
    public static readonly NamraCounter Validations = NamraMetrics.Counter(Meter,
        "namra.config.validations", "{definition}", "Agent definitions parsed and validated.", "result", "format");

    /// <summary>Time to parse and validate one definition, by <c>format</c>.</summary>
    public static readonly NamraHistogram ValidationDuration = NamraMetrics.DurationHistogram(Meter,
        "namra.config.validation.duration", "Time to parse and validate one agent definition.", "format");

    /// <summary>Reloads of the agents folder, by <c>result</c> (ok, error).</summary>
    public static readonly NamraCounter FolderReloads = NamraMetrics.Counter(Meter,
        "namra.config.folder.reloads", "{reload}", "Reloads of the agents folder.", "result");

    public static class Attributes
    {
        public const string AgentName = "namra.agent.name";
        public const string AgentVersion = "namra.agent.version";
        public const string Format = "namra.agent.format";
        public const string Result = "namra.result";
        public const string Errors = "namra.diagnostics.errors";
    }
}
