using System.Text.Json;
using System.Text.RegularExpressions;
using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Which tool calls need a person's approval before they run, by the agent entry's <c>approval</c>: never, always, or
/// when a condition on the call's arguments matches. An argument the call leaves out has its schema's default. A call
/// whose arguments cannot be read needs approval: a guard that cannot look does not let it through.
/// </summary>
internal static class Approvals
{
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);

    /// <summary>Why the call needs approval; null when it does not.</summary>
    public static string? Reason(ToolConfig? entry, ToolDefinition? definition, ToolCall call)
    {
        var policy = entry?.Approval;
        if (policy is null || policy.Mode is ApprovalPolicy.Types.Mode.Unspecified or ApprovalPolicy.Types.Mode.Never)
        {
            return null;
        }

        if (policy.Mode == ApprovalPolicy.Types.Mode.Always)
        {
            return $"Every call of {entry!.Name} needs approval.";
        }

        Dictionary<string, string> arguments;
        try
        {
            arguments = Arguments(call.ArgumentsJson, definition?.InputSchemaJson);
        }
        catch (JsonException)
        {
            return $"The call's arguments could not be read, so {entry!.Name}'s approval conditions could not be checked.";
        }

        foreach (var condition in policy.When)
        {
            var value = arguments.GetValueOrDefault(condition.Argument);
            if (condition.OneOf.Count > 0 && value is not null && condition.OneOf.Contains(value))
            {
                return $"{condition.Argument} is {Show(value)}, one of {string.Join(", ", condition.OneOf)}.";
            }

            if (condition.NotOneOf.Count > 0 && (value is null || !condition.NotOneOf.Contains(value)))
            {
                return $"{condition.Argument} is {(value is null ? "not given" : Show(value))}, not one of {string.Join(", ", condition.NotOneOf)}.";
            }

            if (condition.Matches.Length > 0 && value is not null && Matches(condition.Matches, value))
            {
                return $"{condition.Argument} is {Show(value)}, which matches {condition.Matches}.";
            }
        }

        return null;
    }

    /// <summary>The result a denied call gives the model.</summary>
    public static ToolResult Denied(ToolApproval approval) => new()
    {
        ToolCallId = approval.ToolCall.Id,
        IsError = true,
        Content = $"The call was denied{(approval.DecidedBy.Length > 0 ? $" by {approval.DecidedBy}" : "")}" +
                  $"{(approval.DecisionReason.Length > 0 ? $": {approval.DecisionReason}" : ".")} Do not make it again unless asked to.",
    };

    // The call's top-level arguments as text (a string's own text, any other value's JSON), with the schema's defaults
    // for those it leaves out.
    private static Dictionary<string, string> Arguments(string json, string? schemaJson)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        using (var call = JsonDocument.Parse(json.Length > 0 ? json : "{}"))
        {
            if (call.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new JsonException("The arguments are not a JSON object.");
            }

            foreach (var property in call.RootElement.EnumerateObject())
            {
                values[property.Name] = Text(property.Value);
            }
        }

        if (string.IsNullOrEmpty(schemaJson))
        {
            return values;
        }

        try
        {
            using var schema = JsonDocument.Parse(schemaJson);
            if (schema.RootElement.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in properties.EnumerateObject())
                {
                    if (!values.ContainsKey(property.Name) && property.Value.ValueKind == JsonValueKind.Object && property.Value.TryGetProperty("default", out var fallback))
                    {
                        values[property.Name] = Text(fallback);
                    }
                }
            }
        }
        catch (JsonException)
        {
            // A schema that cannot be read has no defaults to give.
        }

        return values;
    }

    private static string Text(JsonElement value) => value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();

    private static bool Matches(string pattern, string value)
    {
        try
        {
            return Regex.IsMatch(value, $"^(?:{pattern})$", RegexOptions.NonBacktracking, MatchTimeout);
        }
        catch (Exception exception) when (exception is ArgumentException or RegexMatchTimeoutException)
        {
            return true; // a pattern that cannot be checked guards the call
        }
    }

    private static string Show(string value) => value.Length <= 80 ? value : string.Concat(value.AsSpan(0, 77), "...");
}
