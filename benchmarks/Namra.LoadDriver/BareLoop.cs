using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;

namespace Namra.LoadDriver;

/// <summary>
/// The baseline: the same run with no framework. Two streamed calls to the provider with HttpClient (its SSE read
/// with the framework's parser, each event's JSON read), the calculator evaluated in between with NCalc, the
/// tool result sent back. What any agent framework must at least do.
/// </summary>
internal sealed class BareLoop(Uri provider) : IDisposable
{
    private const string Tools = """[{"name":"calculator","description":"Evaluates an arithmetic expression exactly and returns the number.","input_schema":{"type":"object","properties":{"expression":{"type":"string","maxLength":1000}},"required":["expression"],"additionalProperties":false}}]""";
    private readonly HttpClient _http = new(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5), MaxConnectionsPerServer = 1024 }) { BaseAddress = provider };

    public async Task<string> RunAsync(string input, CancellationToken cancellationToken)
    {
        var user = JsonSerializer.Serialize(input);
        var first = await CallAsync($$"""[{"role":"user","content":[{"type":"text","text":{{user}}}]}]""", cancellationToken);
        var expression = JsonDocument.Parse(first.ToolArguments.ToString()).RootElement.GetProperty("expression").GetString()!;
        var result = Convert.ToString(new NCalc.Expression(expression).Evaluate(CancellationToken.None), System.Globalization.CultureInfo.InvariantCulture)!;
        var second = await CallAsync(
            $$"""[{"role":"user","content":[{"type":"text","text":{{user}}}]},{"role":"assistant","content":[{"type":"text","text":{{JsonSerializer.Serialize(first.Text.ToString())}}},{"type":"tool_use","id":"{{first.ToolId}}","name":"calculator","input":{{first.ToolArguments}}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"{{first.ToolId}}","content":{{JsonSerializer.Serialize(result)}}}]}]""",
            cancellationToken);
        return second.Text.ToString();
    }

    private Task<Turn> CallAsync(string messages, CancellationToken cancellationToken) => SendAsync(_http,
        $$"""{"model":"claude-sonnet-4-5-20250929","max_tokens":1024,"system":"Use the calculator for every computation.","messages":{{messages}},"tools":{{Tools}},"stream":true}""",
        cancellationToken);

    /// <summary>One streamed Messages call with <paramref name="body"/>, its events read into a turn.</summary>
    internal static async Task<Turn> SendAsync(HttpClient http, string body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages") { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add("x-api-key", "sk-ant-load");
        request.Headers.Add("anthropic-version", "2023-06-01");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        var turn = new Turn();
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(cancellationToken))
        {
            using var json = JsonDocument.Parse(item.Data);
            var root = json.RootElement;
            switch (root.GetProperty("type").GetString())
            {
                case "content_block_start" when root.GetProperty("content_block").GetProperty("type").GetString() == "tool_use":
                    var block = root.GetProperty("content_block");
                    turn.ToolId = block.GetProperty("id").GetString()!;
                    turn.ToolName = block.GetProperty("name").GetString()!;
                    break;
                case "content_block_delta":
                    var delta = root.GetProperty("delta");
                    if (delta.GetProperty("type").GetString() == "text_delta")
                    {
                        turn.Text.Append(delta.GetProperty("text").GetString());
                    }
                    else
                    {
                        turn.ToolArguments.Append(delta.GetProperty("partial_json").GetString());
                    }

                    break;
            }
        }

        return turn;
    }

    public void Dispose() => _http.Dispose();

    internal sealed class Turn
    {
        public StringBuilder Text { get; } = new();

        public StringBuilder ToolArguments { get; } = new();

        public string ToolId { get; set; } = "";

        public string ToolName { get; set; } = "";
    }
}
