using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>
/// <c>${secret:NAME}</c> in a tool's headers is read from the operator's secrets folder where the tool runs, at each
/// call (a rotated secret is used at once), sent only to the tool's allowed hosts and never shown in a result.
/// </summary>
public sealed class SecretReferenceTests : IAsyncLifetime
{
    private readonly string _secrets = Directory.CreateTempSubdirectory("namra-secrets-").FullName;
    private readonly ConcurrentQueue<string> _seen = new();
    private LocalWebServer _web = null!;
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        _web = await LocalWebServer.StartAsync(web => web.MapGet("/echo", (HttpContext context) =>
        {
            _seen.Enqueue(context.Request.Headers.Authorization.ToString());
            return Results.Text($"you sent {context.Request.Headers.Authorization}");
        }));
        _host = await NamraTestHost.StartAsync("tool-executor", new Dictionary<string, string?> { ["Namra:Secrets:Folder"] = _secrets });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _web.DisposeAsync();
        Directory.Delete(_secrets, recursive: true);
    }

    [Fact]
    public async Task ASecretInAHeader_IsReadFromTheFolderAtEachCall_SentOnlyThere_AndRedactedFromTheResult()
    {
        var client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
        var settings = new HttpToolSettings
        {
            AllowPrivateNetworks = true, AllowedHosts = { $"127.0.0.1:{_web.BaseUrl.Port}" }, AllowedMethods = { "GET" }, MaxResponseBytes = 65536, MaxRedirects = 0,
            Headers = { ["Authorization"] = "Bearer ${secret:partner_api_token}" },
        };
        async Task<ToolResult> CallAsync() => (await client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig { Name = "partner", Type = ToolType.BuiltinHttp, Http = settings },
            Call = new ToolCall { Id = "c1", Name = "partner", ArgumentsJson = $"{{\"url\": \"{new Uri(_web.BaseUrl, "/echo")}\"}}" },
        })).Result;

        await File.WriteAllTextAsync(Path.Combine(_secrets, "partner_api_token"), "first-s3cret\n");
        var first = await CallAsync();
        await File.WriteAllTextAsync(Path.Combine(_secrets, "partner_api_token"), "rotated-s3cret\n");
        var second = await CallAsync();

        Assert.Equal(["Bearer first-s3cret", "Bearer rotated-s3cret"], _seen);
        Assert.False(first.IsError, first.Content);
        Assert.Contains("you sent Bearer [redacted]", first.Content + second.Content, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", first.Content + second.Content, StringComparison.Ordinal);
    }
}
