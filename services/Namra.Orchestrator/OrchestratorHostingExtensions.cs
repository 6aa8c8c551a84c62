using Microsoft.AspNetCore.Builder;

namespace Namra.Orchestrator;

/// <summary>Registers and maps the Orchestrator service on a Namra host.</summary>
public static class OrchestratorHostingExtensions
{
    /// <summary>Adds the service's dependencies.</summary>
    public static WebApplicationBuilder AddOrchestrator(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder;
    }

    /// <summary>Maps <c>namra.v1.AgentService</c>.</summary>
    public static WebApplication MapOrchestrator(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGrpcService<AgentGrpcService>();
        return app;
    }
}
