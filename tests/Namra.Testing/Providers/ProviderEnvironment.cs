using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Namra.LlmGateway.Options;
using Namra.LlmGateway.Providers;

namespace Namra.Testing.Providers;

/// <summary>Makes a host's LLM gateway read provider keys and addresses from the given variables, not the machine's environment.</summary>
public static class ProviderEnvironment
{
    /// <summary>Registers the variables (such as <c>OPENAI_API_KEY</c> and <c>OPENAI_BASE_URL</c>) for the gateway.</summary>
    public static void Use(WebApplicationBuilder builder, IReadOnlyDictionary<string, string> environment)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton(services =>
            new ProviderEndpoints(services.GetRequiredService<IOptions<LlmGatewayOptions>>(), name => environment.GetValueOrDefault(name)));
    }
}
