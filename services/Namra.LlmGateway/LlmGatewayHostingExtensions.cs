using Namra.Hosting.Roles;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting;
using Namra.LlmGateway.Options;
using Namra.LlmGateway.Pricing;
using Namra.LlmGateway.Providers;
using Namra.LlmGateway.Providers.Anthropic;
using Namra.LlmGateway.Providers.OpenAI;
using Namra.LlmGateway.Resilience;

namespace Namra.LlmGateway;

/// <summary>Registers and maps the LLM gateway on a Namra host.</summary>
public static class LlmGatewayHostingExtensions
{
    /// <summary>The role: its name, the key of its address, its gRPC service, how it is added and mapped.</summary>
    public static NamraRole Role { get; } = new(Contracts.ServiceRoles.LlmGateway, "LlmGateway", () => Contracts.V1.LlmGatewayService.Descriptor, builder => builder.AddLlmGateway(), app => app.MapLlmGateway())
    {
        // Called from other processes by these roles only (with a service key, others are refused).
        CalledBy = [Contracts.ServiceRoles.Orchestrator, Contracts.ServiceRoles.Memory],
    };

    /// <summary>Adds the gateway: options, pricing and providers.</summary>
    public static IHostApplicationBuilder AddLlmGateway(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddNamraSettings<LlmGatewayOptions, LlmGatewayOptionsValidator>(LlmGatewayOptions.SectionName)
            .Bind(builder.Configuration.GetSection(LlmGatewayOptions.SectionName));
        builder.Services.AddSingleton(services => new PricingTable(services.GetRequiredService<IOptions<LlmGatewayOptions>>().Value.Models));
        // Provider keys from the secrets folder, else the environment.
        builder.Services.TryAddSingleton(services => new ProviderEndpoints(services.GetRequiredService<IOptions<LlmGatewayOptions>>(), services.GetRequiredService<Hosting.Secrets.SecretStore>().Get));
        // Deadlines come from each call. The factory's per-request logging (a scope and two Information lines per
        // call) is left out: the gateway's own span and metrics say more. A provider's redirect is not followed,
        // so the API key never goes to another host.
        builder.Services.AddHttpClient(HttpSend.ClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .RemoveAllLoggers()
            .ConfigurePrimaryHttpMessageHandler(services => new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                ConnectTimeout = services.GetRequiredService<IOptions<LlmGatewayOptions>>().Value.ConnectTimeout,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5), // follow provider DNS changes
                EnableMultipleHttp2Connections = true,
                ConnectCallback = ProviderConnections.ConnectAsync,
                // A run's trace id is Namra's: providers are third parties, and get it only when the operator says so.
                ActivityHeadersPropagator = services.GetRequiredService<IOptions<LlmGatewayOptions>>().Value.PropagateTraceContext
                    ? System.Diagnostics.DistributedContextPropagator.Current
                    : System.Diagnostics.DistributedContextPropagator.CreateNoOutputPropagator(),
            });
        builder.Services.TryAddSingleton<ProviderResilience>();
        builder.Services.AddSingleton<ProviderRateLimits>();
        builder.Services.AddSingleton<ILlmProvider, ScriptedProvider>();
        builder.Services.AddSingleton<ILlmProvider, AnthropicProvider>();
        builder.Services.AddSingleton<ILlmProvider>(services => OpenAi(services, LlmProvider.Openai));
        builder.Services.AddSingleton<ILlmProvider>(services => OpenAi(services, LlmProvider.OpenaiCompatible));
        // Calls from this process (the orchestrator, the memory service's embedder) go straight to the handler.
        builder.Services.AddNamraGrpcService<LlmGatewayGrpcService, Namra.Contracts.V1.LlmGatewayService.LlmGatewayServiceBase>(Contracts.ServiceRoles.LlmGateway, Namra.Contracts.V1.LlmGatewayService.BindService);
        return builder;
    }

    // Made here, not by ActivatorUtilities: its first use builds a table of every method in a NativeAOT process (a few
    // milliseconds of every namra run's start).
    private static OpenAiProvider OpenAi(IServiceProvider services, LlmProvider provider) =>
        new(provider, services.GetRequiredService<IHttpClientFactory>(), services.GetRequiredService<ProviderEndpoints>(), services.GetRequiredService<IOptions<LlmGatewayOptions>>());

    /// <summary>Maps <c>namra.v1.LlmGatewayService</c>.</summary>
    public static WebApplication MapLlmGateway(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapNamraGrpcService<LlmGatewayGrpcService>();
        return app;
    }
}
