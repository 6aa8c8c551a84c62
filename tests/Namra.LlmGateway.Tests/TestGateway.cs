using Microsoft.AspNetCore.Builder;
using Namra.Testing;

namespace Namra.LlmGateway.Tests;

/// <summary>Starts an llm-gateway host whose provider keys and addresses come from the given variables, not the machine's.</summary>
internal static class TestGateway
{
    public static Task<NamraTestHost> StartAsync(IReadOnlyDictionary<string, string> environment, IDictionary<string, string?>? settings = null,
        Action<WebApplicationBuilder>? configure = null) =>
        NamraTestHost.StartAsync("llm-gateway", settings, builder =>
        {
            Testing.Providers.ProviderEnvironment.Use(builder, environment);
            configure?.Invoke(builder);
        });
}
