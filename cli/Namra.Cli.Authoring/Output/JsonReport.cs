using System.Text.Encodings.Web;
using System.Text.Json;
using Namra.Config;
using Namra.Config.Validation;

namespace Namra.Cli.Output;

/// <summary>
/// <c>namra validate --format json</c>: one JSON document for tools and editors, with the field names of the
/// <c>namra.v1.Diagnostic</c> message in protobuf's JSON mapping (lowerCamelCase).
/// </summary>
internal static class JsonReport
{
    public static void Write(TextWriter output, IReadOnlyList<(string File, AgentLoadResult Result)> results)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteBoolean("valid", results.All(r => r.Result.IsValid));
            json.WriteStartArray("files");
            foreach (var (file, result) in results)
            {
                json.WriteStartObject();
                json.WriteString("file", file);
                json.WriteBoolean("valid", result.IsValid);
                if (result.Ref is { } agentRef)
                {
                    json.WriteStartObject("agent");
                    json.WriteString("name", agentRef.Name);
                    json.WriteString("version", agentRef.Version);
                    json.WriteString("contentHash", agentRef.ContentHash);
                    json.WriteEndObject();
                }

                json.WriteStartArray("diagnostics");
                foreach (var diagnostic in result.Diagnostics)
                {
                    json.WriteStartObject();
                    json.WriteString("severity", diagnostic.Severity == DiagnosticSeverity.Error ? "SEVERITY_ERROR" : "SEVERITY_WARNING");
                    json.WriteString("code", diagnostic.Code);
                    json.WriteString("message", diagnostic.Message);
                    json.WriteString("file", diagnostic.File);
                    json.WriteNumber("line", diagnostic.Position.Line);
                    json.WriteNumber("column", diagnostic.Position.Column);
                    json.WriteString("fieldPath", diagnostic.FieldPath);
                    json.WriteString("hint", diagnostic.Hint);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
