using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Namra.Hosting.Telemetry;

/// <summary>
/// Records every gRPC call a service handles, with the metric names and labels of go-grpc-prometheus, so existing
/// dashboards and alerts apply: <c>grpc_server_started_total</c>, <c>grpc_server_handled_total{grpc_code}</c> and
/// <c>grpc_server_handling_seconds</c>. Registered before the exception interceptor, so it sees the mapped status codes.
/// </summary>
internal sealed class GrpcMetricsInterceptor : Interceptor
{
    private static readonly Meter Meter = new(NamraHostingExtensions.TelemetryPrefix + "Grpc");

    private static readonly Counter<long> Started = Meter.CreateCounter<long>("grpc_server_started", description: "RPCs started on the server.");

    private static readonly Counter<long> Handled = Meter.CreateCounter<long>("grpc_server_handled", description: "RPCs completed on the server, by status code.");

    private static readonly Histogram<double> HandlingSeconds = Meter.CreateHistogram("grpc_server_handling", "s",
        "Time from the start of an RPC to its completion on the server.", tags: null, advice: new InstrumentAdvice<double>
        {
            HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
        });

    // The labels of each method, split once. Methods are the services' own, a fixed set.
    private static readonly ConcurrentDictionary<string, (string Service, string Method)> Methods = new(StringComparer.Ordinal);

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
        var (service, method) = Methods.GetOrAdd(context.Method, SplitMethod);
        var tags = new TagList { { "grpc_type", type }, { "grpc_service", service }, { "grpc_method", method } };
        Started.Add(1, tags);
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
            HandlingSeconds.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
            tags.Add("grpc_code", CodeName(code));
            Handled.Add(1, tags);
        }
    }

    // "/namra.v1.ConfigService/GetAgent" -> ("namra.v1.ConfigService", "GetAgent")
    private static (string Service, string Method) SplitMethod(string fullMethod)
    {
        var slash = fullMethod.LastIndexOf('/');
        return slash <= 0 ? (fullMethod, fullMethod) : (fullMethod[1..slash], fullMethod[(slash + 1)..]);
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
