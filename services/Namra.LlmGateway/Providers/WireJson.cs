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

    /// <summary>Temperature, top_p and stop sequences, when set; the providers differ only in the name of the last.</summary>
    public static void WriteSampling(Utf8JsonWriter json, Contracts.V1.LlmConfig llm, string stopSequencesName)
    {
        if (llm.HasTemperature)
        {
            json.WriteNumber("temperature", llm.Temperature);
        }

        if (llm.HasTopP)
        {
            json.WriteNumber("top_p", llm.TopP);
        }

        if (llm.StopSequences.Count > 0)
        {
            json.WriteStartArray(stopSequencesName);
            foreach (var stop in llm.StopSequences)
            {
                json.WriteStringValue(stop);
            }

            json.WriteEndArray();
        }
    }

    public static string String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";
}
