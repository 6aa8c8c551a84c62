using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Prometheus;

namespace Namra.Hosting.Telemetry;

/// <summary>
/// Records every gRPC call a service handles in prometheus-net, with the metric names and labels of
/// go-grpc-prometheus, so existing dashboards and alerts apply: <c>grpc_server_started_total</c>,
/// <c>grpc_server_handled_total{grpc_code}</c> and <c>grpc_server_handling_seconds</c>.
/// Registered before the exception interceptor, so it sees the mapped status codes.
/// </summary>
internal sealed class GrpcMetricsInterceptor : Interceptor
{
    private static readonly string[] CallLabels = ["grpc_type", "grpc_service", "grpc_method"];

    private static readonly Counter Started = Metrics.CreateCounter(
        "grpc_server_started_total", "RPCs started on the server.", CallLabels);

    private static readonly Counter Handled = Metrics.CreateCounter(
        "grpc_server_handled_total", "RPCs completed on the server, by status code.", [.. CallLabels, "grpc_code"]);

    private static readonly Histogram HandlingSeconds = Metrics.CreateHistogram(
        "grpc_server_handling_seconds", "Time from the start of an RPC to its completion on the server.",
        new HistogramConfiguration
        {
            LabelNames = CallLabels,
            Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
        });

    // The labelled series of each method, found once: looking them up by label values costs allocations and
    // hashing on every call. Methods are the services' own, a fixed set.
    private static readonly ConcurrentDictionary<(string Type, string Method), MethodSeries> SeriesByMethod = new();

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
        Observe("unary", context, () => continuation(request, context));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        Observe("client_stream", context, () => continuation(requestStream, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        Observe("server_stream", context, async () =>
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            return true;
        });

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        Observe("bidi_stream", context, async () =>
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
            return true;
        });

    private static async Task<T> Observe<T>(string type, ServerCallContext context, Func<Task<T>> call)
    {
        var series = SeriesByMethod.GetOrAdd((type, context.Method), key => new MethodSeries(key.Type, key.Method));
        series.Started.Inc();
        var started = Stopwatch.GetTimestamp();
        var code = StatusCode.OK;
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RpcException exception)
        {
            code = exception.StatusCode;
            throw;
        }
        catch (OperationCanceledException)
        {
            code = StatusCode.Cancelled;
            throw;
        }
        catch
        {
            code = StatusCode.Internal;
            throw;
        }
        finally
        {
            series.Seconds.Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            series.Handled(code).Inc();
        }
    }

    // "/namra.v1.ConfigService/GetAgent" -> ("namra.v1.ConfigService", "GetAgent")
    private static (string Service, string Method) SplitMethod(string fullMethod)
    {
        var slash = fullMethod.LastIndexOf('/');
        return slash <= 0 ? (fullMethod, fullMethod) : (fullMethod[1..slash], fullMethod[(slash + 1)..]);
    }

    private sealed class MethodSeries
    {
        private readonly string _type;
        private readonly string _service;
        private readonly string _method;
        private readonly Counter.Child?[] _handled = new Counter.Child?[(int)StatusCode.Unauthenticated + 1];

        public MethodSeries(string type, string fullMethod)
        {
            _type = type;
            (_service, _method) = SplitMethod(fullMethod);
            Started = GrpcMetricsInterceptor.Started.WithLabels(_type, _service, _method);
            Seconds = HandlingSeconds.WithLabels(_type, _service, _method);
        }

        public Counter.Child Started { get; }

        public Histogram.Child Seconds { get; }

        public Counter.Child Handled(StatusCode code) => (int)code >= 0 && (int)code < _handled.Length
            ? _handled[(int)code] ??= GrpcMetricsInterceptor.Handled.WithLabels(_type, _service, _method, CodeName(code))
            : GrpcMetricsInterceptor.Handled.WithLabels(_type, _service, _method, CodeName(code));
    }

    private static string CodeName(StatusCode code) => code switch
    {
        StatusCode.OK => "OK",
        StatusCode.Cancelled => "Canceled",
        StatusCode.InvalidArgument => "InvalidArgument",
        StatusCode.DeadlineExceeded => "DeadlineExceeded",
        StatusCode.NotFound => "NotFound",
        StatusCode.AlreadyExists => "AlreadyExists",
        StatusCode.PermissionDenied => "PermissionDenied",
        StatusCode.ResourceExhausted => "ResourceExhausted",
        StatusCode.FailedPrecondition => "FailedPrecondition",
        StatusCode.Aborted => "Aborted",
        StatusCode.OutOfRange => "OutOfRange",
        StatusCode.Unimplemented => "Unimplemented",
        StatusCode.Internal => "Internal",
        StatusCode.Unavailable => "Unavailable",
        StatusCode.DataLoss => "DataLoss",
        StatusCode.Unauthenticated => "Unauthenticated",
        _ => "Unknown",
    };
}
