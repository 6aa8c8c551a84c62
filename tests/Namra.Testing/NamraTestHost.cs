using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Namra.Hosting;
using Namra.Server;

namespace Namra.Testing;

/// <summary>
/// A real Namra process composition on real sockets: Kestrel on 127.0.0.1 with ports picked by the
/// operating system, the same <see cref="NamraComposition"/> as <c>namra-server</c>.
/// </summary>
public sealed class NamraTestHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private NamraTestHost(WebApplication app, GrpcChannel channel, HttpClient http)
    {
        _app = app;
        Channel = channel;
        Http = http;
    }

    /// <summary>A channel to the gRPC endpoint (HTTP/2 cleartext).</summary>
    public GrpcChannel Channel { get; }

    /// <summary>A client of the HTTP/1.1 endpoint (metrics, REST).</summary>
    public HttpClient Http { get; }

    /// <summary>The host's services, for assertions on internal state.</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>Starts the roles given (comma-separated, as <c>--services</c>) with extra settings.</summary>
    public static async Task<NamraTestHost> StartAsync(string services = "all", IDictionary<string, string?>? settings = null,
        Action<WebApplicationBuilder>? configure = null, Func<WebApplicationBuilder, WebApplication>? build = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["services"] = services,
            ["Namra:Host:ListenAddress"] = "127.0.0.1",
            ["Namra:Host:GrpcPort"] = "0",
            ["Namra:Host:HttpPort"] = "0",
            ["Namra:Host:ShutdownTimeout"] = "00:00:05",
        });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        builder.Logging.ClearProviders();
        configure?.Invoke(builder);
        var app = (build ?? NamraComposition.Build)(builder);
        await app.StartAsync().ConfigureAwait(false);
        var endpoints = app.Services.GetRequiredService<NamraEndpoints>();
        var channel = GrpcChannel.ForAddress(endpoints.GrpcAddress);
        var http = new HttpClient { BaseAddress = endpoints.HttpAddress };
        return new NamraTestHost(app, channel, http);
    }

    /// <summary>Stops the host as SIGTERM would: drain, then stop.</summary>
    public Task StopAsync() => _app.StopAsync();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        Http.Dispose();
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
