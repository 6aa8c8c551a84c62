using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Namra.Testing.Providers;

namespace Namra.LoadDriver;

/// <summary>
/// The provider every measured run calls: Anthropic's Messages API, streamed, byte for byte as the tests' local
/// server writes it, after a fixed latency. Stateless, so any number of runs share it: a request without a tool
/// result gets a turn calling the calculator, one with a tool result gets the answer. It runs in a process of its
/// own, so its work is never counted as Namra's or the baseline's.
/// </summary>
internal static class ProviderServer
{
    public static readonly byte[] ToolTurn = Encode([
        AnthropicWire.MessageStart(inputTokens: 120),
        .. AnthropicWire.TextBlock(0, "I'll compute that."),
        .. AnthropicWire.ToolUseBlock(1, "toolu_01", "calculator", "{\"expression\":", "\"(17 + 25) * 2\"}"),
        AnthropicWire.MessageDelta("tool_use", 40),
        AnthropicWire.MessageStop()]);

    public static readonly byte[] AnswerTurn = Encode([
        AnthropicWire.MessageStart(inputTokens: 180),
        .. AnthropicWire.TextBlock(0, "(17 + 25) * 2 ", "= 84."),
        AnthropicWire.MessageDelta("end_turn", 12),
        AnthropicWire.MessageStop()]);

    public static async Task<int> RunAsync(int port, TimeSpan latency)
    {
        await using var app = Create(port, latency, onRequest: () => { });
        await app.StartAsync();
        Console.WriteLine($"provider listening on {app.Urls.First()}");
        await app.WaitForShutdownAsync();
        return 0;
    }

    /// <summary>The provider on 127.0.0.1:<paramref name="port"/>; <paramref name="onRequest"/> runs as each request arrives.</summary>
    public static WebApplication Create(int port, TimeSpan latency, Action onRequest)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.MapPost("/v1/messages", async (HttpContext context) =>
        {
            onRequest();
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            await Task.Delay(latency, context.RequestAborted);
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            context.Response.Headers["request-id"] = "req_load";
            await context.Response.Body.WriteAsync(body.Contains("\"tool_result\"", StringComparison.Ordinal) ? AnswerTurn : ToolTurn, context.RequestAborted);
        });
        return app;
    }

    private static byte[] Encode(IEnumerable<SseFrame> frames) =>
        Encoding.UTF8.GetBytes(string.Concat(frames.Select(f => f.ToWire())));
}
