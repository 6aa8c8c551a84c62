using System.Buffers;
using System.Text.Json;
using Namra.Contracts.V1;

namespace Namra.LlmGateway.Providers.Anthropic;

/// <summary>
/// Writes a Messages API request body (<c>POST /v1/messages</c>) exactly as Anthropic documents it. Namra's tool
/// messages become user turns of <c>tool_result</c> blocks, and consecutive turns of one role are merged, as
/// the API expects alternating turns.
/// </summary>
internal static class AnthropicRequestWriter
{
    public static void Write(IBufferWriter<byte> buffer, ChatRequest request)
    {
        using var json = new Utf8JsonWriter(buffer, WireJson.Options);
        json.WriteStartObject();
        json.WriteString("model", request.Llm.Model);
        json.WriteNumber("max_tokens", request.Llm.MaxTokens > 0 ? request.Llm.MaxTokens : Pricing.CallReservations.DefaultMaxTokens);
        if (request.SystemPrompt.Length > 0)
        {
            json.WriteString("system", request.SystemPrompt);
        }

        json.WriteStartArray("messages");
        var index = 0;
        while (index < request.Messages.Count)
        {
            var role = AnthropicRole(request.Messages[index].Role);
            json.WriteStartObject();
            json.WriteString("role", role);
            json.WriteStartArray("content");
            for (; index < request.Messages.Count && AnthropicRole(request.Messages[index].Role) == role; index++)
            {
                foreach (var block in request.Messages[index].Content)
                {
                    WriteBlock(json, block, index);
                }
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();

        if (request.Tools.Count > 0)
        {
            json.WriteStartArray("tools");
            for (var i = 0; i < request.Tools.Count; i++)
            {
                var tool = request.Tools[i];
                json.WriteStartObject();
                json.WriteString("name", tool.Name);
                if (tool.Description.Length > 0)
                {
                    json.WriteString("description", tool.Description);
                }

                json.WritePropertyName("input_schema");
                WireJson.WriteObject(json, tool.InputSchemaJson.Length > 0 ? tool.InputSchemaJson : "{\"type\":\"object\"}", $"tools[{i}].input_schema_json");
                json.WriteEndObject();
            }

            json.WriteEndArray();
            if (request.ToolChoice != ToolChoice.Unspecified)
            {
                json.WriteStartObject("tool_choice");
                json.WriteString("type", request.ToolChoice switch
                {
                    ToolChoice.Required => "any",
                    ToolChoice.None => "none",
                    _ => "auto",
                });
                json.WriteEndObject();
            }
        }

        WireJson.WriteSampling(json, request.Llm, stopSequencesName: "stop_sequences");

        json.WriteBoolean("stream", true);
        json.WriteEndObject();
    }

    private static string AnthropicRole(Role role) => role == Role.Assistant ? "assistant" : "user";

    private static void WriteBlock(Utf8JsonWriter json, ContentBlock block, int messageIndex)
    {
        switch (block.BlockCase)
        {
            case ContentBlock.BlockOneofCase.Text:
                json.WriteStartObject();
                json.WriteString("type", "text");
                json.WriteString("text", block.Text);
                json.WriteEndObject();
                break;
            case ContentBlock.BlockOneofCase.ToolCall:
                json.WriteStartObject();
                json.WriteString("type", "tool_use");
                json.WriteString("id", block.ToolCall.Id);
                json.WriteString("name", block.ToolCall.Name);
                json.WritePropertyName("input");
                WireJson.WriteObject(json, block.ToolCall.ArgumentsJson.Length > 0 ? block.ToolCall.ArgumentsJson : "{}", $"messages[{messageIndex}].tool_call.arguments_json");
                json.WriteEndObject();
                break;
            case ContentBlock.BlockOneofCase.ToolResult:
                json.WriteStartObject();
                json.WriteString("type", "tool_result");
                json.WriteString("tool_use_id", block.ToolResult.ToolCallId);
                json.WriteString("content", block.ToolResult.Content);
                if (block.ToolResult.IsError)
                {
                    json.WriteBoolean("is_error", true);
                }

                json.WriteEndObject();
                break;
            case ContentBlock.BlockOneofCase.Thinking when block.Thinking.Redacted:
                json.WriteStartObject();
                json.WriteString("type", "redacted_thinking");
                json.WriteString("data", block.Thinking.Signature);
                json.WriteEndObject();
                break;
            case ContentBlock.BlockOneofCase.Thinking:
                json.WriteStartObject();
                json.WriteString("type", "thinking");
                json.WriteString("thinking", block.Thinking.Text);
                json.WriteString("signature", block.Thinking.Signature);
                json.WriteEndObject();
                break;
            case ContentBlock.BlockOneofCase.Image:
                json.WriteStartObject();
                json.WriteString("type", "image");
                json.WriteStartObject("source");
                if (block.Image.SourceCase == Image.SourceOneofCase.Url)
                {
                    json.WriteString("type", "url");
                    json.WriteString("url", block.Image.Url);
                }
                else
                {
                    json.WriteString("type", "base64");
                    json.WriteString("media_type", block.Image.MediaType);
                    json.WriteBase64String("data", block.Image.Data.Span);
                }

                json.WriteEndObject();
                json.WriteEndObject();
                break;
        }
    }
}
