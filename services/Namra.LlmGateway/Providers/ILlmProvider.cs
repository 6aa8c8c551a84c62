using Namra.Contracts.V1;

namespace Namra.LlmGateway.Providers;

/// <summary>One model call, as every provider receives it.</summary>
/// <param name="Llm">Provider, model and sampling settings.</param>
/// <param name="SystemPrompt">Instructions before the conversation.</param>
/// <param name="Messages">The conversation, oldest first.</param>
/// <param name="Tools">Tools the model may call.</param>
/// <param name="ToolChoice">How it may use them.</param>
internal sealed record ChatRequest(
    LlmConfig Llm,
    string SystemPrompt,
    IReadOnlyList<Message> Messages,
    IReadOnlyList<ToolDefinition> Tools,
    ToolChoice ToolChoice);

/// <summary>
/// A model provider. Streams one model turn as <see cref="StreamGenerateResponse"/> events: text and tool-call
/// deltas, completed tool calls, and last a <see cref="GenerateCompleted"/> without cost (the gateway prices it).
/// Failures are <see cref="Namra.Hosting.Errors.NamraException"/>s carrying the gRPC status the caller gets.
/// </summary>
internal interface ILlmProvider
{
    /// <summary>The provider this implementation serves.</summary>
    LlmProvider Provider { get; }

    /// <summary>Streams one turn of the model.</summary>
    IAsyncEnumerable<StreamGenerateResponse> StreamAsync(ChatRequest request, CancellationToken cancellationToken);
}

/// <summary>A provider that also turns texts into embeddings (<c>Embed</c>).</summary>
internal interface IEmbeddingProvider
{
    /// <summary>One vector per input, in order, with the tokens billed (unset when the provider reported none).</summary>
    Task<EmbedResult> EmbedAsync(LlmConfig llm, IReadOnlyList<string> inputs, CancellationToken cancellationToken);
}

/// <summary>What an embedding request got: the vectors and usage, and the provider's id of the HTTP request (empty when none).</summary>
internal sealed record EmbedResult(EmbedResponse Response, string RequestId);
