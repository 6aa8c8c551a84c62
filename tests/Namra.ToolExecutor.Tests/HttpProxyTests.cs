using System.Diagnostics;
using System.Globalization;
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

/// <summary>
/// The proxy variables of the executor's own environment, as an operator's shell or a container sets them: a real
/// tool-executor process started with HTTP_PROXY, HTTPS_PROXY and ALL_PROXY naming a proxy on loopback that counts
/// what it is asked. .NET reads them when the process starts, so only a process of its own shows what they do.
/// </summary>
public sealed class HttpProxyVariablesTests : IAsyncLifetime
{
    private LocalWebServer _proxy = null!;
    private LocalWebServer _site = null!;
    private int _proxied;
    private int _visits;
    private Process _executor = null!;
    private GrpcChannel _channel = null!;

    public async ValueTask InitializeAsync()
    {
        _proxy = await LocalWebServer.StartAsync(web => web.Run(context =>
        {
            Interlocked.Increment(ref _proxied);
            return context.Response.WriteAsync($"fetched by the proxy: {context.Request.Host}");
        }));
        _site = await LocalWebServer.StartAsync(web => web.Run(context =>
        {
            Interlocked.Increment(ref _visits);
            return context.Response.WriteAsync("the site itself");
        }));
        var port = LocalPorts.Free();
        _executor = StartExecutor(port, _proxy.BaseUrl.ToString().TrimEnd('/'));
        await LocalPorts.WaitUntilListeningAsync(port);
        // The test's own calls go straight to the executor, whatever this process's environment says.
        _channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}", new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { UseProxy = false } });
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        _executor.Kill(entireProcessTree: true);
        await _executor.WaitForExitAsync();
        _executor.Dispose();
        await _site.DisposeAsync();
        await _proxy.DisposeAsync();
    }

    [Fact]
    public async Task TheGuardedTool_RefusesALoopbackTarget_AndNeverAsksTheProxy()
    {
        var result = await FetchAsync(new HttpToolSettings(), new Uri(_site.BaseUrl, "/admin"));

        Assert.True(result.IsError, result.Content);
        Assert.Contains("internal address", result.Content, StringComparison.Ordinal);
        Assert.Equal((0, 0), (_proxied, _visits));
    }

    [Fact]
    public async Task AToolAllowedPrivateNetworks_ReachesALoopbackSiteDirectly_NotThroughTheProxy()
    {
        var result = await FetchAsync(new HttpToolSettings { AllowPrivateNetworks = true }, new Uri(_site.BaseUrl, "/status"));

        Assert.False(result.IsError, result.Content);
        Assert.EndsWith("the site itself", result.Content, StringComparison.Ordinal);
        Assert.Equal((0, 1), (_proxied, _visits));
    }

    private async Task<ToolResult> FetchAsync(HttpToolSettings settings, Uri url)
    {
        var client = new ToolExecutorService.ToolExecutorServiceClient(_channel);
        var response = await client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig { Name = "web", Type = ToolType.BuiltinHttp, Http = settings },
            Call = new ToolCall { Id = "call_1", Name = "web", ArgumentsJson = $$"""{"url":"{{url}}"}""" },
        }, deadline: DateTime.UtcNow.AddSeconds(30));
        return response.Result;
    }

    private static Process StartExecutor(int grpcPort, string proxy)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "namra-server.dll"));
        start.ArgumentList.Add("--services");
        start.ArgumentList.Add("tool-executor");
        start.Environment["Namra__Host__ListenAddress"] = "127.0.0.1";
        start.Environment["Namra__Host__GrpcPort"] = grpcPort.ToString(CultureInfo.InvariantCulture);
        start.Environment["Namra__Host__HttpPort"] = LocalPorts.Free().ToString(CultureInfo.InvariantCulture);
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var name in new[] { "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy" })
        {
            start.Environment[name] = proxy;
        }

        // Nothing may be exempted from the proxy by the environment: loopback must go direct because of the tool alone.
        start.Environment.Remove("NO_PROXY");
        start.Environment.Remove("no_proxy");
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
