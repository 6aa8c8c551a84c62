using System.Diagnostics;
using System.Diagnostics.Metrics;
using Namra.Hosting.Telemetry;

namespace Namra.LlmGateway;

/// <summary>Traces and metrics of the LLM gateway, named by the OpenTelemetry GenAI semantic conventions.</summary>
internal static class LlmGatewayTelemetry
{
    public const string Name = "Namra.LlmGateway";

    public static readonly ActivitySource ActivitySource = new(Name);

    public static readonly Meter Meter = new(Name);

    /// <summary>Tokens, by provider, model and type (input, output, cache_write, cache_read).</summary>
    public static readonly NamraCounter Tokens = NamraMetrics.Counter(Meter,
        "namra.llm.tokens", "{token}", "Tokens used by model calls.", "provider", "model", "type");

    /// <summary>Cost in micro-dollars, by provider and model (unknown-price models are not counted).</summary>
    public static readonly NamraCounter CostMicroUsd = NamraMetrics.Counter(Meter,
        "namra.llm.cost.micro_usd", "{micro_usd}", "Money spent on model calls, in millionths of a US dollar.", "provider", "model");

    /// <summary>Calls, by provider, model and gRPC status code.</summary>
    public static readonly NamraCounter Calls = NamraMetrics.Counter(Meter,
        "namra.llm.calls", "{call}", "Model calls, by outcome.", "provider", "model", "code");

    /// <summary>Whole-call latency.</summary>
    public static readonly NamraHistogram Duration = NamraMetrics.DurationHistogram(Meter,
        "namra.llm.call.duration", "Time of a model call, from request to last event.", "provider", "model");

    /// <summary>Time to the first streamed event.</summary>
    public static readonly NamraHistogram TimeToFirstToken = NamraMetrics.DurationHistogram(Meter,
        "namra.llm.time_to_first_token", "Time from request to the first streamed event.", "provider", "model");

    public static class Attributes
    {
        public const string OperationName = "gen_ai.operation.name";
        public const string ProviderName = "gen_ai.provider.name";
        public const string RequestModel = "gen_ai.request.model";
        public const string ResponseModel = "gen_ai.response.model";
        public const string ResponseId = "gen_ai.response.id";

        /// <summary>The provider's identifier of the HTTP request (not a GenAI convention attribute: the providers' support asks for it).</summary>
        public const string ProviderRequestId = "namra.provider.request_id";
        public const string FinishReasons = "gen_ai.response.finish_reasons";
        public const string InputTokens = "gen_ai.usage.input_tokens";
        public const string OutputTokens = "gen_ai.usage.output_tokens";
        public const string RequestMaxTokens = "gen_ai.request.max_tokens";
        public const string RequestTemperature = "gen_ai.request.temperature";
        public const string InputMessages = "gen_ai.input.messages";
        public const string OutputMessages = "gen_ai.output.messages";
        public const string CostUsd = "namra.cost.usd";
        public const string ErrorType = "error.type";
        public const string RunId = "namra.run.id";
        public const string AgentName = "namra.agent.name";
    }
}
