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
