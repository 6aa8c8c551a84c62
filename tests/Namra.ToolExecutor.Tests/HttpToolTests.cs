using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>The http tool against a local web server, and the SSRF catalogue: internal addresses in every spelling, and redirects.</summary>
public sealed class HttpToolTests : IAsyncLifetime
{
    private LocalWebServer _web = null!;
    private Uri _base = null!;
    private int _hits;
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _web = await LocalWebServer.StartAsync(Map);
        _base = _web.BaseUrl;
        _host = await NamraTestHost.StartAsync("tool-executor");
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    private void Map(WebApplication web)
    {
        web.Use((context, next) =>
        {
            Interlocked.Increment(ref _hits);
            return next(context);
        });
        web.MapGet("/page", () => Results.Content("<html><head><style>p{}</style><script>var secret=1;</script></head><body><h1>Title</h1><p>Hello &amp; welcome.</p></body></html>", "text/html"));
        web.MapGet("/nested", () => Results.Content(string.Concat(Enumerable.Repeat("<b>", 50_000)) + "bottom", "text/html"));
        web.MapGet("/spaces", () => Results.Content("<p>a" + new string(' ', 1_000_000) + "b</p>", "text/html"));
        web.MapGet("/control", () => Results.Text("nul\0bell\abyte \u001b]0;title\u0007 end"));
        web.MapGet("/c1-control", () => Results.Text("csi\u009b2J next\u0085line osc\u009d0;title\u009c end"));
        web.MapGet("/headers", (HttpContext context) => Results.Text(string.Join("\n", context.Request.Headers.Select(h => $"{h.Key}: {h.Value}"))));
        web.MapGet("/unauthorized", (HttpContext context) => Results.Text($"denied for {context.Request.Headers.Authorization}", statusCode: 401));
        web.MapGet("/big", () => Results.Text(new string('x', 100_000)));
        web.MapGet("/redirect", (string to) => Results.Redirect(to));
        web.MapPost("/echo", async (HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            return Results.Text($"{context.Request.Method} {await reader.ReadToEndAsync()} token={context.Request.Headers["X-Token"]}");
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _web.DisposeAsync();
    }

    [Theory]
    [InlineData("http://127.0.0.1:{port}/page")]
    [InlineData("http://localhost:{port}/page")]
    [InlineData("http://0x7f000001:{port}/page")]
    [InlineData("http://2130706433:{port}/page")]
    [InlineData("http://017700000001:{port}/page")]
    [InlineData("http://127.1:{port}/page")]
    [InlineData("http://[::1]:{port}/page")]
    [InlineData("http://[::ffff:127.0.0.1]:{port}/page")]
    [InlineData("http://169.254.169.254/latest/meta-data/")]
    [InlineData("http://10.0.0.1/")]
    [InlineData("http://192.168.1.1/")]
    [InlineData("http://0.0.0.0:{port}/page")]
    public async Task InternalAddresses_AreRefusedBeforeAnyConnection(string url)
    {
        var result = await Call(Config(), url.Replace("{port}", _base.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

        Assert.True(result.IsError, result.Content);
        Assert.Contains("internal address", result.Content, StringComparison.Ordinal);
        Assert.Equal(0, _hits);
    }

    [Fact]
    public async Task Html_BecomesText_WhenPrivateNetworksAreAllowed()
    {
        var result = await Call(Config(allowPrivate: true), new Uri(_base, "/page").ToString());

        Assert.False(result.IsError, result.Content);
        Assert.StartsWith("HTTP 200 OK", result.Content, StringComparison.Ordinal);
        Assert.Contains("Title", result.Content, StringComparison.Ordinal);
        Assert.Contains("Hello & welcome.", result.Content, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", result.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/nested", "bottom")]
    [InlineData("/spaces", "a b")]
    public async Task HostilePages_BecomeText_WithoutStackOrTimeToSpare(string path, string text)
    {
        // 50,000 nested tags killed the process (stack overflow in a tree walk); a megabyte of blanks made a regex backtrack.
        var result = await Call(Config(allowPrivate: true), new Uri(_base, path).ToString(), timeout: TimeSpan.FromSeconds(10));

        Assert.False(result.IsError, result.Content);
        Assert.EndsWith("\n\n" + text, result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ControlCharacters_NeverReachTheModelRaw()
    {
        var result = await Call(Config(allowPrivate: true), new Uri(_base, "/control").ToString());

        Assert.False(result.IsError, result.Content);
        Assert.EndsWith("nul\ufffdbell\ufffdbyte \ufffd]0;title\ufffd end", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task C1ControlCharacters_NeverReachTheModelRaw()
    {
        // Only the C0 range and DEL were looked for: text with nothing else passed as it was, its C1 controls with it.
        var result = await Call(Config(allowPrivate: true), new Uri(_base, "/c1-control").ToString());

        Assert.False(result.IsError, result.Content);
        Assert.EndsWith("csi\ufffd2J next\ufffdline osc\ufffd0;title\ufffd end", result.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("X-Evil", "a\r\nX-Injected: 1", "line break or NUL")]
    [InlineData("X-Evil", "a\nGET /admin HTTP/1.1", "line break or NUL")]
    [InlineData("X-Evil", "a\0b", "line break or NUL")]
    [InlineData("X-Evil\r\nX-Injected", "1", "not a valid HTTP header name")]
    [InlineData("Bad Name", "1", "not a valid HTTP header name")]
    [InlineData("Host", "admin.internal", "set by the tool")]
    [InlineData("host", "admin.internal", "set by the tool")]
    [InlineData("Content-Length", "0", "set by the tool")]
    [InlineData("Transfer-Encoding", "chunked", "set by the tool")]
    [InlineData("traceparent", "00-00000000000000000000000000000001-0000000000000001-01", "set by the tool")]
    [InlineData("Idempotency-Key", "another-call", "set by the tool")]
    public async Task ModelHeaders_ThatCouldSmuggleOrReroute_AreRefused(string name, string value, string says)
    {
        var result = await Call(Config(allowPrivate: true), new Uri(_base, "/headers").ToString(), headers: new() { [name] = value });

        Assert.True(result.IsError, result.Content);
        Assert.Contains(says, result.Content, StringComparison.Ordinal);
        Assert.Equal(0, _hits);
    }

    [Fact]
    public async Task ModelHeaders_CannotReplaceTheOperatorsHeaders_AndNoTraceContextLeaves()
    {
        using var activity = new System.Diagnostics.Activity("run").Start();

        var result = await Call(Config(allowPrivate: true, headers: new() { ["X-Api-Version"] = "2" }), new Uri(_base, "/headers").ToString(),
            headers: new() { ["x-api-version"] = "999", ["X-Model"] = "yes" });

        Assert.False(result.IsError, result.Content);
        Assert.Contains("X-Api-Version: 2", result.Content, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("999", result.Content, StringComparison.Ordinal);
        Assert.Contains("X-Model: yes", result.Content, StringComparison.Ordinal);
        Assert.DoesNotContain("traceparent", result.Content, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task EachCall_CarriesAnIdempotencyKey_TheSameForEveryDelivery()
    {
        var request = new ExecuteToolRequest
        {
            Tool = new ToolConfig { Name = "web", Type = ToolType.BuiltinHttp, Http = Config(allowPrivate: true) },
            Call = new ToolCall { Id = "toolu_42", Name = "web", ArgumentsJson = System.Text.Json.JsonSerializer.Serialize(new { url = new Uri(_base, "/headers").ToString() }) },
            Context = new ToolCallContext { RunId = "run-7" },
        };

        var first = (await _client.ExecuteToolAsync(request)).Result;
        var again = (await _client.ExecuteToolAsync(request)).Result;

        Assert.Contains("Idempotency-Key: run-7:toolu_42", first.Content, StringComparison.Ordinal);
        Assert.Contains("Idempotency-Key: run-7:toolu_42", again.Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", false, true)]
    [InlineData("HEAD", false, true)]
    [InlineData("POST", false, false)]
    [InlineData("DELETE", false, false)]
    [InlineData("POST", true, true)] // the entry says its calls are idempotent (the API deduplicates by Idempotency-Key)
    public async Task AResumedCall_RunsAgainOnlyWhenIdempotent_OtherwiseTheModelHearsItsOutcomeIsUnknown(string method, bool entrySaysIdempotent, bool runsAgain)
    {
        var request = new ExecuteToolRequest
        {
            Tool = new ToolConfig { Name = "web", Type = ToolType.BuiltinHttp, Http = Config(allowPrivate: true, methods: ["GET", "HEAD", "POST", "DELETE"]), Idempotent = entrySaysIdempotent },
            Call = new ToolCall { Id = "toolu_9", Name = "web", ArgumentsJson = System.Text.Json.JsonSerializer.Serialize(new { url = new Uri(_base, "/headers").ToString(), method }) },
            Context = new ToolCallContext { RunId = "run-8" },
            Resumed = true,
        };

        var result = (await _client.ExecuteToolAsync(request)).Result;

        Assert.Equal(runsAgain ? 1 : 0, _hits);
        Assert.Equal(!runsAgain, result.IsError && result.Content.Contains("outcome is unknown", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SecretHeaders_NeedAllowedHosts()
    {
        Environment.SetEnvironmentVariable("NAMRA_TEST_HTTP_SECRET", "s3cret-value");

        var result = await Call(Config(allowPrivate: true, headers: new() { ["Authorization"] = "Bearer ${NAMRA_TEST_HTTP_SECRET}" }), new Uri(_base, "/headers").ToString());

        Assert.True(result.IsError);
        Assert.Contains("Authorization", result.Content, StringComparison.Ordinal);
        Assert.Contains("must set allowed_hosts", result.Content, StringComparison.Ordinal);
        Assert.Equal(0, _hits);
    }

    [Fact]
    public async Task SecretHeaders_StayWithTheirOrigin_AndNeverComeBackInAResult()
    {
        Environment.SetEnvironmentVariable("NAMRA_TEST_HTTP_SECRET", "s3cret-value");
        var port = _base.Port;
        var config = Config(allowPrivate: true, allowedHosts: [$"127.0.0.1:{port}", $"localhost:{port}"],
            headers: new() { ["Authorization"] = "Bearer ${NAMRA_TEST_HTTP_SECRET}" });

        var echoed = await Call(config, new Uri(_base, "/unauthorized").ToString());
        var sameOrigin = await Call(config, new Uri(_base, "/headers").ToString());
        var crossOrigin = await Call(config, new Uri(_base, $"/redirect?to={Uri.EscapeDataString($"http://localhost:{port}/headers")}").ToString());

        Assert.True(echoed.IsError);
        Assert.Contains("denied for Bearer [redacted]", echoed.Content, StringComparison.Ordinal);
        Assert.Contains("Authorization: Bearer [redacted]", sameOrigin.Content, StringComparison.Ordinal);
        Assert.False(crossOrigin.IsError, crossOrigin.Content);
        Assert.DoesNotContain("Authorization", crossOrigin.Content, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", echoed.Content + sameOrigin.Content + crossOrigin.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AllowedHosts_WithoutAPort_AllowTheDefaultPortOnly()
    {
        var refused = await Call(Config(allowPrivate: true, allowedHosts: ["127.0.0.1"]), new Uri(_base, "/page").ToString());
        var allowed = await Call(Config(allowPrivate: true, allowedHosts: [$"127.0.0.1:{_base.Port}"]), new Uri(_base, "/page").ToString());

        Assert.Contains($"127.0.0.1:{_base.Port} is not among this tool's allowed hosts", refused.Content, StringComparison.Ordinal);
        Assert.False(allowed.IsError, allowed.Content);
    }

    [Fact]
    public async Task Redirects_ToOtherSchemes_AreRefusedClearly()
    {
        var result = await Call(Config(allowPrivate: true), new Uri(_base, "/redirect?to=file:///etc/passwd").ToString());

        Assert.True(result.IsError);
        Assert.Equal("The server redirected to a file: URL; only http and https are followed.", result.Content);
    }

    [Fact]
    public async Task Redirects_AreCheckedAgainAtEveryHop()
    {
        var target = Uri.EscapeDataString($"http://localhost:{_base.Port}/page");

        var result = await Call(Config(allowPrivate: true, allowedHosts: [$"127.0.0.1:{_base.Port}"]), new Uri(_base, $"/redirect?to={target}").ToString());

        Assert.True(result.IsError);
        Assert.Contains($"localhost:{_base.Port} is not among this tool's allowed hosts", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Responses_AreCutAtTheLimit()
    {
        var result = await Call(Config(allowPrivate: true, maxResponseBytes: 1000), new Uri(_base, "/big").ToString());

        Assert.Contains("[response cut at 1,000 bytes]", result.Content, StringComparison.Ordinal);
        Assert.True(result.Content.Length < 1200);
    }

    [Fact]
    public async Task Methods_AreLimitedToTheAllowedOnes_AndConfiguredHeadersResolveVariablesAtCallTime()
    {
        Environment.SetEnvironmentVariable("NAMRA_TEST_HTTP_TOKEN", "t0ken");
        var refused = await Call(Config(allowPrivate: true), new Uri(_base, "/echo").ToString(), method: "POST", body: "{}");
        var sent = await Call(Config(allowPrivate: true, allowedHosts: [$"127.0.0.1:{_base.Port}"], methods: ["GET", "POST"], headers: new() { ["X-Token"] = "${NAMRA_TEST_HTTP_TOKEN}" }),
            new Uri(_base, "/echo").ToString(), method: "POST", body: "{\"a\":1}");

        Assert.Contains("POST is not allowed", refused.Content, StringComparison.Ordinal);
        Assert.Contains("POST {\"a\":1} token=[redacted]", sent.Content, StringComparison.Ordinal); // the server had it; the model does not
    }

    [Fact]
    public async Task DeniedHosts_AreRefused()
    {
        var result = await Call(Config(allowPrivate: true, deniedHosts: ["127.0.0.1"]), new Uri(_base, "/page").ToString());

        Assert.Contains("denied hosts", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeniedHosts_AreDeniedByTheirAddressesToo()
    {
        var byAddress = await Call(Config(allowPrivate: true, deniedHosts: ["localhost"]), new Uri(_base, "/page").ToString());

        Assert.True(byAddress.IsError);
        Assert.Contains("is the address of localhost, which is on this tool's denied hosts", byAddress.Content, StringComparison.Ordinal);
        Assert.Equal(0, _hits);
    }

    private static HttpToolSettings Config(bool allowPrivate = false, string[]? allowedHosts = null, string[]? deniedHosts = null, string[]? methods = null,
        Dictionary<string, string>? headers = null, int maxResponseBytes = 1_048_576) => new()
    {
        AllowPrivateNetworks = allowPrivate,
        AllowedHosts = { allowedHosts ?? [] },
        DeniedHosts = { deniedHosts ?? [] },
        AllowedMethods = { methods ?? ["GET"] },
        Headers = { headers ?? [] },
        MaxResponseBytes = maxResponseBytes,
        MaxRedirects = 5,
        ExtractText = true,
    };

    private async Task<ToolResult> Call(HttpToolSettings config, string url, string method = "GET", string? body = null, TimeSpan? timeout = null,
        Dictionary<string, string>? headers = null)
    {
        var arguments = body is null ? (object)new { url, method, headers = headers ?? [] } : new { url, method, body, headers = headers ?? [] };
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig { Name = "web", Type = ToolType.BuiltinHttp, Http = config, Timeout = timeout is { } t ? Duration.FromTimeSpan(t) : null },
            Call = new ToolCall { Id = "call_1", Name = "web", ArgumentsJson = System.Text.Json.JsonSerializer.Serialize(arguments) },
        });
        return response.Result;
    }
}
