using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Namra.LlmGateway.Options;
using Namra.LlmGateway.Pricing;
using Namra.LlmGateway.Providers;

namespace Namra.LlmGateway;

/// <summary>Registers and maps the LLM gateway on a Namra host.</summary>
public static class LlmGatewayHostingExtensions
{
    /// <summary>Adds the gateway: options, pricing and providers.</summary>
    public static WebApplicationBuilder AddLlmGateway(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<LlmGatewayOptions>()
            .Bind(builder.Configuration.GetSection(LlmGatewayOptions.SectionName))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<LlmGatewayOptions>, LlmGatewayOptionsValidator>();
        builder.Services.AddSingleton(services => new PricingTable(services.GetRequiredService<IOptions<LlmGatewayOptions>>().Value.Models));
        builder.Services.AddSingleton<ILlmProvider, ScriptedProvider>();
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
