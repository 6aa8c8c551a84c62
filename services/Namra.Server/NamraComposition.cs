using Microsoft.Extensions.Options;
using Namra.Config;
using Namra.Hosting;
using Namra.Hosting.Roles;
using Namra.LlmGateway;
using Namra.Memory;
using Namra.Orchestrator;
using Namra.ToolExecutor;

namespace Namra.Server;

/// <summary>
/// Which services a Namra process hosts, in one place, shared by <c>namra-server</c>, the CLI's embedded mode
/// and the integration tests, so every mode runs the same composition.
/// </summary>
public static class NamraComposition
{
    /// <summary>
    /// Builds a server for the roles named in configuration (<c>--services</c> / <c>NAMRA_SERVICES</c>): their gRPC
    /// services, REST, health, reflection and <c>/metrics</c> on the ports of <c>Namra:Host</c>.
    /// </summary>
    /// <exception cref="OptionsValidationException">A role name is unknown.</exception>
    public static WebApplication Build(WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var roles = AddRoles(builder, scraped: true);
        builder.ListenOnNamraPorts();
        BuildDescriptorsMeanwhile(roles);
        var app = builder.Build();
        app.MapNamraDefaults();
        foreach (var role in roles.EnabledRoles)
        {
            role.Map(app);
        }

        return app;
    }

    /// <summary>
    /// Builds a host whose services are called only from this process, through
    /// <see cref="Namra.Hosting.Clients.NamraServiceChannels"/> (the CLI's embedded mode): a generic host, with no web
    /// server, listener or endpoint. Building ASP.NET Core's web host was some 3 ms of a NativeAOT <c>namra run</c>'s
    /// start (its builder looks up a delegate's method, which makes the runtime build its table of every method).
    /// </summary>
    /// <exception cref="OptionsValidationException">A role name is unknown.</exception>
    public static IHost BuildInProcess(HostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        AddRoles(builder, scraped: false);
        return builder.Build();
    }

    /// <summary>The services this build can host, each described by its own library.</summary>
    public static IReadOnlyList<NamraRole> Roles { get; } =
        [ConfigHostingExtensions.Role, LlmGatewayHostingExtensions.Role, ToolExecutorHostingExtensions.Role, MemoryHostingExtensions.Role, OrchestratorHostingExtensions.Role];

    private static NamraRoles AddRoles(IHostApplicationBuilder builder, bool scraped)
    {
        var roles = NamraRoles.From(builder.Configuration, Roles);
        builder.AddNamraDefaults(roles, scraped);
        foreach (var role in roles.EnabledRoles)
        {
            role.Add(builder);
        }

        return roles;
    }

    /// <summary>
    /// Builds the hosted services' protobuf descriptors on a thread of their own while the host is built and mapped:
    /// JSON transcoding reads the public API's when it is mapped, at the end of a start, and building it with the
    /// files it imports (<c>google/protobuf/descriptor.proto</c> among them) took some 10 ms of a start on the main
    /// thread. Each descriptor is built once, by whichever thread asks first; the other waits for it.
    /// </summary>
    private static void BuildDescriptorsMeanwhile(NamraRoles roles)
    {
        var enabled = roles.EnabledRoles.ToList();
        new Thread(() =>
        {
            foreach (var role in enabled)
            {
                try
                {
                    _ = role.Service;
                }
#pragma warning disable CA1031 // A descriptor that fails to build fails again, with its exception, where it is used.
                catch (Exception)
#pragma warning restore CA1031
                {
                }
            }
        })
        { IsBackground = true, Name = "namra descriptors" }.Start();
    }
}
