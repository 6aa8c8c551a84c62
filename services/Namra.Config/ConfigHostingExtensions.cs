using Namra.Hosting.Roles;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Namra.Config.Options;
using Namra.Config.Registry;
using Namra.Hosting;

namespace Namra.Config;

/// <summary>Registers and maps the config service on a Namra host.</summary>
public static class ConfigHostingExtensions
{
    /// <summary>The role: its name, the key of its address, its gRPC service, how it is added and mapped.</summary>
    public static NamraRole Role { get; } = new(Contracts.ServiceRoles.Config, "Config", () => Contracts.V1.ConfigService.Descriptor, builder => builder.AddConfigService(), app => app.MapConfigService())
    {
        // Called from other processes by these roles only (with a service key, others are refused).
        CalledBy = [Contracts.ServiceRoles.Orchestrator],
    };

    /// <summary>Adds the config service: options, loader, registry, and the agents-folder watcher.</summary>
    public static IHostApplicationBuilder AddConfigService(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddNamraSettings<ConfigServiceOptions, ConfigServiceOptionsValidator>(ConfigServiceOptions.SectionName)
            .Bind(builder.Configuration.GetSection(ConfigServiceOptions.SectionName));
        builder.Services.AddSingleton(services => new AgentLoader(services.GetRequiredService<IOptions<ConfigServiceOptions>>().Value.ToLimits()));
        builder.Services.AddSingleton(services =>
        {
            var options = services.GetRequiredService<IOptions<ConfigServiceOptions>>().Value;
            return new InlineAgentLoader(new AgentLoader(
                options.ToLimits(),
                name => options.AllowsInlineVariable(name) ? Environment.GetEnvironmentVariable(name) : null,
                "definitions sent over the API read only the variables in Namra:Config:InlineVariables; give a default (`${NAME:-value}`) or ask the operator to allow it"));
        });
        builder.Services.AddSingleton<AgentRegistry>();
        builder.Services.AddSingleton<AgentReferences>();
        builder.Services.AddSingleton<AgentFolderWatcher>();
        builder.Services.AddHostedService(services => services.GetRequiredService<AgentFolderWatcher>());
        // Calls from this process (the orchestrator, the memory service's embedder) go straight to the handler.
        builder.Services.AddNamraGrpcService<ConfigGrpcService, Namra.Contracts.V1.ConfigService.ConfigServiceBase>(Contracts.ServiceRoles.Config, Namra.Contracts.V1.ConfigService.BindService);
        return builder;
    }

    /// <summary>Maps <c>namra.v1.ConfigService</c>.</summary>
    public static WebApplication MapConfigService(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapNamraGrpcService<ConfigGrpcService>();
        return app;
    }
}
