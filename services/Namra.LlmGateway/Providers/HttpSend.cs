using System.Diagnostics;
using System.Net.ServerSentEvents;
using Namra.Hosting.Errors;
using System.Runtime.CompilerServices;

namespace Namra.LlmGateway.Providers;

/// <summary>Sends a provider request and turns transport failures and error statuses into Namra's errors.</summary>
internal static class HttpSend
{
    public const string ClientName = "namra-llm-providers";

    /// <summary>Errors bodies are read up to this size; a provider's error message is short.</summary>
    private const int MaxErrorBody = 16 * 1024;

    public static async Task<HttpResponseMessage> SendAsync(IHttpClientFactory clients, HttpRequestMessage request, string provider, CancellationToken cancellationToken)
    {
        var client = clients.CreateClient(ClientName);
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException exception)
        {
            throw ProviderErrors.Network(provider, exception);
        }
        catch (OperationCanceledException exception) when (!cancellationToken.IsCancellationRequested)
        {
            // HttpClient reports a connect timeout as a cancellation the caller did not ask for.
            throw ProviderErrors.Network(provider, exception);
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var body = await ReadBoundedAsync(response, cancellationToken).ConfigureAwait(false);
            throw ProviderErrors.FromResponse(provider, response.StatusCode, response.Headers, body);
        }
    }

    /// <summary>
    /// The server-sent events of a response: a broken connection becomes UNAVAILABLE, and a provider silent for
    /// longer than <paramref name="idleTimeout"/> between events DEADLINE_EXCEEDED, so a stalled stream never
    /// holds a call forever (even one without a deadline). The idle timer is set again only when a sixteenth of
    /// the limit has passed since it last was, not at every event (dozens a second in a streamed answer), so the
    /// silence allowed is between 15/16 of the limit and the limit. An event's data stays UTF-8, as the JSON parsers
    /// that read it take it: no string is made of it.
    /// </summary>
    public static async IAsyncEnumerable<SseItem<byte[]>> ReadEventsAsync(Stream stream, string provider, TimeSpan idleTimeout,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var items = SseParser.Create(stream, static (_, data) => data.ToArray()).EnumerateAsync(idle.Token).GetAsyncEnumerator(idle.Token);
        var setAgainAfter = idleTimeout / 16;
        var set = 0L;
        try
        {
            while (true)
            {
                if (set == 0 || Stopwatch.GetElapsedTime(set) >= setAgainAfter)
                {
                    idle.CancelAfter(idleTimeout);
                    set = Stopwatch.GetTimestamp();
                }

                try
                {
                    if (!await items.MoveNextAsync().ConfigureAwait(false))
                    {
                        yield break;
                    }
                }
                catch (OperationCanceledException) when (idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw new NamraException(Grpc.Core.StatusCode.DeadlineExceeded,
                        $"{provider} sent nothing for {idleTimeout.TotalSeconds:0} s; the stream was abandoned.");
                }
                catch (Exception exception) when (exception is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
                {
                    throw ProviderErrors.Network(provider, exception);
                }

                yield return items.Current;
            }
        }
        finally
        {
            await items.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The body of a provider's response, read up to <paramref name="maxBytes"/>: past them, the call fails.</summary>
    public static async Task<Stream> ReadBodyAsync(HttpResponseMessage response, string provider, long maxBytes, CancellationToken cancellationToken) =>
        new BoundedStream(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), provider, maxBytes);

    private static async Task<string> ReadBoundedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new byte[MaxErrorBody];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(total), cancellationToken).ConfigureAwait(false)) > 0)
        {
            total += read;
        }

        return System.Text.Encoding.UTF8.GetString(buffer, 0, total);
    }
}

/// <summary>A read-only stream that fails once more than a given number of bytes have been read from it.</summary>
internal sealed class BoundedStream(Stream inner, string provider, long maxBytes) : Stream
{
    private long _read;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private int Count(int read)
    {
        _read += read;
        return _read <= maxBytes ? read
            : throw new NamraException(Grpc.Core.StatusCode.FailedPrecondition,
                $"{provider} sent a response larger than {maxBytes / 1024 / 1024:N0} MiB (Namra:LlmGateway:MaxResponseBytes); it was abandoned. Is llm.base_url a model provider?");
    }
}
