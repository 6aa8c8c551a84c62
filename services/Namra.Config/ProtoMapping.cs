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

        // Details travel in a trailer, which clients cap (Grpc.Net.Client: 64 KiB of headers); a call that
        // reports too much would fail as INTERNAL instead of INVALID_ARGUMENT.
        var sent = errors.Take(MaxDetails).ToList();
        var violations = sent.Select(d => new Google.Rpc.BadRequest.Types.FieldViolation
        {
            Field = d.FieldPath.Length == 0 ? fieldPrefix : $"{fieldPrefix}:{d.FieldPath}",
            Description = d.ToString(),
        }).ToList();
        if (errors.Count > sent.Count)
        {
            violations.Add(new Google.Rpc.BadRequest.Types.FieldViolation
            {
                Field = fieldPrefix,
                Description = $"{errors.Count - sent.Count} more errors not listed; validate the file for all of them.",
            });
        }

        var summary = errors.Count == 1 ? errors[0].ToString() : $"The agent definition has {errors.Count} errors; the first: {errors[0]}";
        return new InvalidArgumentException(summary, violations, [.. sent.Select(d => (IMessage)d.ToProto())]);
    }

    private const int MaxDetails = 25;
}
