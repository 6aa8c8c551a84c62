using Google.Protobuf.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Namra.Hosting.Roles;

/// <summary>
/// One service a Namra process can host, described by the library that implements it: its name (as
/// <c>--services</c> says it), the key of its address under <c>Namra:Services</c> (<c>Namra__Services__LlmGateway</c>),
/// its gRPC service (whose methods' <c>idempotency_level</c> say what callers may retry), and how it is added to a
/// host and mapped, and which roles call it (<see cref="CalledBy"/>). The hosting library knows no service; the server
/// lists the roles once.
/// </summary>
/// <param name="Name">The role's name in <c>--services</c>.</param>
/// <param name="AddressKey">The key of its address under <c>Namra:Services</c>.</param>
/// <param name="Describe">
/// Its gRPC service's descriptor, asked for only when needed: building the protobuf descriptors of a service's files
/// is a few milliseconds of every start otherwise, and an embedded run that meets no failure never needs them.
/// </param>
/// <param name="Add">Adds the service to a host: a server's, or one whose services are called only from its own process.</param>
/// <param name="Map">Maps its endpoints.</param>
public sealed record NamraRole(string Name, string AddressKey, Func<ServiceDescriptor> Describe, Action<IHostApplicationBuilder> Add, Action<WebApplication> Map)
{
    private readonly Lazy<ServiceDescriptor> _service = new(Describe);

    /// <summary>The role's gRPC service.</summary>
    public ServiceDescriptor Service => _service.Value;

    /// <summary>
    /// The roles that call this service from other processes; with a service key, only they are answered
    /// (<see cref="Trust.ServiceTrustInterceptor"/>). Empty for a service anyone may call (the public API, which checks its
    /// callers itself).
    /// </summary>
    public IReadOnlyList<string> CalledBy { get; init; } = [];
}

/// <summary>
/// The services one Namra process hosts, chosen by <c>--services config,llm-gateway,...</c> or the
/// <c>NAMRA_SERVICES</c> variable (the command line wins); every known role when neither is set. One binary with
/// many roles, as Grafana Mimir's <c>-target</c>: a container runs one role, the CLI runs them all.
/// </summary>
public sealed class NamraRoles
{
    /// <summary>The configuration key bound to <c>--services</c>.</summary>
    public const string CommandLineKey = "services";

    /// <summary>The environment variable naming the roles.</summary>
    public const string EnvironmentVariable = "NAMRA_SERVICES";

    private readonly HashSet<string> _enabled;

    /// <summary>The roles <paramref name="enabled"/> names, of those <paramref name="known"/>.</summary>
    public NamraRoles(IReadOnlyList<NamraRole> known, IEnumerable<string> enabled)
    {
        Known = known ?? throw new ArgumentNullException(nameof(known));
        _enabled = [.. enabled];
    }

    /// <summary>Every role this build knows, in the order the server lists them.</summary>
    public IReadOnlyList<NamraRole> Known { get; }

    /// <summary>The roles hosted here, in <see cref="Known"/> order.</summary>
    public IEnumerable<NamraRole> EnabledRoles => Known.Where(role => _enabled.Contains(role.Name));

    /// <summary>The names of the roles hosted here, in <see cref="Known"/> order.</summary>
    public IEnumerable<string> Enabled => EnabledRoles.Select(role => role.Name);

    /// <summary>Whether this process hosts the role named <paramref name="name"/>.</summary>
    public bool Hosts(string name) => _enabled.Contains(name);

    /// <summary>The known role named <paramref name="name"/>; null when there is none.</summary>
    public NamraRole? Find(string name) => Known.FirstOrDefault(role => role.Name == name);

    /// <summary>Reads the roles from configuration; an unknown role name stops the process with a clear message.</summary>
    /// <exception cref="OptionsValidationException">A role name is unknown, or the list is empty.</exception>
    public static NamraRoles From(IConfiguration configuration, IReadOnlyList<NamraRole> known)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(known);
        var (source, value) = configuration[CommandLineKey] is { } fromCommandLine
            ? ("--services", fromCommandLine)
            : (EnvironmentVariable, configuration[EnvironmentVariable]);
        return value is null ? new NamraRoles(known, known.Select(role => role.Name)) : Parse(value, known, source);
    }

    /// <summary>Parses a comma-separated role list such as <c>config,memory</c> or <c>all</c>.</summary>
    /// <exception cref="OptionsValidationException">A role name is unknown, or the list is empty.</exception>
    public static NamraRoles Parse(string value, IReadOnlyList<NamraRole> known, string source = EnvironmentVariable)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(known);
        var names = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(name => name.ToLowerInvariant())
            .ToHashSet(StringComparer.Ordinal);
        var all = string.Join(", ", known.Select(role => role.Name));
        if (names.Count == 0)
        {
            throw Failure(source, $"empty; name one or more of: {all} (or 'all').");
        }

        if (names.Contains("all"))
        {
            return new NamraRoles(known, known.Select(role => role.Name));
        }

        var unknown = names.Where(name => known.All(role => role.Name != name)).Order(StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
        {
            throw Failure(source, $"unknown service(s) {string.Join(", ", unknown.Select(u => $"'{u}'"))}; known services are {all} (or 'all').");
        }

        return new NamraRoles(known, names);
    }

    private static OptionsValidationException Failure(string source, string message) =>
        new(source, typeof(NamraRoles), [message]);
}
