using System.Diagnostics;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace Namra.Hosting.Errors;

/// <summary>
/// Maps every exception that leaves a gRPC handler to a status the caller can act on, in one place: typed
/// <see cref="NamraException"/>s keep their code and details; cancellation and deadlines keep their meaning;
/// anything unexpected becomes <c>INTERNAL</c> with a generic message and the trace id, and its details go
/// to the logs only. Never <c>UNKNOWN</c>, never a stack trace on the wire.
/// </summary>
internal sealed class ExceptionMappingInterceptor(ILogger<ExceptionMappingInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not RpcException)
        {
            throw Map(exception, context);
        }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not RpcException)
        {
            throw Map(exception, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not RpcException)
        {
            throw Map(exception, context);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not RpcException)
        {
            throw Map(exception, context);
        }
    }

    private RpcException Map(Exception exception, ServerCallContext context)
    {
        switch (exception)
        {
            case NamraException namra:
                return ToRpcException(namra.StatusCode, namra.Message, namra.Details);
            case OperationCanceledException when context.CancellationToken.IsCancellationRequested:
                // The client went away or its deadline passed; the status is mostly for logs and metrics.
                return context.Deadline <= DateTime.UtcNow
                    ? ToRpcException(StatusCode.DeadlineExceeded, "The call's deadline passed.", [])
                    : ToRpcException(StatusCode.Cancelled, "The call was cancelled by the client.", []);
            case TimeoutException:
                return ToRpcException(StatusCode.DeadlineExceeded, "An operation took longer than it is allowed to.", []);
            default:
                var traceId = Activity.Current?.TraceId.ToString() ?? context.GetHttpContext().TraceIdentifier;
                Log.UnhandledException(logger, exception, context.Method, traceId);
                return ToRpcException(
                    StatusCode.Internal,
                    $"An internal error occurred (trace id {traceId}); the server's logs have the details.",
                    [new Google.Rpc.ErrorInfo { Reason = "INTERNAL", Domain = "namra.dev", Metadata = { ["trace_id"] = traceId } }]);
        }
    }

    private static RpcException ToRpcException(StatusCode code, string message, IReadOnlyList<IMessage> details)
    {
        var status = new Google.Rpc.Status { Code = (int)code, Message = message };
        foreach (var detail in details)
        {
            status.Details.Add(Any.Pack(detail));
        }

        return status.ToRpcException();
    }
}
