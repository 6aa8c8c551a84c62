using System.Text.Json;
using Json.Schema;

namespace Namra.Hosting;

/// <summary>
/// Checks tool-call arguments against the tool's JSON Schema; schemas are compiled once and cached. The tool executor
/// checks every call; the orchestrator checks arguments a person sets when approving a call.
/// </summary>
public sealed class ArgumentValidator : IDisposable
{
    private const int MaxProblems = 10;
    private const int MaxCachedSchemas = 1024;

    private static readonly EvaluationOptions FlagOnly = new() { OutputFormat = OutputFormat.Flag };

    private readonly BoundedCache _schemas = new(MaxCachedSchemas);

    /// <inheritdoc/>
    public void Dispose() => _schemas.Dispose();

    /// <summary>The problems with the arguments, empty when they match.</summary>
    public IReadOnlyList<string> Validate(string schemaJson, JsonElement arguments)
    {
        var schema = _schemas.GetOrAdd(schemaJson, json => JsonSchema.FromText(json));

        // Most calls match: a yes/no evaluation stops at the first failure and collects nothing. Only arguments that
        // fail are evaluated again for the list of what is wrong.
        if (schema.Evaluate(arguments, FlagOnly).IsValid)
        {
            return [];
        }

        var results = schema.Evaluate(arguments, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (results.IsValid)
        {
            return [];
        }

        var problems = (results.Details ?? [])
            .Where(detail => detail.Errors is { Count: > 0 })
            .SelectMany(detail => detail.Errors!.Select(error => $"{Location(detail.InstanceLocation.ToString())}: {error.Value}"))
            .Distinct(StringComparer.Ordinal)
            .Take(MaxProblems)
            .ToList();
        return problems.Count > 0 ? problems : ["the arguments do not match the tool's schema"];
    }

    private static string Location(string pointer) => pointer.Length == 0 ? "arguments" : $"arguments{pointer.Replace('/', '.')}";
}
