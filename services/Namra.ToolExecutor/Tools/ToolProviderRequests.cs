using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Contracts.V1;

namespace Namra.ToolExecutor.Tools;

/// <summary>A call as a <c>ToolProviderService</c> receives it, for <c>grpc</c> providers and Python plugins alike.</summary>
internal static class ToolProviderRequests
{
    /// <summary>The request: the tool, its arguments, the entry's options, and who is calling with which idempotency key.</summary>
    public static InvokeToolRequest Invoke(ToolCallInfo call, JsonElement arguments, Struct? options) => new()
    {
        Name = call.Name,
        ArgumentsJson = arguments.GetRawText(),
        CallId = call.CallId,
        Config = options ?? new Struct(),
        IdempotencyKey = call.IdempotencyKey,
        RunId = call.RunId,
        AgentName = call.AgentName,
    };

    /// <summary>
    /// The call's metadata: its idempotency key (as providers that deduplicate on a header expect it). The trace
    /// context (<c>traceparent</c>) is added by the HTTP handler, from the tool's span.
    /// </summary>
    public static Metadata Headers(ToolCallInfo call, Metadata? headers = null)
    {
        headers ??= [];
        headers.Add("idempotency-key", call.IdempotencyKey);
        return headers;
    }
}
