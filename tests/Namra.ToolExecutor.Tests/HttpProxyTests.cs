using System.Net;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>The process's proxy (HTTP_PROXY) is process-wide: these tests set it, so they run alone.</summary>
[CollectionDefinition(nameof(HttpProxyTests), DisableParallelization = true)]
public sealed class HttpProxyTestGroup;

/// <summary>
/// An ambient proxy let requests to internal addresses through: the address guard checked the proxy's address, which
/// was public, and the proxy fetched the target. The http tool's clients use no ambient proxy at all.
/// </summary>
[Collection(nameof(HttpProxyTests))]
public sealed class HttpProxyTests : IAsyncLifetime
{
    private LocalWebServer _proxy = null!;
    private int _proxied;
    private IWebProxy _previous = null!;
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        // A forward proxy receives the target in absolute form and answers for it.
        _proxy = await LocalWebServer.StartAsync(web => web.Run(context =>
        {
            Interlocked.Increment(ref _proxied);
            return context.Response.WriteAsync($"fetched by the proxy: {context.Request.Host}");
        }));
        _previous = HttpClient.DefaultProxy;
        HttpClient.DefaultProxy = new WebProxy(_proxy.BaseUrl);
        _host = await NamraTestHost.StartAsync("tool-executor");
    }

    public async ValueTask DisposeAsync()
    {
        HttpClient.DefaultProxy = _previous;
        await _host.DisposeAsync();
        await _proxy.DisposeAsync();
    }

    [Fact]
    public async Task TheToolsClients_IgnoreTheAmbientProxy()
    {
        // The name resolves nowhere: only a proxy could answer for it. Both of the tool's clients are made by one
        // factory method (HttpTool.Handler); the one that may reach private networks is used here because the proxy
        // listens on loopback, where the guarded client would refuse the proxy itself and prove nothing.
        const string Url = "http://namra-target.invalid/admin";
        // The test's own channel must not go through the proxy either.
        using var channel = GrpcChannel.ForAddress($"http://{_host.Channel.Target}", new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { UseProxy = false } });
        var client = new ToolExecutorService.ToolExecutorServiceClient(channel);
        var response = await client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig
            {
                Name = "web",
                Type = ToolType.BuiltinHttp,
                Http = new HttpToolSettings { AllowPrivateNetworks = true },
            },
            Call = new ToolCall { Id = "call_1", Name = "web", ArgumentsJson = $$"""{"url":"{{Url}}"}""" },
        });

        Assert.True(response.Result.IsError, response.Result.Content);
        Assert.StartsWith("The request failed", response.Result.Content, StringComparison.Ordinal);
        Assert.Equal(0, _proxied);
    }
}
