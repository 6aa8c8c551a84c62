using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.LlmGateway.Pricing;

namespace Namra.LlmGateway.Options;

/// <summary>Settings of the LLM gateway; section <c>Namra:LlmGateway</c>.</summary>
public sealed class LlmGatewayOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Namra:LlmGateway";

    /// <summary>
    /// Prices of models beyond (or instead of) the built-in list, such as self-hosted models:
    /// <c>Namra__LlmGateway__Models__0__Provider=openai_compatible</c>, <c>..__Model=llama3.1:8b</c>, <c>..__InputPerMTok=0</c>.
    /// </summary>
    [ValidateEnumeratedItems]
    public IList<ModelPriceOptions> Models { get; } = [];

    /// <summary>
    /// Base URLs (besides each provider's own and those set by <c>ANTHROPIC_BASE_URL</c>/<c>OPENAI_BASE_URL</c>)
    /// that the gateway may send API keys to, such as a company proxy. A definition naming any other address
    /// gets no key sent there.
    /// </summary>
    public IList<string> AllowedBaseUrls { get; } = [];

    /// <summary>
    /// Environment variables (besides <c>ANTHROPIC_API_KEY</c> and <c>OPENAI_API_KEY</c>) that <c>llm.api_key_env</c>
    /// may name: exact names, or prefixes ending in <c>*</c>.
    /// </summary>
    public IList<string> AllowedKeyVariables { get; } = [];

    /// <summary>Whether <c>llm.api_key_env</c> may name <paramref name="variable"/>.</summary>
    public bool AllowsKeyVariable(string variable) =>
        AllowedKeyVariables.Any(allowed => allowed.EndsWith('*') ? variable.StartsWith(allowed[..^1], StringComparison.Ordinal) : variable == allowed);

    /// <summary>Longest wait to connect to a provider. Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>The price of one model, in US dollars per million tokens.</summary>
public sealed class ModelPriceOptions
{
    /// <summary><c>anthropic</c>, <c>openai</c> or <c>openai_compatible</c>.</summary>
    [Required]
    [RegularExpression("^(anthropic|openai|openai_compatible)$", ErrorMessage = "Provider must be anthropic, openai or openai_compatible.")]
    public string Provider { get; set; } = "";

    /// <summary>The provider's model name.</summary>
    [Required]
    public string Model { get; set; } = "";

    /// <summary>Input tokens.</summary>
    [Range(0, 10_000)]
    public decimal InputPerMTok { get; set; }

    /// <summary>Output tokens.</summary>
    [Range(0, 10_000)]
    public decimal OutputPerMTok { get; set; }

    /// <summary>Prompt-cache writes.</summary>
    [Range(0, 10_000)]
    public decimal CacheWritePerMTok { get; set; }

    /// <summary>Prompt-cache reads.</summary>
    [Range(0, 10_000)]
    public decimal CacheReadPerMTok { get; set; }

    internal ModelPrice ToPrice() => new(
        Provider switch
        {
            "anthropic" => LlmProvider.Anthropic,
            "openai" => LlmProvider.Openai,
            _ => LlmProvider.OpenaiCompatible,
        },
        Model, InputPerMTok, OutputPerMTok, CacheWritePerMTok, CacheReadPerMTok);
}

/// <summary>Validates <see cref="LlmGatewayOptions"/> at start-up (source-generated).</summary>
[OptionsValidator]
internal sealed partial class LlmGatewayOptionsValidator : IValidateOptions<LlmGatewayOptions>;
