using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Namra.Testing.Providers;

/// <summary>A request the fake provider received.</summary>
public sealed record RecordedRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body);

/// <summary>One scripted answer of the fake provider.</summary>
public abstract record FakeReply;

/// <summary>A <c>text/event-stream</c> answer, frame by frame.</summary>
/// <param name="Frames">The frames, in order.</param>
/// <param name="DropAfter">Close the connection abruptly after this many frames.</param>
/// <param name="HoldAfter">Stop after this many frames and wait until the client goes away (for cancellation tests).</param>
public sealed record SseReply(IReadOnlyList<SseFrame> Frames, int? DropAfter = null, int? HoldAfter = null) : FakeReply;

/// <summary>An HTTP error with the provider's JSON body and headers (such as <c>retry-after</c>).</summary>
public sealed record ErrorReply(int Status, string Body, IReadOnlyDictionary<string, string>? Headers = null) : FakeReply;

/// <summary>A plain JSON answer (embeddings, non-streamed calls), with headers (such as <c>x-request-id</c>).</summary>
public sealed record JsonReply(string Body, IReadOnlyDictionary<string, string>? Headers = null) : FakeReply;

/// <summary>One server-sent event: <c>event: X</c> (when set) and <c>data: Y</c>, then a blank line.</summary>
public sealed record SseFrame(string? Event, string Data)
{
    public string ToWire() => Event is null ? $"data: {Data}\n\n" : $"event: {Event}\ndata: {Data}\n\n";
}

/// <summary>
/// A local HTTP server that answers as Anthropic's and OpenAI's APIs do, byte for byte, with replies each test
/// scripts. It listens on 127.0.0.1 with a port the operating system picks, records every request, and tells
/// when a client abandoned a stream.
/// </summary>
public sealed class FakeProviderServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<FakeReply> _replies = new();
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private readonly TaskCompletionSource _aborted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _arrived = new(0);

    private FakeProviderServer(WebApplication app) => _app = app;

    /// <summary>The server's address, such as <c>http://127.0.0.1:41234</c>.</summary>
    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>The reply when none is queued (benchmarks answer every call alike); a 500 when null.</summary>
    public FakeReply? DefaultReply { get; set; }

    /// <summary>Answers each request from what it holds, when no reply is queued (a provider that counts what it is sent).</summary>
    public Func<RecordedRequest, FakeReply>? Responder { get; set; }

    /// <summary>Keep no record of requests (benchmarks send millions).</summary>
    public bool RecordRequests { get; set; } = true;

    private int _answered;

    /// <summary>The request id the <paramref name="nth"/> answer (from 1) carried in its headers.</summary>
    public static string RequestIdOf(int nth) => $"req_fake_{nth:D4}";

    /// <summary>Every request received, in order.</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

    /// <summary>Completes once <paramref name="count"/> requests have arrived.</summary>
    public async Task WaitForRequestsAsync(int count, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        while (_requests.Count < count)
        {
            await _arrived.WaitAsync(cancel.Token).ConfigureAwait(false);
        }
    }

    /// <summary>Completes when a client goes away in the middle of a held stream.</summary>
    public Task ClientAborted => _aborted.Task;

    public static async Task<FakeProviderServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(System.Net.IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new FakeProviderServer(app);
        app.MapPost("/{**path}", server.HandleAsync);
        await app.StartAsync().ConfigureAwait(false);
        server.BaseUrl = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return server;
    }

    /// <summary>Queues replies, answered one per request in order.</summary>
    public void Enqueue(params FakeReply[] replies)
    {
        foreach (var reply in replies)
        {
            _replies.Enqueue(reply);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _arrived.Dispose();
    }

    private static bool HasToolBlocksWithoutTools(string body)
    {
        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(body);
            var root = json.RootElement;
            if (root.ValueKind != System.Text.Json.JsonValueKind.Object || !root.TryGetProperty("messages", out var messages) || messages.ValueKind != System.Text.Json.JsonValueKind.Array
                || root.TryGetProperty("tools", out var tools) && tools.ValueKind == System.Text.Json.JsonValueKind.Array && tools.GetArrayLength() > 0)
            {
                return false;
            }

            return messages.EnumerateArray().Any(m => m.TryGetProperty("content", out var content) && content.ValueKind == System.Text.Json.JsonValueKind.Array
                && content.EnumerateArray().Any(b => b.TryGetProperty("type", out var type) && type.GetString() is "tool_use" or "tool_result"));
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var body = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        var headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString(), StringComparer.Ordinal);
        if (RecordRequests)
        {
            _requests.Enqueue(new RecordedRequest(context.Request.Method, context.Request.Path, headers, body));
            _arrived.Release();
        }

        // As Anthropic's API does: a conversation holding tool calls or results is refused from a request that offers no tools.
        if (context.Request.Path.Value?.EndsWith("/messages", StringComparison.Ordinal) == true && HasToolBlocksWithoutTools(body))
        {
            context.Response.StatusCode = 400;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(AnthropicWire.ErrorBody("invalid_request_error", "Requests which include `tool_use` or `tool_result` blocks must define tools."),
                context.RequestAborted).ConfigureAwait(false);
            return;
        }

        if (!_replies.TryDequeue(out var reply))
        {
            reply = Responder?.Invoke(new RecordedRequest(context.Request.Method, context.Request.Path, headers, body)) ?? DefaultReply ?? new ErrorReply(500, "{\"error\":{\"type\":\"test_error\",\"message\":\"no reply was scripted for this request\"}}");
        }

        // As real providers do, every answer names its request (Anthropic's request-id, OpenAI's x-request-id), unless
        // the reply names it itself.
        var anthropic = context.Request.Path.Value?.EndsWith("/messages", StringComparison.Ordinal) == true;
        context.Response.Headers[anthropic ? "request-id" : "x-request-id"] = RequestIdOf(Interlocked.Increment(ref _answered));
        switch (reply)
        {
            case ErrorReply error:
                context.Response.StatusCode = error.Status;
                context.Response.ContentType = "application/json";
                foreach (var (name, value) in error.Headers ?? new Dictionary<string, string>())
                {
                    context.Response.Headers[name] = value;
                }

                await context.Response.WriteAsync(error.Body, context.RequestAborted).ConfigureAwait(false);
                break;
            case JsonReply json:
                context.Response.ContentType = "application/json";
                foreach (var (name, value) in json.Headers ?? new Dictionary<string, string>())
                {
                    context.Response.Headers[name] = value;
                }

                await context.Response.WriteAsync(json.Body, context.RequestAborted).ConfigureAwait(false);
                break;
            case SseReply sse:
                await StreamAsync(context, sse).ConfigureAwait(false);
                break;
        }
    }

    private async Task StreamAsync(HttpContext context, SseReply sse)
    {
        context.Response.ContentType = "text/event-stream; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        await context.Response.StartAsync(context.RequestAborted).ConfigureAwait(false);
        for (var i = 0; i < sse.Frames.Count; i++)
        {
            if (i == sse.DropAfter)
            {
                context.Abort();
                return;
            }

            if (i == sse.HoldAfter)
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, context.RequestAborted).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    _aborted.TrySetResult();
                }

                return;
            }

            await context.Response.WriteAsync(sse.Frames[i].ToWire(), context.RequestAborted).ConfigureAwait(false);
            await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        }
    }
}
