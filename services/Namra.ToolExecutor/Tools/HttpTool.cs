using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Google.Protobuf.WellKnownTypes;
using HtmlAgilityPack;
using Namra.Contracts.V1;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>builtin.http</c>: GET/POST/PUT/PATCH/DELETE/HEAD to allowed hosts. Internal addresses are refused after DNS
/// resolution and on every redirect (<see cref="NetworkGuard"/>) unless <c>allow_private_networks</c>; hosts are
/// checked against <c>allowed_hosts</c>/<c>denied_hosts</c> on every hop too. Responses are read up to
/// <c>max_response_bytes</c>; HTML becomes readable text for the model.
/// </summary>
internal sealed partial class HttpTool : ITool
{
    public const string PublicClient = "namra-tool-http-public";
    public const string AnyClient = "namra-tool-http-any";

    private const string Schema = """
        {"type":"object","properties":{"url":{"type":"string","minLength":1,"maxLength":8192,"description":"An http or https URL"},"method":{"enum":["GET","POST","PUT","PATCH","DELETE","HEAD"],"description":"GET when omitted"},"headers":{"type":"object","additionalProperties":{"type":"string"}},"body":{"type":"string","description":"Request body (POST, PUT, PATCH)"}},"required":["url"],"additionalProperties":false}
        """;

    private readonly IHttpClientFactory _clients;

    public HttpTool(IHttpClientFactory clients) => _clients = clients;

    public ToolType Type => ToolType.BuiltinHttp;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken)
    {
        var settings = Settings.From(config);
        var where = settings.AllowedHosts.Count > 0 ? $" to {string.Join(", ", settings.AllowedHosts)}" : "";
        var description = config.Description.Length > 0 ? config.Description
            : $"Sends an HTTP request ({string.Join(", ", settings.Methods)}){where} and returns the status and the response (HTML as text).";
        return Task.FromResult<IReadOnlyList<ToolDescription>>([new ToolDescription(config.Name, description, Schema)]);
    }

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, string toolName, JsonElement arguments, CancellationToken cancellationToken)
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

        var client = _clients.CreateClient(settings.AllowPrivate ? AnyClient : PublicClient);
        for (var hop = 0; ; hop++)
        {
            if (HostProblem(url, settings) is { } problem)
            {
                return ToolOutcome.Error(problem);
            }

            using var request = new HttpRequestMessage(new HttpMethod(method), url);
            foreach (var (name, value) in settings.Headers)
            {
                request.Headers.TryAddWithoutValidation(name, VariableReferences.Expand(value, Environment.GetEnvironmentVariable));
            }

            if (arguments.TryGetProperty("headers", out var headers))
            {
                foreach (var header in headers.EnumerateObject())
                {
                    request.Headers.TryAddWithoutValidation(header.Name, header.Value.GetString());
                }
            }

            if (arguments.TryGetProperty("body", out var body) && method is "POST" or "PUT" or "PATCH")
            {
                request.Content = new StringContent(body.GetString() ?? "", Encoding.UTF8,
                    request.Headers.TryGetValues("Content-Type", out var types) ? types.First() : "application/json");
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
                return ToolOutcome.Error($"The request failed: {exception.Message}");
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
                    if (response.StatusCode is HttpStatusCode.SeeOther || (method == "POST" && response.StatusCode is HttpStatusCode.Found or HttpStatusCode.MovedPermanently))
                    {
                        method = "GET";
                    }

                    continue;
                }

                return await ReadAsync(response, url, settings, cancellationToken).ConfigureAwait(false);
            }
        }
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
        if (settings.ExtractText && response.Content.Headers.ContentType?.MediaType is "text/html" or "application/xhtml+xml")
        {
            text = HtmlToText(text);
        }

        var status = $"HTTP {(int)response.StatusCode} {response.ReasonPhrase} from {url}";
        var content = $"{status}\n\n{text}{(cut ? $"\n[response cut at {settings.MaxResponseBytes:N0} bytes]" : "")}";
        return response.IsSuccessStatusCode ? new ToolOutcome(content) : ToolOutcome.Error(content);
    }

    private static string? HostProblem(Uri url, Settings settings)
    {
        var host = url.IdnHost.TrimEnd('.').ToLowerInvariant();
        if (settings.DeniedHosts.Any(pattern => Matches(host, pattern)))
        {
            return $"{host} is on this tool's denied hosts.";
        }

        return settings.AllowedHosts.Count > 0 && !settings.AllowedHosts.Any(pattern => Matches(host, pattern))
            ? $"{host} is not among this tool's allowed hosts: {string.Join(", ", settings.AllowedHosts)}."
            : null;
    }

    private static bool Matches(string host, string pattern)
    {
        pattern = pattern.ToLowerInvariant();
        return pattern.StartsWith("*.", StringComparison.Ordinal)
            ? host.EndsWith(pattern[1..], StringComparison.Ordinal) || host == pattern[2..]
            : host == pattern;
    }

    private static string HtmlToText(string html)
    {
        var document = new HtmlDocument();
        document.LoadHtml(html);
        foreach (var node in document.DocumentNode.SelectNodes("//script|//style|//noscript|//template") ?? Enumerable.Empty<HtmlNode>())
        {
            node.Remove();
        }

        var text = HtmlEntity.DeEntitize(document.DocumentNode.InnerText);
        return Whitespace().Replace(Blank().Replace(text, "\n\n"), " ").Trim();
    }

    [GeneratedRegex(@"[ \t\f\v]+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"\s*\n\s*\n\s*")]
    private static partial Regex Blank();

    private sealed record Settings(
        IReadOnlyList<string> AllowedHosts, IReadOnlyList<string> DeniedHosts, bool AllowPrivate, IReadOnlyList<string> Methods,
        IReadOnlyDictionary<string, string> Headers, int MaxResponseBytes, int MaxRedirects, bool ExtractText)
    {
        public static Settings From(ToolConfig config)
        {
            var f = config.Config?.Fields ?? new Google.Protobuf.Collections.MapField<string, Value>();
            IReadOnlyList<string> List(string name) =>
                f.TryGetValue(name, out var v) && v.KindCase == Value.KindOneofCase.ListValue ? [.. v.ListValue.Values.Select(x => x.StringValue)] : [];
            var methods = List("allowed_methods");
            return new Settings(
                List("allowed_hosts"),
                List("denied_hosts"),
                f.TryGetValue("allow_private_networks", out var p) && p.BoolValue,
                methods.Count > 0 ? methods : ["GET"],
                f.TryGetValue("headers", out var h) && h.KindCase == Value.KindOneofCase.StructValue
                    ? h.StructValue.Fields.ToDictionary(x => x.Key, x => x.Value.StringValue)
                    : new Dictionary<string, string>(),
                f.TryGetValue("max_response_bytes", out var size) ? (int)Math.Min(size.NumberValue, int.MaxValue - 1) : 1_048_576,
                f.TryGetValue("max_redirects", out var redirects) ? (int)redirects.NumberValue : 5,
                !f.TryGetValue("extract_text", out var extract) || extract.BoolValue);
        }
    }
}
