using System.Text.Json;
using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>The arguments of the calls the orchestrator answers itself (agents, handoffs, <c>remember</c>).</summary>
internal static class ToolArguments
{
    /// <summary>The text of the call's argument <paramref name="name"/>: 1 to <paramref name="maxLength"/> characters, else null (absent, not text, not JSON).</summary>
    public static string? Text(ToolCall call, string name, int maxLength = int.MaxValue)
    {
        try
        {
            using var arguments = JsonDocument.Parse(call.ArgumentsJson.Length > 0 ? call.ArgumentsJson : "{}", new JsonDocumentOptions { MaxDepth = 64 });
            return arguments.RootElement is { ValueKind: JsonValueKind.Object } root && root.TryGetProperty(name, out var value)
                && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text && text.Length <= maxLength
                ? text
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
