using Microsoft.AspNetCore.Builder;

namespace Namra.LlmGateway;

/// <summary>Registers and maps the LlmGateway service on a Namra host.</summary>
public static class LlmGatewayHostingExtensions
{
    /// <summary>Adds the service's dependencies.</summary>
    public static WebApplicationBuilder AddLlmGateway(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder;
    }

    /// <summary>Maps <c>namra.v1.LlmGatewayService</c>.</summary>
    public static WebApplication MapLlmGateway(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGrpcService<LlmGatewayGrpcService>();
        return app;
    }
}
