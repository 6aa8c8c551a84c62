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
    /// <summary>Builds a host for the roles named in configuration (<c>--services</c> / <c>NAMRA_SERVICES</c>).</summary>
    /// <exception cref="OptionsValidationException">A role name is unknown.</exception>
    public static WebApplication Build(WebApplicationBuilder builder) => Build(builder, listen: true);

    /// <summary>
    /// Builds a host whose services are called only from this process, through
    /// <see cref="Namra.Hosting.Clients.NamraServiceChannels"/> (the CLI's embedded mode): no listener, no endpoints.
    /// </summary>
    /// <exception cref="OptionsValidationException">A role name is unknown.</exception>
    public static WebApplication BuildInProcess(WebApplicationBuilder builder) => Build(builder, listen: false);

    /// <summary>The services this build can host, each described by its own library.</summary>
    public static IReadOnlyList<NamraRole> Roles { get; } =
        [ConfigHostingExtensions.Role, LlmGatewayHostingExtensions.Role, ToolExecutorHostingExtensions.Role, MemoryHostingExtensions.Role, OrchestratorHostingExtensions.Role];

    private static WebApplication Build(WebApplicationBuilder builder, bool listen)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var roles = NamraRoles.From(builder.Configuration, Roles);
        builder.AddNamraDefaults(roles, scraped: listen);
        foreach (var role in roles.EnabledRoles)
        {
            role.Add(builder);
        }

        if (!listen)
        {
            builder.WithoutListeners();
            return builder.Build();
        }

        var app = builder.Build();
        app.MapNamraDefaults();
        foreach (var role in roles.EnabledRoles)
        {
            role.Map(app);
        }

        return app;
    }
}
