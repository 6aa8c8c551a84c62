using System.Net.Sockets;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Namra.Hosting.Clients;

/// <summary>
/// Retries a unary call to another Namra service that ended <c>UNAVAILABLE</c>: up to five attempts, with exponential
/// backoff and full jitter (50 ms doubling to 1 s, as gRPC's own retry policy), never past the call's deadline or
/// its cancellation. Only a method safe to repeat (its proto's <c>idempotency_level</c> is <c>NO_SIDE_EFFECTS</c> or
/// <c>IDEMPOTENT</c>) is retried whatever happened; any other (<c>ExecuteTool</c>, <c>Remember</c>) only when
/// the connection could not be made, so nothing reached the service. A server-streaming call is sent again under the
/// same rules only until its first message arrives: what was read is never read twice. A call that succeeds the first
/// time costs one more await, where the channel's built-in retry policy buffered every call so it could be sent again.
/// The one retry between Namra's services.
/// </summary>
internal sealed class UnavailableRetry(TimeProvider timeProvider, IEnumerable<ServiceDescriptor> services) : Interceptor
{
    private const int MaxAttempts = 5;
    private static readonly TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);

    // The methods of the services this process may call, by the name a call carries ("/namra.v1.MemoryService/GetRunRecord"):
    // read from their descriptors at the first failure, so a process whose calls succeed never builds them.
    private readonly Lazy<Dictionary<string, MethodDescriptor>> _methods = new(() => services.SelectMany(service => service.Methods)
        .ToDictionary(method => $"/{method.Service.FullName}/{method.Name}", StringComparer.Ordinal));

    // Safe to repeat, as the method's proto says: its idempotency_level is NO_SIDE_EFFECTS or IDEMPOTENT.
    private static bool SafeToRepeat(MethodDescriptor method) =>
        method.GetOptions()?.IdempotencyLevel is MethodOptions.Types.IdempotencyLevel.NoSideEffects or MethodOptions.Types.IdempotencyLevel.Idempotent;

    /// <summary>
    /// Whether the call failed before reaching the service: its connection could not be made (refused, or no route or
    /// address to make it to). A connection reset or aborted once made may have carried the call, so it does not count.
    /// </summary>
    internal static bool NothingWasSent(RpcException exception)
    {
        for (var cause = exception.Status.DebugException; cause is not null; cause = cause.InnerException)
        {
            if (cause is SocketException socket)
            {
                return socket.SocketErrorCode is SocketError.ConnectionRefused or SocketError.HostNotFound or SocketError.HostUnreachable
                    or SocketError.NetworkUnreachable or SocketError.AddressNotAvailable or SocketError.NoData or SocketError.TryAgain;
            }
        }

        return false;
    }

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        var attempts = new UnaryAttempts<TResponse>(this, context.Method.FullName, context.Options, () => continuation(request, context));
        return new AsyncUnaryCall<TResponse>(attempts.Response, attempts.HeadersAsync(), attempts.GetStatus, attempts.GetTrailers, attempts.Dispose);
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return continuation(request, context);
            }
            catch (RpcException exception) when (Backoff(exception, attempt, context.Method.FullName, context.Options) is { } delay)
            {
                WaitAsync(delay, context.Options.CancellationToken).GetAwaiter().GetResult();
            }
        }
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
    {
        var stream = new StreamAttempts<TResponse>(this, context.Method.FullName, context.Options, () => continuation(request, context));
        return new AsyncServerStreamingCall<TResponse>(stream, stream.HeadersAsync(), stream.GetStatus, stream.GetTrailers, stream.Dispose);
    }

    // How long to wait before the next attempt, or null when the failure stands: not UNAVAILABLE, a call that reached
    // the service and is not safe to repeat, attempts used up, cancelled, or the wait would pass the deadline.
    private TimeSpan? Backoff(RpcException exception, int attempt, string method, CallOptions options)
    {
        if (exception.StatusCode != StatusCode.Unavailable || attempt >= MaxAttempts || options.CancellationToken.IsCancellationRequested
            || !((_methods.Value.TryGetValue(method, out var called) && SafeToRepeat(called)) || NothingWasSent(exception)))
        {
            return null;
        }

        var ceiling = Math.Min(MaxBackoff.TotalMilliseconds, InitialBackoff.TotalMilliseconds * Math.Pow(2, attempt - 1));
        var delay = TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * ceiling);
        return options.Deadline is { } deadline && deadline != DateTime.MaxValue && timeProvider.GetUtcNow().UtcDateTime + delay >= deadline.ToUniversalTime()
            ? null
            : delay;
    }

    private async Task WaitAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, timeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, "Call canceled by the client."));
        }
    }

    // One logical call: its current attempt, replaced after each retried failure.
    private abstract class Attempts<TCall>(UnavailableRetry retry, string method, CallOptions options, Func<TCall> start)
        where TCall : class, IDisposable
    {
        private TCall _current = start();
        private int _attempt = 1;

        protected TCall Attempt => Volatile.Read(ref _current);

        public void Dispose() => Attempt.Dispose();

        // How long to wait before sending the call again after this failure; null when the failure stands.
        protected TimeSpan? Backoff(RpcException exception) => retry.Backoff(exception, _attempt, method, options);

        // Waits, then sends the call again in place of the attempt that failed.
        protected async Task AgainAsync(TimeSpan delay)
        {
            await retry.WaitAsync(delay, options.CancellationToken).ConfigureAwait(false);
            _attempt++;
            var failed = _current;
            Volatile.Write(ref _current, start());
            failed.Dispose();
        }
    }

    private sealed class UnaryAttempts<TResponse> : Attempts<AsyncUnaryCall<TResponse>>
    {
        public UnaryAttempts(UnavailableRetry retry, string method, CallOptions options, Func<AsyncUnaryCall<TResponse>> start)
            : base(retry, method, options, start) => Response = RunAsync();

        public Task<TResponse> Response { get; }

        public Status GetStatus() => Attempt.GetStatus();

        public Metadata GetTrailers() => Attempt.GetTrailers();

        // The headers of the attempt that answered, known once it has.
        public async Task<Metadata> HeadersAsync()
        {
            try
            {
                await Response.ConfigureAwait(false);
            }
            catch (RpcException)
            {
                // The last attempt's own headers task says how it failed.
            }

            return await Attempt.ResponseHeadersAsync.ConfigureAwait(false);
        }

        private async Task<TResponse> RunAsync()
        {
            while (true)
            {
                TimeSpan delay;
                try
                {
                    return await Attempt.ResponseAsync.ConfigureAwait(false);
                }
                catch (RpcException exception) when (Backoff(exception) is { } wait)
                {
                    delay = wait;
                }

                await AgainAsync(delay).ConfigureAwait(false);
            }
        }
    }

    // Sent again only until its first message came: what was read is never read twice.
    private sealed class StreamAttempts<TResponse>(UnavailableRetry retry, string method, CallOptions options, Func<AsyncServerStreamingCall<TResponse>> start)
        : Attempts<AsyncServerStreamingCall<TResponse>>(retry, method, options, start), IAsyncStreamReader<TResponse>
    {
        private bool _received;

        public TResponse Current => Attempt.ResponseStream.Current;

        public Status GetStatus() => Attempt.GetStatus();

        public Metadata GetTrailers() => Attempt.GetTrailers();

        // The headers of the attempt that sent them: a failed attempt's headers wait for the attempt that replaced it.
        public async Task<Metadata> HeadersAsync()
        {
            while (true)
            {
                var attempt = Attempt;
                try
                {
                    return await attempt.ResponseHeadersAsync.ConfigureAwait(false);
                }
                catch (RpcException) when (!ReferenceEquals(attempt, Attempt))
                {
                    // replaced while its headers failed: ask the next attempt
                }
            }
        }

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            while (true)
            {
                TimeSpan delay;
                try
                {
                    var more = await Attempt.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false);
                    _received |= more;
                    return more;
                }
                catch (RpcException exception) when (!_received && Backoff(exception) is { } wait)
                {
                    delay = wait;
                }

                await AgainAsync(delay).ConfigureAwait(false);
            }
        }
    }
}
