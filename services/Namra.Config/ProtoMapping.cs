using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Namra.Config.Registry;
using Namra.Config.Validation;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;

namespace Namra.Config;

/// <summary>Domain values to and from their protobuf forms, at the gRPC edge.</summary>
internal static class ProtoMapping
{
    public static Diagnostic ToProto(this AgentDiagnostic diagnostic) => new()
    {
        Severity = diagnostic.Severity == DiagnosticSeverity.Error ? Severity.Error : Severity.Warning,
        Code = diagnostic.Code,
        Message = diagnostic.Message,
        File = diagnostic.File,
        Line = diagnostic.Position.Line,
        Column = diagnostic.Position.Column,
        FieldPath = diagnostic.FieldPath,
        Hint = diagnostic.Hint,
    };

    public static AgentSummary ToSummary(this RegisteredAgent agent) => new()
    {
        Ref = agent.Ref,
        Description = agent.Agent.Description,
        Origin = agent.Origin,
        UpdateTime = Timestamp.FromDateTimeOffset(agent.UpdateTime),
    };

    /// <summary>
    /// INVALID_ARGUMENT carrying the diagnostics twice: as <c>google.rpc.BadRequest</c> field violations, which
    /// every gRPC client library can read, and as <c>namra.v1.Diagnostic</c> details with line and column.
    /// </summary>
    public static InvalidArgumentException ToInvalidArgument(this AgentLoadResult result, string fieldPrefix)
    {
        var errors = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        var violations = errors.Select(d => new Google.Rpc.BadRequest.Types.FieldViolation
        {
            Field = d.FieldPath.Length == 0 ? fieldPrefix : $"{fieldPrefix}:{d.FieldPath}",
            Description = d.ToString(),
        }).ToList();
        var summary = errors.Count == 1 ? errors[0].ToString() : $"The agent definition has {errors.Count} errors; the first: {errors[0]}";
        return new InvalidArgumentException(summary, violations, [.. result.Diagnostics.Select(d => (IMessage)d.ToProto())]);
    }
}
