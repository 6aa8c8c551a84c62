using System.Text.Json;
using System.Text.Json.Nodes;

namespace Namra.Testing.Providers;

/// <summary>
/// Anthropic Messages API stream events and error bodies, as Anthropic's documentation shows them
/// ("Streaming Messages": message_start, content_block_start/delta/stop, message_delta, message_stop, ping, error).
/// </summary>
public static class AnthropicWire
{
    public const string Model = "claude-sonnet-4-5-20250929";

    public static SseFrame MessageStart(string id = "msg_01XFDUDYJgAACzvnptvVoYEL", string model = Model, int inputTokens = 25,
        int cacheCreation = 0, int cacheRead = 0) =>
        Frame("message_start", new JsonObject
        {
            ["type"] = "message_start",
            ["message"] = new JsonObject
            {
                ["id"] = id,
                ["type"] = "message",
                ["role"] = "assistant",
                ["content"] = new JsonArray(),
                ["model"] = model,
                ["stop_reason"] = null,
                ["stop_sequence"] = null,
                ["usage"] = new JsonObject
                {
                    ["input_tokens"] = inputTokens,
                    ["cache_creation_input_tokens"] = cacheCreation,
                    ["cache_read_input_tokens"] = cacheRead,
                    ["output_tokens"] = 1,
                },
            },
        });

    public static IEnumerable<SseFrame> TextBlock(int index, params string[] pieces)
    {
        yield return Frame("content_block_start", new JsonObject
        {
            ["type"] = "content_block_start", ["index"] = index, ["content_block"] = new JsonObject { ["type"] = "text", ["text"] = "" },
        });
        foreach (var piece in pieces)
        {
            yield return Frame("content_block_delta", new JsonObject
            {
                ["type"] = "content_block_delta", ["index"] = index, ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = piece },
            });
        }

        yield return Stop(index);
    }

    /// <summary>A tool_use block cut off by max_tokens: its pieces, and no content_block_stop, as real streams end.</summary>
    public static IEnumerable<SseFrame> ToolUseBlockCutOff(int index, string id, string name, params string[] jsonPieces) =>
        ToolUseBlock(index, id, name, jsonPieces).SkipLast(1);

    public static IEnumerable<SseFrame> ToolUseBlock(int index, string id, string name, params string[] jsonPieces)
    {
        yield return Frame("content_block_start", new JsonObject
        {
            ["type"] = "content_block_start",
            ["index"] = index,
            ["content_block"] = new JsonObject { ["type"] = "tool_use", ["id"] = id, ["name"] = name, ["input"] = new JsonObject() },
        });
        foreach (var piece in jsonPieces)
        {
            yield return Frame("content_block_delta", new JsonObject
            {
                ["type"] = "content_block_delta", ["index"] = index, ["delta"] = new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = piece },
            });
        }

        yield return Stop(index);
    }

    public static IEnumerable<SseFrame> ThinkingBlock(int index, string thinking, string signature)
    {
        yield return Frame("content_block_start", new JsonObject
        {
            ["type"] = "content_block_start", ["index"] = index, ["content_block"] = new JsonObject { ["type"] = "thinking", ["thinking"] = "" },
        });
        yield return Frame("content_block_delta", new JsonObject
        {
            ["type"] = "content_block_delta", ["index"] = index, ["delta"] = new JsonObject { ["type"] = "thinking_delta", ["thinking"] = thinking },
        });
        yield return Frame("content_block_delta", new JsonObject
        {
            ["type"] = "content_block_delta", ["index"] = index, ["delta"] = new JsonObject { ["type"] = "signature_delta", ["signature"] = signature },
        });
        yield return Stop(index);
    }

    public static SseFrame MessageDelta(string stopReason, int outputTokens) =>
        Frame("message_delta", new JsonObject
        {
            ["type"] = "message_delta",
            ["delta"] = new JsonObject { ["stop_reason"] = stopReason, ["stop_sequence"] = null },
            ["usage"] = new JsonObject { ["output_tokens"] = outputTokens },
        });

    public static SseFrame MessageStop() => Frame("message_stop", new JsonObject { ["type"] = "message_stop" });

    // Anthropic writes this one with a space after the colon.
    public static SseFrame Ping() => new("ping", "{\"type\": \"ping\"}");

    public static SseFrame Error(string type, string message) =>
        Frame("error", new JsonObject { ["type"] = "error", ["error"] = new JsonObject { ["type"] = type, ["message"] = message } });

    /// <summary>A whole text turn: start, text in pieces, end_turn.</summary>
    public static SseReply TextTurn(int inputTokens, int outputTokens, params string[] pieces) =>
        new([MessageStart(inputTokens: inputTokens), .. TextBlock(0, pieces), MessageDelta("end_turn", outputTokens), MessageStop()]);

    /// <summary>An error response body, as the API sends it with a 4xx or 5xx status.</summary>
    public static string ErrorBody(string type, string message) =>
        new JsonObject { ["type"] = "error", ["error"] = new JsonObject { ["type"] = type, ["message"] = message }, ["request_id"] = "req_011CSHoEeqs5C35K2UUqR7Fy" }
            .ToJsonString();

    private static SseFrame Stop(int index) => Frame("content_block_stop", new JsonObject { ["type"] = "content_block_stop", ["index"] = index });

    private static SseFrame Frame(string type, JsonObject data) => new(type, data.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
}
