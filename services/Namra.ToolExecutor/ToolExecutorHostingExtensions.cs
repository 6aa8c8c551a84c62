using Microsoft.AspNetCore.Builder;

namespace Namra.ToolExecutor;

/// <summary>Registers and maps the ToolExecutor service on a Namra host.</summary>
public static class ToolExecutorHostingExtensions
{
    /// <summary>Adds the service's dependencies.</summary>
    public static WebApplicationBuilder AddToolExecutor(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder;
    }

    /// <summary>Maps <c>namra.v1.ToolExecutorService</c>.</summary>
    public static WebApplication MapToolExecutor(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGrpcService<ToolExecutorGrpcService>();
        return app;
    }
}
