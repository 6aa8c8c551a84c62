using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Namra.Hosting;

/// <summary>
/// The addresses a Namra process actually listens on, known once the server has started (a configured
/// port of 0 becomes the port the operating system picked).
/// </summary>
public sealed class NamraEndpoints
{
    private ListenOptions? _grpc;
    private ListenOptions? _http;

    /// <summary>The gRPC (HTTP/2 cleartext) address, such as <c>http://127.0.0.1:50051</c>.</summary>
    public Uri GrpcAddress => ToUri(_grpc, "gRPC");

    /// <summary>The HTTP/1.1 address serving <c>/metrics</c> and REST.</summary>
    public Uri HttpAddress => ToUri(_http, "HTTP");

    internal void Capture(ListenOptions grpc, ListenOptions http)
    {
        _grpc = grpc;
        _http = http;
    }

    private static Uri ToUri(ListenOptions? listen, string name)
    {
        if (listen?.IPEndPoint is not { Port: > 0 } endpoint)
        {
            throw new InvalidOperationException($"The {name} endpoint is not bound yet; read it after the host has started.");
        }

        var host = endpoint.Address.Equals(IPAddress.Any) ? "127.0.0.1"
            : endpoint.Address.Equals(IPAddress.IPv6Any) ? "[::1]"
            : endpoint.Address.ToString();
        if (endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !host.StartsWith('['))
        {
            host = $"[{host}]";
        }

        return new Uri($"http://{host}:{endpoint.Port}");
    }
}
