using System.Text.Encodings.Web;
using System.Text.Json;
using Namra.Hosting.Errors;

namespace Namra.LlmGateway.Providers;

/// <summary>JSON as the providers' official SDKs write it.</summary>
internal static class WireJson
{
    /// <summary>Escape only what JSON requires, as JSON.stringify and the official SDKs do (not '+', '&lt;' or non-ASCII).</summary>
    public static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes JSON text (a tool schema, tool arguments) as an object, after checking that it is one.</summary>
    public static void WriteObject(Utf8JsonWriter json, string text, string field)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidArgumentException(field, "must be a JSON object.");
            }

            document.RootElement.WriteTo(json);
        }
        catch (JsonException exception)
        {
            throw new InvalidArgumentException(field, $"is not valid JSON: {exception.Message}");
        }
    }

    public static string String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";
}
