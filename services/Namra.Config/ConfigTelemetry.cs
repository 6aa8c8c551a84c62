using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Namra.Config;

/// <summary>Traces and metrics of the config service (exported over OTLP and on <c>/metrics</c>).</summary>
internal static class ConfigTelemetry
{
    public const string Name = "Namra.Config";

    public static readonly ActivitySource ActivitySource = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Definitions validated, by <c>result</c> (valid, invalid) and <c>format</c>.</summary>
    public static readonly Counter<long> Validations = Meter.CreateCounter<long>(
        "namra.config.validations", "{definition}", "Agent definitions parsed and validated.");

    /// <summary>Time to parse and validate one definition.</summary>
    public static readonly Histogram<double> ValidationDuration = Meter.CreateHistogram<double>(
        "namra.config.validation.duration", "s", "Time to parse and validate one agent definition.");

    /// <summary>Reloads of the agents folder, by <c>result</c>.</summary>
    public static readonly Counter<long> FolderReloads = Meter.CreateCounter<long>(
        "namra.config.folder.reloads", "{reload}", "Reloads of the agents folder.");

    public static class Attributes
    {
        public const string AgentName = "namra.agent.name";
        public const string AgentVersion = "namra.agent.version";
        public const string Format = "namra.agent.format";
        public const string Result = "namra.result";
        public const string Errors = "namra.diagnostics.errors";
    }
}
