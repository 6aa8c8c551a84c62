using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Namra.Hosting.Errors;

namespace Namra.LlmGateway.Providers;

/// <summary>Turns a provider's HTTP error into the gRPC status Namra's callers get, keeping the provider's message.</summary>
internal static class ProviderErrors
{
    private const int MaxMessageLength = 500;

    /// <summary>The exception for an error response; the body is the provider's JSON error, read up to a bound.</summary>
    public static NamraException FromResponse(string provider, HttpStatusCode status, HttpResponseHeaders headers, string body)
    {
        if ((int)status is >= 300 and < 400)
        {
            // Redirects are not followed: the request carries the API key, and its address was checked, not the new one.
            // Not transient either: retrying, or counting it against the circuit, would not help.
            return Create(provider, StatusCode.FailedPrecondition, $"{(int)status} redirect",
                $"the server answered {(int)status}, a redirect, which the gateway does not follow (requests carry the API key); set llm.base_url to the address that serves the API", null);
        }

        var (type, message) = ReadError(body);
        var code = (int)status switch
        {
            // OpenAI's 429 for an account without credit is a billing state, not a rate limit: waiting does not help.
            429 when type == InsufficientQuota => StatusCode.FailedPrecondition,
            400 or 413 or 422 => StatusCode.InvalidArgument,
            401 => StatusCode.Unauthenticated,
            403 => StatusCode.PermissionDenied,
            404 => StatusCode.NotFound,
            408 => StatusCode.DeadlineExceeded,
            429 => StatusCode.ResourceExhausted,
            _ => StatusCode.Unavailable, // 500, 502, 503, 504, 529 (overloaded) and anything else the provider cannot serve now
        };
        var retryAfter = RetryAfter(headers);
        // An account without credit stays so whatever a proxy or the provider advises: never tried again.
        var shouldRetry = type == InsufficientQuota ? false : ShouldRetry(headers);
        return Create(provider, code, $"{(int)status} {type}", message, retryAfter, RequestId(headers), shouldRetry);
    }

    /// <summary>The provider's identifier of a request (Anthropic <c>request-id</c>, OpenAI <c>x-request-id</c>), for its support.</summary>
    public static string? RequestId(HttpResponseHeaders headers) =>
        headers.TryGetValues("request-id", out var anthropic) ? anthropic.FirstOrDefault()
        : headers.TryGetValues("x-request-id", out var openAi) ? openAi.FirstOrDefault()
        : null;

    /// <summary>
    /// Whether the failure is worth another attempt: the provider's <c>x-should-retry</c> when it sent one (the official
    /// SDKs obey it over the status), else the status decides (UNAVAILABLE and RESOURCE_EXHAUSTED are).
    /// </summary>
    public static bool IsRetryable(NamraException exception) =>
        exception.Details.OfType<Google.Rpc.ErrorInfo>().FirstOrDefault()?.Metadata.TryGetValue(ShouldRetryKey, out var advice) == true
            ? advice == "true"
            : exception.StatusCode is StatusCode.Unavailable or StatusCode.ResourceExhausted;

    private const string InsufficientQuota = "insufficient_quota";
    private const string ShouldRetryKey = "should_retry";
    private const string RequestIdKey = "request_id";
    private const string NetworkReason = "NETWORK", StreamEndedReason = "STREAM_ENDED", MalformedReason = "MALFORMED_RESPONSE";

    /// <summary>
    /// Whether the failure is an answer the provider gave (refused, overloaded, rate limited): a request it did not
    /// bill. A broken exchange (the network, a stream cut short, an unreadable response) may have been billed.
    /// </summary>
    public static bool IsProviderAnswer(Exception exception) =>
        exception is NamraException namra && Reason(namra) is not (NetworkReason or StreamEndedReason or MalformedReason);

    /// <summary>The provider's request id an error carries; empty when it sent none.</summary>
    public static string RequestIdOf(Exception exception) =>
        exception is NamraException namra && namra.Details.OfType<Google.Rpc.ErrorInfo>().FirstOrDefault()?.Metadata.TryGetValue(RequestIdKey, out var id) == true ? id : "";

    private static string? Reason(NamraException exception) => exception.Details.OfType<Google.Rpc.ErrorInfo>().FirstOrDefault()?.Reason;

    private static bool? ShouldRetry(HttpResponseHeaders headers) =>
        headers.TryGetValues("x-should-retry", out var values) ? values.FirstOrDefault() switch { "true" => true, "false" => false, _ => null } : null;

    /// <summary>The exception for an <c>error</c> event inside a stream (Anthropic sends these after a 200).</summary>
    public static NamraException FromStreamError(string provider, string type, string message) =>
        Create(provider, type switch
        {
            "invalid_request_error" or "request_too_large" => StatusCode.InvalidArgument,
            "authentication_error" => StatusCode.Unauthenticated,
            "permission_error" => StatusCode.PermissionDenied,
            "not_found_error" => StatusCode.NotFound,
            "rate_limit_error" => StatusCode.ResourceExhausted,
            _ => StatusCode.Unavailable, // overloaded_error, api_error
        }, type, message, retryAfter: null);

    public static NamraException Network(string provider, Exception exception) =>
        new(StatusCode.Unavailable, $"{provider} could not be reached: {exception.Message}", [Info(provider, NetworkReason)], exception);

    public static NamraException StreamEndedEarly(string provider) =>
        new(StatusCode.Unavailable, $"{provider} ended the stream before the turn was complete.", [Info(provider, StreamEndedReason)]);

    public static NamraException Malformed(string provider, string what) =>
        new(StatusCode.Unavailable, $"{provider} sent a response Namra cannot read: {what}.", [Info(provider, MalformedReason)]);

    private static NamraException Create(string provider, StatusCode code, string reason, string message, TimeSpan? retryAfter,
        string? requestId = null, bool? shouldRetry = null)
    {
        var info = Info(provider, reason);
        if (requestId is { Length: > 0 and <= 200 })
        {
            info.Metadata[RequestIdKey] = requestId;
            message += $" (request {requestId})";
        }

        if (shouldRetry is { } advice)
        {
            info.Metadata[ShouldRetryKey] = advice ? "true" : "false";
        }

        List<IMessage> details = [info];
        if (retryAfter is { } delay)
        {
            details.Add(new Google.Rpc.RetryInfo { RetryDelay = Duration.FromTimeSpan(delay) });
        }

        var text = message.Length > MaxMessageLength ? message[..MaxMessageLength] + "..." : message;
        return new NamraException(code, $"{provider}: {text}", details);
    }

    private static Google.Rpc.ErrorInfo Info(string provider, string reason) =>
        new() { Domain = provider, Reason = reason.Replace(' ', '_').ToUpperInvariant() };

    // Anthropic: {"type":"error","error":{"type":...,"message":...}}; OpenAI: {"error":{"type":...,"message":...,"code":...}}
    // (the code, when there is one, is the more precise: insufficient_quota).
    private static (string Type, string Message) ReadError(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
            {
                var type = error.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String && c.GetString() == InsufficientQuota ? InsufficientQuota
                    : error.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "error";
                var message = error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : body;
                return (type, message);
            }
        }
        catch (JsonException)
        {
            // Not JSON; answered below.
        }

        // Not the provider's JSON error (a proxy's page, or not a model provider at all): the body is not repeated,
        // so the gateway cannot be used to read other servers' pages.
        return ("error", "the server answered without a provider error message");
    }

    // OpenAI's retry-after-ms first, as the official SDKs read it: it is the more precise of the two.
    private static TimeSpan? RetryAfter(HttpResponseHeaders headers)
    {
        if (headers.TryGetValues("retry-after-ms", out var values)
            && double.TryParse(values.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0 && ms < TimeSpan.MaxValue.TotalMilliseconds)
        {
            return TimeSpan.FromMilliseconds(ms);
        }

        if (headers.RetryAfter is { Delta: { } delta })
        {
            return delta;
        }

        if (headers.RetryAfter is { Date: { } date })
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }
}
