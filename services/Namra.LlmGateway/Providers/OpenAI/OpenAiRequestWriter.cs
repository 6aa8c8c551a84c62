using System.Buffers;
using System.Text.Json;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;

namespace Namra.LlmGateway.Providers.OpenAI;

/// <summary>
/// Writes a Chat Completions request body (<c>POST /chat/completions</c>) exactly as OpenAI documents it: the
/// system prompt as the first message, tool calls as <c>tool_calls</c> of function type, results as
/// <c>tool</c> messages, streamed with <c>stream_options.include_usage</c>.
/// </summary>
internal static class OpenAiRequestWriter
{
    public static void Write(IBufferWriter<byte> buffer, ChatRequest request, bool compatible)
    {
        using var json = new Utf8JsonWriter(buffer, WireJson.Options);
        json.WriteStartObject();
        json.WriteString("model", request.Llm.Model);
        json.WriteStartArray("messages");
        if (request.SystemPrompt.Length > 0)
        {
            json.WriteStartObject();
            json.WriteString("role", "system");
            json.WriteString("content", request.SystemPrompt);
            json.WriteEndObject();
        }

        for (var i = 0; i < request.Messages.Count; i++)
        {
            WriteMessage(json, request.Messages[i], i);
        }

        json.WriteEndArray();

        if (request.Tools.Count > 0)
        {
            json.WriteStartArray("tools");
            for (var i = 0; i < request.Tools.Count; i++)
            {
                var tool = request.Tools[i];
                json.WriteStartObject();
                json.WriteString("type", "function");
                json.WriteStartObject("function");
                json.WriteString("name", tool.Name);
                if (tool.Description.Length > 0)
                {
                    json.WriteString("description", tool.Description);
                }

                json.WritePropertyName("parameters");
                WireJson.WriteObject(json, tool.InputSchemaJson.Length > 0 ? tool.InputSchemaJson : "{\"type\":\"object\"}", $"tools[{i}].input_schema_json");
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            if (request.ToolChoice != ToolChoice.Unspecified)
            {
                json.WriteString("tool_choice", request.ToolChoice switch
                {
                    ToolChoice.Required => "required",
                    ToolChoice.None => "none",
                    _ => "auto",
                });
            }
        }

        // Always bounded, as the call's reservation assumes: a request without a limit could write past its worst case.
        // OpenAI's current name; servers that speak the older protocol (vLLM, Ollama...) know max_tokens.
        json.WriteNumber(compatible ? "max_tokens" : "max_completion_tokens", request.Llm.MaxTokens > 0 ? request.Llm.MaxTokens : Pricing.CallReservations.DefaultMaxTokens);

        WireJson.WriteSampling(json, request.Llm, stopSequencesName: "stop");

        json.WriteBoolean("stream", true);
        json.WriteStartObject("stream_options");
        json.WriteBoolean("include_usage", true);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>An embeddings request body (<c>POST /embeddings</c>).</summary>
    public static void WriteEmbeddings(IBufferWriter<byte> buffer, string model, IReadOnlyList<string> inputs)
    {
        using var json = new Utf8JsonWriter(buffer, WireJson.Options);
        json.WriteStartObject();
        json.WriteString("model", model);
        json.WriteStartArray("input");
        foreach (var input in inputs)
        {
            json.WriteStringValue(input);
        }

        json.WriteEndArray();
        json.WriteString("encoding_format", "float");
        json.WriteEndObject();
    }

    private static void WriteMessage(Utf8JsonWriter json, Message message, int index)
    {
        switch (message.Role)
        {
            case Role.Tool:
                // One tool message per result, as the protocol has it.
                foreach (var block in message.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolResult))
                {
                    json.WriteStartObject();
                    json.WriteString("role", "tool");
                    json.WriteString("tool_call_id", block.ToolResult.ToolCallId);
                    // The protocol has no error flag for tool results; the model reads it in the content.
                    json.WriteString("content", block.ToolResult.IsError ? "Error: " + block.ToolResult.Content : block.ToolResult.Content);
                    json.WriteEndObject();
                }

                break;
            case Role.Assistant:
                json.WriteStartObject();
                json.WriteString("role", "assistant");
                var text = string.Concat(message.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.Text).Select(b => b.Text));
                var calls = message.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolCall).Select(b => b.ToolCall).ToList();
                if (text.Length > 0 || calls.Count == 0)
                {
                    json.WriteString("content", text);
                }
                else
                {
                    json.WriteNull("content");
                }

                if (calls.Count > 0)
                {
                    json.WriteStartArray("tool_calls");
                    foreach (var call in calls)
                    {
                        json.WriteStartObject();
                        json.WriteString("id", call.Id);
                        json.WriteString("type", "function");
                        json.WriteStartObject("function");
                        json.WriteString("name", call.Name);
                        json.WriteString("arguments", call.ArgumentsJson.Length > 0 ? call.ArgumentsJson : "{}");
                        json.WriteEndObject();
                        json.WriteEndObject();
                    }

                    json.WriteEndArray();
                }

                json.WriteEndObject();
                break;
            default:
                json.WriteStartObject();
                json.WriteString("role", "user");
                if (message.Content.All(b => b.BlockCase == ContentBlock.BlockOneofCase.Text))
                {
                    json.WriteString("content", string.Concat(message.Content.Select(b => b.Text)));
                }
                else
                {
                    json.WriteStartArray("content");
                    foreach (var block in message.Content)
                    {
                        WritePart(json, block, index);
                    }

                    json.WriteEndArray();
                }

                json.WriteEndObject();
                break;
        }
    }

    private static void WritePart(Utf8JsonWriter json, ContentBlock block, int index)
    {
        switch (block.BlockCase)
        {
            case ContentBlock.BlockOneofCase.Text:
                json.WriteStartObject();
                json.WriteString("type", "text");
                json.WriteString("text", block.Text);
                json.WriteEndObject();
                break;
            case ContentBlock.BlockOneofCase.Image:
                json.WriteStartObject();
                json.WriteString("type", "image_url");
                json.WriteStartObject("image_url");
                json.WriteString("url", block.Image.SourceCase == Image.SourceOneofCase.Url
                    ? block.Image.Url
                    : $"data:{block.Image.MediaType};base64,{Convert.ToBase64String(block.Image.Data.Span)}");
                json.WriteEndObject();
                json.WriteEndObject();
                break;
            default:
                throw new InvalidArgumentException($"messages[{index}].content", "User messages hold text and images only.");
        }
    }
}
