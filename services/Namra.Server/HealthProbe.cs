using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Namra.Server;

/// <summary>
/// <c>namra-server health [ADDRESS]</c>: asks a running server's <c>grpc.health.v1.Health</c> whether it serves,
/// for container health checks (images carry no other probe). Exit code 0 when serving, 1 otherwise.
/// </summary>
public static class HealthProbe
{
    /// <summary>True when the arguments ask for a probe rather than a server.</summary>
    public static bool IsRequested(string[] args) => args is ["health", ..];

    /// <summary>Probes <c>ADDRESS</c> (default: this container's own gRPC port on loopback) and prints the answer.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var port = Environment.GetEnvironmentVariable("Namra__Host__GrpcPort") is { Length: > 0 } configured ? configured : "50051";
        var address = args.Length > 1 ? args[1] : $"http://127.0.0.1:{port}";
        try
        {
            using var channel = GrpcChannel.ForAddress(address);
            var response = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(3)).ConfigureAwait(false);
            await Console.Out.WriteLineAsync($"{address}: {response.Status}").ConfigureAwait(false);
            return response.Status == HealthCheckResponse.Types.ServingStatus.Serving ? 0 : 1;
        }
        catch (Grpc.Core.RpcException exception)
        {
            await Console.Error.WriteLineAsync($"{address}: {exception.StatusCode} {exception.Status.Detail}").ConfigureAwait(false);
            return 1;
        }
    }
}
