using Grpc.Core;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.LlmGateway.Options;

namespace Namra.LlmGateway.Providers;

/// <summary>Where a call goes and with which key.</summary>
internal sealed record ProviderEndpoint(Uri BaseUrl, string? ApiKey);

/// <summary>
/// Resolves a call's base URL and API key as the official SDKs do (the agent's <c>llm.base_url</c>, else
/// <c>ANTHROPIC_BASE_URL</c>/<c>OPENAI_BASE_URL</c>, else the provider's address; the key from
/// <c>llm.api_key_env</c>, else the standard variable), with two guards, because definitions may come from
/// callers: only allowed variables are read, and keys are only sent to the provider's own address, the
/// variable-configured one, or <c>Namra:LlmGateway:AllowedBaseUrls</c>.
/// </summary>
internal sealed class ProviderEndpoints(IOptions<LlmGatewayOptions> options, Func<string, string?> environment)
{
    // keyVariable is the provider's standard key variable, or null when it has none: OpenAI-compatible servers get a
    // key only when llm.api_key_env names one, so an OpenAI key never reaches a local server by default.
    public ProviderEndpoint Resolve(LlmConfig llm, string providerName, Uri defaultBaseUrl, string baseUrlVariable, string? keyVariable, bool keyRequired)
    {
        var configured = environment(baseUrlVariable);
        var text = llm.BaseUrl.Length > 0 ? llm.BaseUrl : configured is { Length: > 0 } ? configured : defaultBaseUrl.ToString();
        if (!Uri.TryCreate(text, UriKind.Absolute, out var baseUrl) || baseUrl.Scheme is not ("http" or "https"))
        {
            throw new InvalidArgumentException("llm.base_url", $"'{text}' is not an http(s) URL.");
        }

        var trusted = SameBase(baseUrl, defaultBaseUrl)
            || (configured is { Length: > 0 } && Uri.TryCreate(configured, UriKind.Absolute, out var fromVariable) && SameBase(baseUrl, fromVariable))
            || options.Value.AllowedBaseUrls.Any(allowed => Uri.TryCreate(allowed, UriKind.Absolute, out var uri) && SameBase(baseUrl, uri));
        if (!trusted && options.Value.RestrictBaseUrls)
        {
            throw new NamraException(StatusCode.PermissionDenied,
                $"This gateway calls only allowed addresses, and {baseUrl.GetLeftPart(UriPartial.Authority)} is not one; "
                + "the operator allows it with Namra:LlmGateway:AllowedBaseUrls.");
        }

        var variable = llm.ApiKeyEnv.Length > 0 ? llm.ApiKeyEnv : keyVariable;
        if (variable is null)
        {
            return new ProviderEndpoint(baseUrl, null);
        }

        if (llm.ApiKeyEnv.Length > 0 && variable != keyVariable && !options.Value.AllowsKeyVariable(variable))
        {
            throw new NamraException(StatusCode.PermissionDenied,
                $"The gateway does not read the variable {variable}; the operator allows key variables with Namra:LlmGateway:AllowedKeyVariables.");
        }

        var key = environment(variable);
        if (string.IsNullOrEmpty(key))
        {
            if (keyRequired)
            {
                throw new NamraException(StatusCode.Unauthenticated, $"{providerName}: the gateway has no API key; set {variable} in its environment.");
            }

            return new ProviderEndpoint(baseUrl, null);
        }

        if (!trusted)
        {
            throw new NamraException(StatusCode.PermissionDenied,
                $"The gateway sends API keys only to allowed addresses, and {baseUrl.GetLeftPart(UriPartial.Authority)} is not one; "
                + "the operator allows it with Namra:LlmGateway:AllowedBaseUrls.");
        }

        return new ProviderEndpoint(baseUrl, key);
    }

    private static bool SameBase(Uri url, Uri allowed) =>
        string.Equals(url.GetLeftPart(UriPartial.Authority), allowed.GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase)
        && url.AbsolutePath.StartsWith(allowed.AbsolutePath.TrimEnd('/'), StringComparison.Ordinal);
}
