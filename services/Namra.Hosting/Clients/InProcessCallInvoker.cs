using System.Diagnostics.CodeAnalysis;
using System.Collections.Concurrent;
using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.DependencyInjection;
using Namra.Hosting.Errors;

namespace Namra.Hosting.Clients;

/// <summary>
/// A gRPC service hosted in this process, as its generated <c>BindService</c> describes it, so calls to it from
/// this process can skip the network stack. Registered by each service's hosting extension.
/// </summary>
/// <param name="Role">The role name (<c>llm-gateway</c>...).</param>
/// <param name="ServiceType">The service implementation: the container's instance, or one created from it.</param>
/// <param name="Bind">The generated <c>BindService(ServiceBinderBase, TServiceBase)</c>.</param>
public sealed record InProcessService(string Role, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] Type ServiceType, Action<ServiceBinderBase, object> Bind)
{
    /// <summary>The service implementation: the container's instance, or one created from it.</summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)]
    public Type ServiceType { get; } = ServiceType;

    /// <summary>
    /// The service <typeparamref name="TService"/>, bound by its generated base's <c>BindService</c>:
    /// <c>InProcessService.Of&lt;ConfigGrpcService, ConfigService.ConfigServiceBase&gt;("config", ConfigService.BindService)</c>.
    /// </summary>
    public static InProcessService Of<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TService, TBase>(string role, Action<ServiceBinderBase, TBase> bind)
        where TService : class, TBase
    {
        ArgumentNullException.ThrowIfNull(bind);
        return new(role, typeof(TService), (binder, service) => bind(binder, (TBase)service));
    }
}

/// <summary>
/// Calls services hosted in this process directly: the generated client invokes the service's handler through
/// the same error mapping a network call gets, with the caller's deadline and cancellation, no serialization, no
/// HTTP. Requests and responses are copied, so neither side sees the other change a message. Unary and server
/// streaming calls (all Namra's services use) are served; the others are refused.
/// </summary>
internal sealed class InProcessCallInvoker : CallInvoker
{
    // In-process calls send no response headers: one finished, read-only empty set serves them all.
    private static readonly Task<Metadata> NoHeaders = Task.FromResult(Metadata.Empty);

    private readonly ConcurrentDictionary<string, Delegate> _handlers = new(StringComparer.Ordinal);
    private readonly Interceptor _errors;

    public InProcessCallInvoker(IServiceProvider services, InProcessService service)
    {
        // The instance the network is served by, when registered (AddNamraGrpcService, which every role uses). Made by
        // ActivatorUtilities only when not: its first use builds a table of every method in a NativeAOT process, a
        // few milliseconds of an embedded run's start.
        var implementation = services.GetService(service.ServiceType) ?? ActivatorUtilities.CreateInstance(services, service.ServiceType);
        service.Bind(new Binder(_handlers), implementation);
        _errors = new ExceptionMappingInterceptor(services.GetRequiredService<Microsoft.Extensions.Logging.ILogger<ExceptionMappingInterceptor>>());
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        AsyncUnaryCall(method, host, options, request).ResponseAsync.GetAwaiter().GetResult();

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        var handler = Handler<UnaryServerMethod<TRequest, TResponse>>(method);
        var context = new InProcessServerCallContext(method.FullName, options);
        var response = Run(context, async () => Copy(await _errors.UnaryServerHandler(Copy(request), context, handler).ConfigureAwait(false)));
        return new AsyncUnaryCall<TResponse>(response, NoHeaders, () => context.Status, () => context.ResponseTrailers, context.Dispose);
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        var handler = Handler<ServerStreamingServerMethod<TRequest, TResponse>>(method);
        var context = new InProcessServerCallContext(method.FullName, options);
        var channel = Channel.CreateBounded<TResponse>(new BoundedChannelOptions(64) { SingleReader = true, SingleWriter = true });
        var writer = new StreamWriter<TResponse>(channel.Writer, context.CancellationToken);
        var running = Run(context, async () =>
        {
            await _errors.ServerStreamingServerHandler(Copy(request), writer, context, handler).ConfigureAwait(false);
            return true;
        });
        _ = running.ContinueWith(t => channel.Writer.TryComplete(t.Exception?.InnerException), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return new AsyncServerStreamingCall<TResponse>(new StreamReader<TResponse>(channel.Reader, context), NoHeaders,
            () => context.Status, () => context.ResponseTrailers, context.Dispose);
    }

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName}: client streaming is not served in process."));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName}: duplex streaming is not served in process."));

    private T Handler<T>(IMethod method)
        where T : Delegate =>
        _handlers.TryGetValue(method.FullName, out var handler) && handler is T typed
            ? typed
            : throw new RpcException(new Status(StatusCode.Unimplemented, $"{method.FullName} is not served in this process."));

    private static async Task<T> Run<T>(InProcessServerCallContext context, Func<Task<T>> call)
    {
        try
        {
            // The handler starts on the caller's thread, as an awaited method would: the caller waits for it anyway,
            // and a hop to the thread pool per call was the largest single cost of an embedded run. Its ambient
            // state (Activity.Current, AsyncLocal values) cannot leak back: an async method restores the caller's.
            var result = await call().ConfigureAwait(false);
            context.Status = Status.DefaultSuccess;
            return result;
        }
        catch (RpcException exception)
        {
            context.Status = exception.Status;
            throw;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            context.Status = context.DeadlinePassed ? new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded") : new Status(StatusCode.Cancelled, "Call canceled by the client.");
            throw new RpcException(context.Status);
        }
        finally
        {
            // Callers rarely dispose a finished call: its deadline timer and its link to their token go now.
            context.Release();
        }
    }

    private static T Copy<T>(T message) => message is IDeepCloneable<T> cloneable ? cloneable.Clone() : message;

    private sealed class Binder(ConcurrentDictionary<string, Delegate> handlers) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            handlers[method.FullName] = handler!;

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            handlers[method.FullName] = handler!;

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler)
        {
        }

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler)
        {
        }
    }

    private sealed class StreamWriter<T>(ChannelWriter<T> writer, CancellationToken cancellationToken) : IServerStreamWriter<T>
    {
        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(T message) => writer.WriteAsync(Copy(message), cancellationToken).AsTask();

        public async Task WriteAsync(T message, CancellationToken cancellation)
        {
            using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, cancellation);
            await writer.WriteAsync(Copy(message), both.Token).ConfigureAwait(false);
        }
    }

    private sealed class StreamReader<T>(ChannelReader<T> reader, InProcessServerCallContext context) : IAsyncStreamReader<T>
    {
        public T Current { get; private set; } = default!;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            try
            {
                if (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false) && reader.TryRead(out var item))
                {
                    Current = item;
                    return true;
                }

                return false;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested || context.CancellationToken.IsCancellationRequested)
            {
                throw new RpcException(context.DeadlinePassed ? new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded") : new Status(StatusCode.Cancelled, "Call canceled by the client."));
            }
        }
    }
}

/// <summary>Tells a service whether a call came from this process or over the network.</summary>
public static class InProcessCalls
{
    /// <summary>True when <paramref name="context"/> is a call from this process (no network, no other caller).</summary>
    public static bool IsInProcess(ServerCallContext context) => context is InProcessServerCallContext;
}

/// <summary>The server's view of an in-process call: the caller's deadline, cancellation and metadata.</summary>
internal sealed class InProcessServerCallContext : ServerCallContext, IDisposable
{
    private readonly CancellationTokenSource _cancellation;
    private readonly CancellationToken _token;
    private readonly string _method;
    private readonly DateTime _deadline;
    private readonly Metadata _requestHeaders;
    private int _released;

    public InProcessServerCallContext(string method, CallOptions options)
    {
        _method = method;
        _deadline = options.Deadline ?? DateTime.MaxValue;
        _requestHeaders = options.Headers ?? [];
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken);
        _token = _cancellation.Token;
        if (options.Deadline is { } deadline && deadline != DateTime.MaxValue)
        {
            var remaining = deadline.ToUniversalTime() - DateTime.UtcNow;
            if (remaining < TimeSpan.FromDays(20))
            {
                _cancellation.CancelAfter(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
            }
        }
    }

    public bool DeadlinePassed => _deadline != DateTime.MaxValue && DateTime.UtcNow >= _deadline.ToUniversalTime();

    protected override string MethodCore => _method;

    protected override string HostCore => "in-process";

    protected override string PeerCore => "in-process";

    protected override DateTime DeadlineCore => _deadline;

    protected override Metadata RequestHeadersCore => _requestHeaders;

    protected override CancellationToken CancellationTokenCore => _token;

    protected override Metadata ResponseTrailersCore { get; } = [];

    protected override Status StatusCore { get; set; }

    protected override WriteOptions? WriteOptionsCore { get; set; }

    protected override AuthContext AuthContextCore { get; } = new(null, []);

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("Propagation tokens are not used by Namra's services.");

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;

    /// <summary>
    /// The handler has finished: its cancellation is released (the deadline's timer, the registration on the
    /// caller's token) without being signalled. Until then each call holds both, whether or not it is disposed.
    /// </summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _cancellation.Dispose();
        }
    }

    /// <summary>Disposing a call cancels it, as it does over the network: a handler still running stops.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        try
        {
            _cancellation.Cancel();
        }
        catch (AggregateException)
        {
            // a handler's cancellation callback failed; the call is over either way
        }

        _cancellation.Dispose();
    }
}
