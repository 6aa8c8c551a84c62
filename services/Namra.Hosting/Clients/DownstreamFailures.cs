using Grpc.Core;
using Grpc.Core.Interceptors;
using Namra.Hosting.Roles;

namespace Namra.Hosting.Clients;

/// <summary>
/// Turns every failure of a call to one Namra service into a <see cref="DownstreamException"/> naming the service,
/// once its retries are over; a call cancelled by its own caller fails as it did. The one place a failed call
/// between services is worded.
/// </summary>
internal sealed class DownstreamFailures(NamraRole role) : Interceptor
{
    private RpcException Failure(RpcException exception, CallOptions options) =>
        exception is DownstreamException || options.CancellationToken.IsCancellationRequested
            ? exception
            : DownstreamException.From(role.Name, role.Service, exception);

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        var call = continuation(request, context);
        return new AsyncUnaryCall<TResponse>(Named(call.ResponseAsync, context.Options), Named(call.ResponseHeadersAsync, context.Options),
            call.GetStatus, call.GetTrailers, call.Dispose);
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        try
        {
            return continuation(request, context);
        }
        catch (RpcException exception)
        {
            throw Failure(exception, context.Options);
        }
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        var call = continuation(request, context);
        return new AsyncServerStreamingCall<TResponse>(new Reader<TResponse>(this, call.ResponseStream, context.Options),
            Named(call.ResponseHeadersAsync, context.Options), call.GetStatus, call.GetTrailers, call.Dispose);
    }

    private async Task<T> Named<T>(Task<T> answer, CallOptions options)
    {
        try
        {
            return await answer.ConfigureAwait(false);
        }
        catch (RpcException exception)
        {
            throw Failure(exception, options);
        }
    }

    private sealed class Reader<T>(DownstreamFailures failures, IAsyncStreamReader<T> inner, CallOptions options) : IAsyncStreamReader<T>
    {
        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            try
            {
                return await inner.MoveNext(cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException exception) when (!cancellationToken.IsCancellationRequested)
            {
                throw failures.Failure(exception, options);
            }
        }
    }
}
