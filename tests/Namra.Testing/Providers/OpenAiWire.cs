using System.Text.Json.Nodes;

namespace Namra.Testing.Providers;

/// <summary>
/// OpenAI Chat Completions stream chunks and error bodies, as OpenAI's API reference shows them
/// (<c>chat.completion.chunk</c> objects, tool calls by index, a usage chunk with empty choices, <c>[DONE]</c>).
/// </summary>
public static class OpenAiWire
{
    public const string Model = "gpt-4o-mini-2024-07-18";
    public const string Id = "chatcmpl-7QyqpwdfhqwajicIEznoc6Q47XAyW";

    public static SseFrame Role() => Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, finishReason: null);

    public static SseFrame Text(string text) => Chunk(new JsonObject { ["content"] = text }, finishReason: null);

    public static SseFrame ToolCallStart(int index, string id, string name) =>
        Chunk(new JsonObject
        {
            ["tool_calls"] = new JsonArray(new JsonObject
            {
                ["index"] = index, ["id"] = id, ["type"] = "function", ["function"] = new JsonObject { ["name"] = name, ["arguments"] = "" },
            }),
        }, finishReason: null);

    public static SseFrame ToolCallArguments(int index, string piece) =>
        Chunk(new JsonObject
        {
            ["tool_calls"] = new JsonArray(new JsonObject { ["index"] = index, ["function"] = new JsonObject { ["arguments"] = piece } }),
        }, finishReason: null);

    public static SseFrame Finish(string reason) => Chunk(new JsonObject(), reason);

    /// <summary>A piece of the model's refusal, which OpenAI streams in <c>delta.refusal</c> instead of <c>content</c>.</summary>
    public static SseFrame Refusal(string piece) => Chunk(new JsonObject { ["refusal"] = piece }, finishReason: null);

    public static SseFrame Usage(int promptTokens, int completionTokens, int cachedTokens = 0) =>
        new(null, new JsonObject
        {
            ["id"] = Id,
            ["object"] = "chat.completion.chunk",
            ["created"] = 1694268190,
            ["model"] = Model,
            ["system_fingerprint"] = "fp_44709d6fcb",
            ["choices"] = new JsonArray(),
            ["usage"] = new JsonObject
            {
                ["prompt_tokens"] = promptTokens,
                ["completion_tokens"] = completionTokens,
                ["total_tokens"] = promptTokens + completionTokens,
                ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = cachedTokens, ["audio_tokens"] = 0 },
                ["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0, ["audio_tokens"] = 0, ["accepted_prediction_tokens"] = 0, ["rejected_prediction_tokens"] = 0 },
            },
        }.ToJsonString());

    public static SseFrame Done() => new(null, "[DONE]");

    public static SseFrame StreamError(string type, string message) =>
        new(null, new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = null } }.ToJsonString());

    /// <summary>A whole text turn: role, text pieces, stop, usage, [DONE].</summary>
    public static SseReply TextTurn(int promptTokens, int completionTokens, params string[] pieces) =>
        new([Role(), .. pieces.Select(Text), Finish("stop"), Usage(promptTokens, completionTokens), Done()]);

    public static string ErrorBody(string type, string message, string? code = null) =>
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = code } }.ToJsonString();

    public static string Embeddings(params float[][] vectors) => Embeddings(8, vectors);

    /// <summary>An embeddings answer counting <paramref name="promptTokens"/> of input; without <c>usage</c> when null, as some compatible servers answer.</summary>
    public static string Embeddings(long? promptTokens, params float[][] vectors)
    {
        var body = new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray([.. vectors.Select((v, i) => (JsonNode)new JsonObject
            {
                ["object"] = "embedding", ["index"] = i, ["embedding"] = new JsonArray([.. v.Select(x => (JsonNode)x)]),
            })]),
            ["model"] = "text-embedding-3-small",
        };
        if (promptTokens is { } tokens)
        {
            body["usage"] = new JsonObject { ["prompt_tokens"] = tokens, ["total_tokens"] = tokens };
        }

        return body.ToJsonString();
    }

    private static SseFrame Chunk(JsonObject delta, string? finishReason) =>
        new(null, new JsonObject
        {
            ["id"] = Id,
            ["object"] = "chat.completion.chunk",
            ["created"] = 1694268190,
            ["model"] = Model,
            ["system_fingerprint"] = "fp_44709d6fcb",
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finishReason,
            }),
        }.ToJsonString());
}
