using System.Text;
using System.Text.Json;

namespace Namra.Testing.Providers;

/// <summary>
/// Counts a Messages API request as greedily as any tokenizer could: every UTF-8 byte of every string in it a token
/// (a byte-level BPE token covers at least one byte), plus framing for each message and block, and the instructions
/// Anthropic adds when tools are offered. A provider can count no more than this honestly.
/// </summary>
public static class CountingProvider
{
    private const int PerMessage = 8;
    private const int PerBlock = 4;
    private const int ToolInstructions = 400;

    /// <summary>The input tokens of the request's JSON body.</summary>
    public static int InputTokens(string body)
    {
        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        var total = Bytes(root);
        if (root.TryGetProperty("messages", out var messages))
        {
            foreach (var message in messages.EnumerateArray())
            {
                total += PerMessage + (message.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Array ? content.GetArrayLength() * PerBlock : 0);
            }
        }

        return root.TryGetProperty("tools", out var tools) && tools.GetArrayLength() > 0 ? total + ToolInstructions : total;
    }

    /// <summary>The request's <c>max_tokens</c>.</summary>
    public static int MaxTokens(string body)
    {
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("max_tokens").GetInt32();
    }

    private static int Bytes(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => Encoding.UTF8.GetByteCount(element.GetString()!),
        JsonValueKind.Object => element.EnumerateObject().Sum(p => Encoding.UTF8.GetByteCount(p.Name) + Bytes(p.Value)),
        JsonValueKind.Array => element.EnumerateArray().Sum(Bytes),
        _ => element.GetRawText().Length,
    };
}
