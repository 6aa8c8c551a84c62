using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Namra.Contracts.V1;
using Namra.Hosting.Secrets;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>builtin.http</c>: GET/POST/PUT/PATCH/DELETE/HEAD to allowed hosts. Internal addresses are refused after DNS
/// resolution and on every redirect (<see cref="NetworkGuard"/>) unless <c>allow_private_networks</c>; hosts are
/// checked against <c>allowed_hosts</c>/<c>denied_hosts</c> on every hop too. Responses are read up to
/// <c>max_response_bytes</c>; HTML becomes readable text for the model.
/// </summary>
internal sealed class HttpTool : ITool
{
    public const string PublicClient = "namra-tool-http-public";
    public const string AnyClient = "namra-tool-http-any";

    private const string Schema = """
        {"type":"object","properties":{"url":{"type":"string","minLength":1,"maxLength":8192,"description":"An http or https URL"},"method":{"enum":["GET","POST","PUT","PATCH","DELETE","HEAD"],"default":"GET","description":"GET when omitted"},"headers":{"type":"object","additionalProperties":{"type":"string"}},"body":{"type":"string","description":"Request body (POST, PUT, PATCH)"}},"required":["url"],"additionalProperties":false}
        """;

    private readonly IHttpClientFactory _clients;

    public HttpTool(IHttpClientFactory clients, SecretStore? secrets = null) => (_clients, _secrets) = (clients, secrets ?? SecretStore.EnvironmentOnly);

    private readonly SecretStore _secrets;

    public ToolType Type => ToolType.BuiltinHttp;

    /// <summary>
    /// The handler under the tool's clients: no redirects of its own (the tool checks each hop), no ambient proxy
    /// (the address guard would check the proxy's address, not the target's), no trace context sent to the hosts.
    /// </summary>
    public static SocketsHttpHandler Handler(Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>>? connect) => new()
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        ConnectCallback = connect,
        ActivityHeadersPropagator = DistributedContextPropagator.CreateNoOutputPropagator(),
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
    };

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken)
    {
        var settings = Settings.From(config);
        var where = settings.AllowedHosts.Count > 0 ? $" to {string.Join(", ", settings.AllowedHosts)}" : "";
        var description = config.Description.Length > 0 ? config.Description
            : $"Sends an HTTP request ({string.Join(", ", settings.Methods)}){where} and returns the status and the response (HTML as text).";
        return Task.FromResult<IReadOnlyList<ToolDescription>>([new ToolDescription(config.Name, description, Schema)]);
    }

    // Public addresses only, and no header that reads this process's environment.
    public string? RefuseUntrusted(ToolConfig config)
    {
        var settings = Settings.From(config);
        return settings.AllowPrivate ? "it may reach private networks (allow_private_networks)"
            : settings.Headers.Values.Any(h => h.Contains("${", StringComparison.Ordinal)) ? "its headers read variables of the tool executor's environment"
            : null;
    }

    public bool IsAlwaysIdempotent(ToolConfig config) => Settings.From(config).Methods.All(m => m is "GET" or "HEAD");

    public bool IsIdempotent(ToolConfig config, JsonElement arguments) =>
        !arguments.TryGetProperty("method", out var method) || method.GetString() is "GET" or "HEAD";

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken)
    {
        var settings = Settings.From(config);
        var method = arguments.TryGetProperty("method", out var m) ? m.GetString() ?? "GET" : "GET";
        if (!settings.Methods.Contains(method))
        {
            return ToolOutcome.Error($"{method} is not allowed; allowed methods: {string.Join(", ", settings.Methods)}.");
        }

        if (!Uri.TryCreate(arguments.GetProperty("url").GetString(), UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            return ToolOutcome.Error("The url must be an absolute http or https URL.");
        }

        var (modelHeaders, headerProblem) = ModelHeaders(arguments);
        if (headerProblem is not null)
        {
            return ToolOutcome.Error(headerProblem);
        }

        // Headers that read variables carry secrets: they go only to the hosts the operator named, and never into a result.
        var secretHeaders = settings.Headers.Where(h => h.Value.Contains("${", StringComparison.Ordinal)).Select(h => h.Key).ToHashSet(StringComparer.OrdinalIgnoreCase);
        if (secretHeaders.Count > 0 && settings.AllowedHosts.Count == 0)
        {
            return ToolOutcome.Error($"This tool's headers ({string.Join(", ", secretHeaders)}) read variables, so it calls only the hosts in its allowed_hosts, and it names none: the operator must set allowed_hosts.");
        }

        // What the variables hold is redacted wherever it shows up in a result (a page that echoes the request's headers).
        var secretValues = new List<string>();
        string? Secret(string name)
        {
            var value = _secrets.Resolve(name);
            if (value is { Length: >= 4 })
            {
                secretValues.Add(value);
            }

            return value;
        }

        var configured = settings.Headers.ToDictionary(h => h.Key, h => VariableReferences.Expand(h.Value, Secret), StringComparer.OrdinalIgnoreCase);
        var secrets = secretValues.OrderByDescending(v => v.Length).ToArray();
        var origin = url;
        var client = _clients.CreateClient(settings.AllowPrivate ? AnyClient : PublicClient);
        for (var hop = 0; ; hop++)
        {
            if ((HostProblem(url, settings) ?? await DeniedAddressAsync(url, settings, cancellationToken).ConfigureAwait(false)) is { } problem)
            {
                return ToolOutcome.Error(problem);
            }

            using var request = new HttpRequestMessage(new HttpMethod(method), url);
            var contentType = "application/json";
            foreach (var (name, value) in modelHeaders)
            {
                if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                {
                    contentType = value;
                }
                else if (!configured.ContainsKey(name))
                {
                    request.Headers.TryAddWithoutValidation(name, value);
                }
            }

            // The operator's headers go to the origin the call started at; a redirect elsewhere goes without them, as
            // browsers drop credentials across origins.
            var sameOrigin = Uri.Compare(url, origin, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;
            foreach (var (name, value) in configured)
            {
                if (sameOrigin || !secretHeaders.Contains(name))
                {
                    request.Headers.Remove(name);
                    request.Headers.TryAddWithoutValidation(name, value);
                }
            }

            // The same key for every delivery of this call, so a server that deduplicates (Stripe's convention, the IETF
            // draft) applies a request sent again after an interruption once.
            if (call.IdempotencyKey.Length > 0 && !configured.ContainsKey("Idempotency-Key"))
            {
                request.Headers.TryAddWithoutValidation("Idempotency-Key", call.IdempotencyKey);
            }

            if (arguments.TryGetProperty("body", out var body) && method is "POST" or "PUT" or "PATCH")
            {
                request.Content = new StringContent(body.GetString() ?? "", Encoding.UTF8);
                request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }

            HttpResponseMessage response;
            try
            {
                response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException exception) when (exception.InnerException is BlockedAddressException blocked)
            {
                return ToolOutcome.Error(blocked.Message);
            }
            catch (HttpRequestException exception)
            {
                return ToolOutcome.Error(Redact($"The request failed: {exception.Message}", secrets));
            }

            using (response)
            {
                if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    if (hop >= settings.MaxRedirects)
                    {
                        return ToolOutcome.Error($"More than {settings.MaxRedirects} redirects.");
                    }

                    // Each hop is checked again, host lists and addresses alike.
                    url = location.IsAbsoluteUri ? location : new Uri(url, location);
                    if (url.Scheme is not ("http" or "https"))
                    {
                        return ToolOutcome.Error($"The server redirected to a {url.Scheme}: URL; only http and https are followed.");
                    }

                    if (response.StatusCode is HttpStatusCode.SeeOther || (method == "POST" && response.StatusCode is HttpStatusCode.Found or HttpStatusCode.MovedPermanently))
                    {
                        method = "GET";
                    }

                    continue;
                }

                var outcome = await ReadAsync(response, url, settings, cancellationToken).ConfigureAwait(false);
                return outcome with { Content = Redact(outcome.Content, secrets) };
            }
        }
    }

    // Headers a server chooses from the request itself, or that change how the request is framed or routed, are not
    // the model's to set; neither are line breaks or NULs, which would let a value start a header or a request of its own.
    private static readonly HashSet<string> ReservedHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer", "Expect",
        "Proxy-Authorization", "Proxy-Connection", "traceparent", "tracestate", "baggage", "Idempotency-Key",
    };

    private static (List<(string Name, string Value)> Headers, string? Problem) ModelHeaders(JsonElement arguments)
    {
        var headers = new List<(string, string)>();
        if (!arguments.TryGetProperty("headers", out var given))
        {
            return (headers, null);
        }

        foreach (var header in given.EnumerateObject())
        {
            var value = header.Value.GetString() ?? "";
            if (header.Name.Length == 0 || !header.Name.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal)))
            {
                return (headers, $"The header name \"{JsonEncodedText.Encode(header.Name)}\" is not a valid HTTP header name.");
            }

            if (value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
            {
                return (headers, $"The value of header {header.Name} contains a line break or NUL, which HTTP does not allow in a header.");
            }

            if (ReservedHeaders.Contains(header.Name))
            {
                return (headers, $"The header {header.Name} is set by the tool, not by the call.");
            }

            headers.Add((header.Name, value));
        }

        return (headers, null);
    }

    private static string Redact(string text, string[] secrets)
    {
        foreach (var secret in secrets)
        {
            text = text.Replace(secret, "[redacted]", StringComparison.Ordinal);
        }

        return text;
    }

    private static async Task<ToolOutcome> ReadAsync(HttpResponseMessage response, Uri url, Settings settings, CancellationToken cancellationToken)
    {
        using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new byte[Math.Min(settings.MaxResponseBytes, 16 * 1024 * 1024) + 1];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(total), cancellationToken).ConfigureAwait(false)) > 0)
        {
            total += read;
        }

        var cut = total > settings.MaxResponseBytes;
        var text = Encoding.UTF8.GetString(buffer, 0, Math.Min(total, settings.MaxResponseBytes));
        text = settings.ExtractText && response.Content.Headers.ContentType?.MediaType is "text/html" or "application/xhtml+xml"
            ? HtmlText.Extract(text, settings.MaxResponseBytes, cancellationToken)
            : Printable(text);

        var status = $"HTTP {(int)response.StatusCode} {response.ReasonPhrase} from {url}";
        var content = $"{status}\n\n{text}{(cut ? $"\n[response cut at {settings.MaxResponseBytes:N0} bytes]" : "")}";
        return response.IsSuccessStatusCode ? new ToolOutcome(content) : ToolOutcome.Error(content);
    }

    private static string? HostProblem(Uri url, Settings settings)
    {
        var host = url.IdnHost.TrimEnd('.').ToLowerInvariant();
        if (settings.DeniedHosts.Any(pattern => Matches(url, host, pattern, anyPortWhenUnset: true)))
        {
            return $"{host} is on this tool's denied hosts.";
        }

        return settings.AllowedHosts.Count > 0 && !settings.AllowedHosts.Any(pattern => Matches(url, host, pattern, anyPortWhenUnset: false))
            ? $"{(url.IsDefaultPort ? host : $"{host}:{url.Port}")} is not among this tool's allowed hosts: {string.Join(", ", settings.AllowedHosts)}."
            : null;
    }

    // A denied host is denied by its addresses too: its IP written in the URL, or another name for the same address,
    // leads to the same server. (The allow list is the boundary to rely on: a name can resolve differently later.)
    private static async Task<string?> DeniedAddressAsync(Uri url, Settings settings, CancellationToken cancellationToken)
    {
        var names = settings.DeniedHosts.Select(pattern => SplitPort(pattern.ToLowerInvariant()))
            .Where(denied => !denied.Name.StartsWith("*.", StringComparison.Ordinal) && (denied.Port is null || denied.Port == url.Port))
            .Select(denied => denied.Name)
            .ToList();
        if (names.Count == 0)
        {
            return null;
        }

        var target = await AddressesAsync(url.IdnHost, cancellationToken).ConfigureAwait(false);
        foreach (var name in names)
        {
            if ((await AddressesAsync(name, cancellationToken).ConfigureAwait(false)).Intersect(target).Any())
            {
                return $"{url.IdnHost} is the address of {name}, which is on this tool's denied hosts.";
            }
        }

        return null;
    }

    private static async Task<IPAddress[]> AddressesAsync(string host, CancellationToken cancellationToken)
    {
        host = host.Trim('[', ']');
        if (IPAddress.TryParse(host, out var literal))
        {
            return [literal.IsIPv4MappedToIPv6 ? literal.MapToIPv4() : literal];
        }

        try
        {
            return [.. (await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false)).Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)];
        }
        catch (System.Net.Sockets.SocketException)
        {
            return []; // a name that does not resolve is no one's address
        }
    }

    // A pattern is a host (example.com, *.example.com) with an optional port. An allowed host without a port is
    // allowed on the scheme's default port only, so allowing a web site does not open its other services; a denied
    // host without a port is denied on every port.
    private static bool Matches(Uri url, string host, string pattern, bool anyPortWhenUnset)
    {
        var (name, port) = SplitPort(pattern.ToLowerInvariant());
        if (port is { } p ? url.Port != p : !anyPortWhenUnset && !url.IsDefaultPort)
        {
            return false;
        }

        return name.StartsWith("*.", StringComparison.Ordinal)
            ? host.EndsWith(name[1..], StringComparison.Ordinal) || host == name[2..]
            : host == name;
    }

    private static (string Name, int? Port) SplitPort(string pattern)
    {
        var colon = pattern.LastIndexOf(':');
        var bracketed = pattern.StartsWith('[');
        // An IPv6 address has colons of its own: its port follows the closing bracket.
        var hasPort = colon > 0 && (bracketed ? pattern[colon - 1] == ']' : pattern.IndexOf(':', StringComparison.Ordinal) == colon);
        return hasPort && int.TryParse(pattern.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            ? (pattern[..colon], port)
            : (pattern, null);
    }

    // Control characters other than line breaks and tabs (NUL, terminal escapes) are not text: each becomes U+FFFD.
    // The controls replaced: C0 but line breaks and tabs, DEL, and C1 (U+0080 to U+009F; U+009B is a one-character
    // CSI to many terminals). Text without any is returned as it is.
    private static readonly System.Buffers.SearchValues<char> Controls = System.Buffers.SearchValues.Create(
        [.. Enumerable.Range(0, 0x20).Where(c => c is not ('\n' or '\r' or '\t')).Concat(Enumerable.Range(0x7F, 0x21)).Select(c => (char)c)]);

    private static string Printable(string text) =>
        text.AsSpan().IndexOfAny(Controls) < 0
            ? text
            : string.Create(text.Length, text, static (span, source) =>
            {
                for (var i = 0; i < source.Length; i++)
                {
                    var c = source[i];
                    span[i] = c is '\n' or '\r' or '\t' || !char.IsControl(c) ? c : '\uFFFD';
                }
            });

    private sealed record Settings(
        IReadOnlyList<string> AllowedHosts, IReadOnlyList<string> DeniedHosts, bool AllowPrivate, IReadOnlyList<string> Methods,
        IReadOnlyDictionary<string, string> Headers, int MaxResponseBytes, int MaxRedirects, bool ExtractText)
    {
        public static Settings From(ToolConfig config)
        {
            var http = config.Http ?? new HttpToolSettings();
            return new Settings(
                [.. http.AllowedHosts],
                [.. http.DeniedHosts],
                http.AllowPrivateNetworks,
                http.AllowedMethods.Count > 0 ? [.. http.AllowedMethods] : ["GET"],
                new Dictionary<string, string>(http.Headers),
                http.MaxResponseBytes > 0 ? (int)Math.Min(http.MaxResponseBytes, int.MaxValue - 1) : 1_048_576,
                http.HasMaxRedirects ? http.MaxRedirects : 5,
                !http.HasExtractText || http.ExtractText);
        }
    }
}
