using Microsoft.AspNetCore.Builder;

namespace Namra.Memory;

/// <summary>Registers and maps the Memory service on a Namra host.</summary>
public static class MemoryHostingExtensions
{
    /// <summary>Adds the service's dependencies.</summary>
    public static WebApplicationBuilder AddMemory(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder;
    }

    /// <summary>Maps <c>namra.v1.MemoryService</c>.</summary>
    public static WebApplication MapMemory(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGrpcService<MemoryGrpcService>();
        return app;
    }
}
