using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>What the tests of keyed, limited servers share: a server with all roles, an access file and a local Anthropic.</summary>
internal static class KeyedServers
{
    /// <summary>
    /// All five roles, requiring the keys of <paramref name="accessFile"/>, calling <paramref name="anthropic"/>, counting
    /// limits in <paramref name="limitsRedis"/> when given; <paramref name="more"/> settings on top.
    /// </summary>
    public static Task<NamraTestHost> StartAsync(string accessFile, FakeProviderServer anthropic, string? limitsRedis = null, IDictionary<string, string?>? more = null, FakeProviderServer? openai = null)
    {
        var environment = new Dictionary<string, string> { ["ANTHROPIC_API_KEY"] = "sk-ant-test", ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString() };
        if (openai is not null)
        {
            environment["OPENAI_API_KEY"] = "sk-test";
            environment["OPENAI_BASE_URL"] = new Uri(openai.BaseUrl, "/v1").ToString();
        }

        var settings = new Dictionary<string, string?> { ["Namra:Orchestrator:ApiKeysFile"] = accessFile, ["Namra:Orchestrator:LimitsRedis"] = limitsRedis };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return NamraTestHost.StartAsync("all", settings, configure: builder => ProviderEnvironment.Use(builder, environment));
    }

    /// <summary>An agent named <paramref name="name"/> on the local Anthropic.</summary>
    public static AgentSource Agent(string name) =>
        InlineAgents.Yaml($"name: {name}\nversion: 1.0.0\nllm: {{ provider: anthropic, model: {AnthropicWire.Model}, max_tokens: 64 }}\n");

    /// <summary>A key as a caller sends it.</summary>
    public static Metadata Bearer(string key) => new() { { "authorization", $"Bearer {key}" } };
}
