using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.LlmGateway.Pricing;

namespace Namra.LlmGateway.Options;

/// <summary>Settings of the LLM gateway; section <c>Namra:LlmGateway</c>.</summary>
[System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "[Range(typeof(TimeSpan), ...)] is metadata here: the options validation source generator checks it with its own strongly typed copy, no TypeConverter.")]
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
    /// When true, calls go only to each provider's own address, the <c>*_BASE_URL</c> variables' and
    /// <see cref="AllowedBaseUrls"/>: a deployed gateway should not POST to whatever address a caller's definition
    /// names. Default false, for local servers (Ollama, vLLM) on a developer's machine.
    /// </summary>
    public bool RestrictBaseUrls { get; set; }

    /// <summary>
    /// Record prompts and responses on the <c>chat</c> spans (<c>gen_ai.input.messages</c>, <c>gen_ai.output.messages</c>).
    /// Off by default: conversations may hold personal data and secrets.
    /// </summary>
    public bool CaptureContent { get; set; }

    /// <summary>
    /// Environment variables (besides <c>ANTHROPIC_API_KEY</c> and <c>OPENAI_API_KEY</c>) that <c>llm.api_key_env</c>
    /// may name: exact names, or prefixes ending in <c>*</c>.
    /// </summary>
    public IList<string> AllowedKeyVariables { get; } = [];

    /// <summary>Whether <c>llm.api_key_env</c> may name <paramref name="variable"/>.</summary>
    public bool AllowsKeyVariable(string variable) =>
        AllowedKeyVariables.Any(allowed => allowed.EndsWith('*') ? variable.StartsWith(allowed[..^1], StringComparison.Ordinal) : variable == allowed);

    /// <summary>Retries of transient provider failures, before the first streamed event only.</summary>
    [ValidateObjectMembers]
    public RetryOptions Retry { get; set; } = new();

    /// <summary>The circuit breaker of each provider.</summary>
    [ValidateObjectMembers]
    public CircuitBreakerOptions CircuitBreaker { get; set; } = new();

    /// <summary>
    /// Client-side rate limits per provider (<c>anthropic</c>, <c>openai</c>, <c>openai_compatible</c>), so the gateway
    /// refuses early with RESOURCE_EXHAUSTED instead of collecting 429s: <c>Namra__LlmGateway__RateLimits__anthropic__RequestsPerMinute=50</c>.
    /// </summary>
    public IDictionary<string, RateLimitOptions> RateLimits { get; } = new Dictionary<string, RateLimitOptions>(StringComparer.Ordinal);

    /// <summary>Longest a provider may stay silent in a stream (or before answering) before the call is abandoned. Default 2 min.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan StreamIdleTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Most bytes read of one provider response; a response past it (a broken or hostile server's endless tool call)
    /// is abandoned with FAILED_PRECONDITION rather than held in memory. Default 32 MiB, far beyond any model's
    /// output limit.
    /// </summary>
    [Range(64 * 1024, 1L << 32)]
    public long MaxResponseBytes { get; set; } = 32L * 1024 * 1024;

    /// <summary>
    /// Send W3C trace context (<c>traceparent</c>) with provider requests, as to a proxy of one's own that traces too.
    /// Off by default: a provider is a third party, and a run's trace id is Namra's.
    /// </summary>
    public bool PropagateTraceContext { get; set; }

    /// <summary>Longest a whole model call may take when the caller sets no shorter deadline. Default 10 min.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "02:00:00")]
    public TimeSpan MaxCallDuration { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Longest wait to connect to a provider. Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Retries of 429, 5xx, overloaded and network failures, with exponential backoff and jitter, honouring the
/// provider's <c>retry-after</c>; never once a streamed event has reached the caller.
/// </summary>
[System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "[Range(typeof(TimeSpan), ...)] is metadata here: the options validation source generator checks it with its own strongly typed copy, no TypeConverter.")]
public sealed class RetryOptions
{
    /// <summary>Retries after the first attempt; 0 turns retries off. Default 2.</summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>Backoff before the first retry, doubled each time, with jitter. Default 500 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait before a retry, whatever <c>retry-after</c> asks. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:10:00")]
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>A circuit breaker per provider: when most recent calls fail as unavailable, calls fail fast for a while.</summary>
[System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "[Range(typeof(TimeSpan), ...)] is metadata here: the options validation source generator checks it with its own strongly typed copy, no TypeConverter.")]
public sealed class CircuitBreakerOptions
{
    /// <summary>Share of failed calls in the sampling window that opens the circuit. Default 0.5.</summary>
    [Range(0.01, 1.0)]
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Calls in the window before the ratio counts. Default 10.</summary>
    [Range(2, 10_000)]
    public int MinimumThroughput { get; set; } = 10;

    /// <summary>The sampling window. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00")]
    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the circuit stays open before a trial call. Default 15 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00")]
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>Requests and tokens a provider may be sent per minute; 0 is no limit.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Requests per minute.</summary>
    [Range(0, 1_000_000)]
    public int RequestsPerMinute { get; set; }

    /// <summary>Tokens per minute, counting each request's input estimate plus its <c>max_tokens</c>.</summary>
    [Range(0, 1_000_000_000)]
    public int TokensPerMinute { get; set; }
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
