using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Namra.Hosting.Roles;

/// <summary>
/// The services one Namra process hosts, chosen by <c>--services config,llm-gateway,...</c> or the
/// <c>NAMRA_SERVICES</c> variable (the command line wins); all five when neither is set. One binary with
/// many roles, as Grafana Mimir's <c>-target</c>: a container runs one role, the CLI runs them all.
/// </summary>
public sealed record NamraRoles(bool Config, bool LlmGateway, bool ToolExecutor, bool Memory, bool Orchestrator)
{
    /// <summary>The configuration key bound to <c>--services</c>.</summary>
    public const string CommandLineKey = "services";

    /// <summary>The environment variable naming the roles.</summary>
    public const string EnvironmentVariable = "NAMRA_SERVICES";

    /// <summary>Every role name, in the order the run loop uses them.</summary>
    public static readonly IReadOnlyList<string> Names = ["config", "llm-gateway", "tool-executor", "memory", "orchestrator"];

    /// <summary>All five roles.</summary>
    public static NamraRoles All { get; } = new(true, true, true, true, true);

    /// <summary>The enabled role names, in <see cref="Names"/> order.</summary>
    public IEnumerable<string> Enabled =>
        Names.Where((_, index) => index switch
        {
            0 => Config,
            1 => LlmGateway,
            2 => ToolExecutor,
            3 => Memory,
            _ => Orchestrator,
        });

    /// <summary>Reads the roles from configuration; an unknown role name stops the process with a clear message.</summary>
    /// <exception cref="OptionsValidationException">A role name is unknown, or the list is empty.</exception>
    public static NamraRoles From(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var (source, value) = configuration[CommandLineKey] is { } fromCommandLine
            ? ("--services", fromCommandLine)
            : (EnvironmentVariable, configuration[EnvironmentVariable]);
        return value is null ? All : Parse(value, source);
    }

    /// <summary>Parses a comma-separated role list such as <c>config,memory</c> or <c>all</c>.</summary>
    /// <exception cref="OptionsValidationException">A role name is unknown, or the list is empty.</exception>
    public static NamraRoles Parse(string value, string source = EnvironmentVariable)
    {
        ArgumentNullException.ThrowIfNull(value);
        var names = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(name => name.ToLowerInvariant())
            .ToHashSet(StringComparer.Ordinal);
        if (names.Count == 0)
        {
            throw Failure(source, $"empty; name one or more of: {string.Join(", ", Names)} (or 'all').");
        }

        if (names.Contains("all"))
        {
            return All;
        }

        var unknown = names.Where(name => !Names.Contains(name)).Order(StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
        {
            throw Failure(source, $"unknown service(s) {string.Join(", ", unknown.Select(u => $"'{u}'"))}; "
                + $"known services are {string.Join(", ", Names)} (or 'all').");
        }

        return new NamraRoles(
            names.Contains("config"), names.Contains("llm-gateway"), names.Contains("tool-executor"),
            names.Contains("memory"), names.Contains("orchestrator"));
    }

    private static OptionsValidationException Failure(string source, string message) =>
        new(source, typeof(NamraRoles), [message]);
}
