using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using CommunityToolkit.HighPerformance.Buffers;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.LlmGateway.Options;

namespace Namra.LlmGateway.Providers.Anthropic;

/// <summary>
/// The Anthropic Messages API over HttpClient: <c>POST /v1/messages</c> with <c>x-api-key</c> and
/// <c>anthropic-version: 2023-06-01</c>, always streamed (Generate assembles the stream), parsed with
/// System.Net.ServerSentEvents. Handles every event type: message_start, content_block_start/delta/stop
/// (text_delta, input_json_delta, thinking_delta, signature_delta), message_delta, message_stop, ping, error.
/// </summary>
internal sealed class AnthropicProvider(IHttpClientFactory httpClients, ProviderEndpoints endpoints, IOptions<LlmGatewayOptions> options) : ILlmProvider
{
    public const string Name = "anthropic";
    public const string Version = "2023-06-01";
    public static readonly Uri DefaultBaseUrl = new("https://api.anthropic.com");

    public LlmProvider Provider => LlmProvider.Anthropic;

    public async IAsyncEnumerable<StreamGenerateResponse> StreamAsync(ChatRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var endpoint = endpoints.Resolve(request.Llm, Name, DefaultBaseUrl, "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", keyRequired: true);
        // A pooled buffer: grown from a small array per call, the body was the largest allocation of a model call.
        using var body = new ArrayPoolBufferWriter<byte>(4096);
        AnthropicRequestWriter.Write(body, request);

        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(endpoint.BaseUrl, Path(endpoint.BaseUrl)))
        {
            Content = new ReadOnlyMemoryContent(body.WrittenMemory) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        message.Headers.Add("x-api-key", endpoint.ApiKey);
        message.Headers.Add("anthropic-version", Version);
        message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));

        using var response = await HttpSend.SendAsync(httpClients, message, Name, cancellationToken).ConfigureAwait(false);
        using var stream = await HttpSend.ReadBodyAsync(response, Name, options.Value.MaxResponseBytes, cancellationToken).ConfigureAwait(false);
        var turn = new TurnState();
        var requestId = ProviderErrors.RequestId(response.Headers) ?? "";
        await foreach (var item in HttpSend.ReadEventsAsync(stream, Name, options.Value.StreamIdleTimeout, cancellationToken).ConfigureAwait(false))
        {
            foreach (var output in turn.Apply(item.EventType, item.Data))
            {
                if (output.Completed is { } completed)
                {
                    completed.RequestId = requestId;
                }

                yield return output;
            }

            if (turn.Done)
            {
                yield break;
            }
        }

        throw ProviderErrors.StreamEndedEarly(Name);
    }

    // The API lives at /v1/messages; a base URL with a path (a proxy's prefix) keeps it.
    private static string Path(Uri baseUrl) => baseUrl.AbsolutePath.TrimEnd('/') + "/v1/messages";

    /// <summary>The state of one streamed turn: its content blocks by index, usage and stop reason.</summary>
    internal sealed class TurnState
    {
        private readonly SortedDictionary<int, Block> _blocks = [];
        private readonly TokenUsage _usage = new();
        private string _id = "";
        private string _model = "";
        private StopReason _stopReason;
        private int _toolCalls;

        public bool Done { get; private set; }

        // The events of one SSE event; one list serves every event of the turn (each is read before the next comes).
        private readonly List<StreamGenerateResponse> _outputs = [];

        /// <summary>
        /// The events one SSE event yields, valid until the next call; an event of an unexpected shape is the provider's
        /// fault (UNAVAILABLE).
        /// </summary>
        public List<StreamGenerateResponse> Apply(string eventType, byte[] data)
        {
            _outputs.Clear();
            try
            {
                ApplyCore(eventType, data, _outputs);
                return _outputs;
            }
            catch (Exception exception) when (exception is KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw ProviderErrors.Malformed(Name, $"a {eventType} event without the fields it needs");
            }
        }

        private void ApplyCore(string eventType, byte[] data, List<StreamGenerateResponse> outputs)
        {
            using var json = Parse(data);
            var root = json.RootElement;
            switch (eventType)
            {
                case "message_start":
                    var start = root.GetProperty("message");
                    _id = String(start, "id");
                    _model = String(start, "model");
                    if (start.TryGetProperty("usage", out var startUsage))
                    {
                        ReadUsage(startUsage);
                    }

                    break;
                case "content_block_start":
                    var index = root.GetProperty("index").GetInt32();
                    var content = root.GetProperty("content_block");
                    var block = new Block(String(content, "type"));
                    _blocks[index] = block;
                    if (block.Type == "tool_use")
                    {
                        block.ToolIndex = _toolCalls++;
                        block.Id = String(content, "id");
                        block.Name = String(content, "name");
                        outputs.Add(new StreamGenerateResponse { ToolCallDelta = new ToolCallDelta { Index = block.ToolIndex, Id = block.Id, Name = block.Name } });
                    }
                    else if (block.Type == "text" && String(content, "text") is { Length: > 0 } initial)
                    {
                        block.Text.Append(initial);
                        outputs.Add(new StreamGenerateResponse { TextDelta = new TextDelta { Text = initial } });
                    }
                    else if (block.Type == "redacted_thinking")
                    {
                        block.Signature.Append(String(content, "data"));
                    }

                    break;
                case "content_block_delta":
                    var target = _blocks.GetValueOrDefault(root.GetProperty("index").GetInt32())
                        ?? throw ProviderErrors.Malformed(Name, "a delta for a content block that was not started");
                    var delta = root.GetProperty("delta");
                    switch (String(delta, "type"))
                    {
                        case "text_delta":
                            var text = String(delta, "text");
                            target.Text.Append(text);
                            outputs.Add(new StreamGenerateResponse { TextDelta = new TextDelta { Text = text } });
                            break;
                        case "input_json_delta":
                            var piece = String(delta, "partial_json");
                            target.Text.Append(piece);
                            outputs.Add(new StreamGenerateResponse { ToolCallDelta = new ToolCallDelta { Index = target.ToolIndex, ArgumentsJsonDelta = piece } });
                            break;
                        case "thinking_delta":
                            target.Text.Append(String(delta, "thinking"));
                            break;
                        case "signature_delta":
                            target.Signature.Append(String(delta, "signature"));
                            break;
                    }

                    break;
                case "content_block_stop":
                    var stopped = _blocks.GetValueOrDefault(root.GetProperty("index").GetInt32());
                    if (stopped is not null)
                    {
                        stopped.Complete = true;
                    }

                    if (stopped is { Type: "tool_use" })
                    {
                        outputs.Add(new StreamGenerateResponse { ToolCall = stopped.ToToolCall() });
                    }

                    break;
                case "message_delta":
                    if (root.TryGetProperty("delta", out var messageDelta) && messageDelta.TryGetProperty("stop_reason", out var reason) && reason.ValueKind == JsonValueKind.String)
                    {
                        _stopReason = StopReasonOf(reason.GetString()!);
                    }

                    if (root.TryGetProperty("usage", out var deltaUsage))
                    {
                        ReadUsage(deltaUsage);
                    }

                    break;
                case "message_stop":
                    Done = true;
                    outputs.Add(new StreamGenerateResponse { Completed = Complete() });
                    break;
                case "error":
                    var error = root.GetProperty("error");
                    throw ProviderErrors.FromStreamError(Name, String(error, "type"), String(error, "message"));
                default:
                    // ping, and event types added after this was written: nothing to do.
                    break;
            }
        }

        private GenerateCompleted Complete()
        {
            var message = new Message { Role = Role.Assistant };
            foreach (var block in _blocks.Values)
            {
                switch (block.Type)
                {
                    case "text" when block.Text.Length > 0:
                        message.Content.Add(new ContentBlock { Text = block.Text.ToString() });
                        break;
                    case "tool_use" when block.Complete:
                        // A tool block cut off by max_tokens never gets its stop event: its arguments are not whole.
                        message.Content.Add(new ContentBlock { ToolCall = block.ToToolCall() });
                        break;
                    case "thinking":
                        message.Content.Add(new ContentBlock { Thinking = new Thinking { Text = block.Text.ToString(), Signature = block.Signature.ToString() } });
                        break;
                    case "redacted_thinking":
                        message.Content.Add(new ContentBlock { Thinking = new Thinking { Redacted = true, Signature = block.Signature.ToString() } });
                        break;
                }
            }

            return new GenerateCompleted { Message = message, StopReason = _stopReason, Usage = _usage, Model = _model, ResponseId = _id };
        }

        // message_delta's usage is cumulative and may repeat message_start's fields: the latest value wins.
        private void ReadUsage(JsonElement usage)
        {
            foreach (var property in usage.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.Number)
                {
                    continue;
                }

                switch (property.Name)
                {
                    case "input_tokens":
                        _usage.InputTokens = property.Value.GetInt64();
                        break;
                    case "output_tokens":
                        _usage.OutputTokens = property.Value.GetInt64();
                        break;
                    case "cache_creation_input_tokens":
                        _usage.CacheCreationInputTokens = property.Value.GetInt64();
                        break;
                    case "cache_read_input_tokens":
                        _usage.CacheReadInputTokens = property.Value.GetInt64();
                        break;
                }
            }
        }

        private static StopReason StopReasonOf(string reason) => reason switch
        {
            "end_turn" => StopReason.EndTurn,
            "tool_use" => StopReason.ToolUse,
            "max_tokens" => StopReason.MaxTokens,
            "stop_sequence" => StopReason.StopSequence,
            "pause_turn" => StopReason.PauseTurn,
            "refusal" => StopReason.Refusal,
            _ => StopReason.Unspecified,
        };

        private static JsonDocument Parse(byte[] data)
        {
            try
            {
                return JsonDocument.Parse(data);
            }
            catch (JsonException)
            {
                throw ProviderErrors.Malformed(Name, "an event that is not JSON");
            }
        }

        private static string String(JsonElement element, string name) => WireJson.String(element, name);

        private sealed class Block(string type)
        {
            public string Type { get; } = type;

            public StringBuilder Text { get; } = new();

            public StringBuilder Signature { get; } = new();

            public int ToolIndex { get; set; }

            public bool Complete { get; set; }

            public string Id { get; set; } = "";

            public string Name { get; set; } = "";

            public ToolCall ToToolCall() => new() { Id = Id, Name = Name, ArgumentsJson = Text.Length > 0 ? Text.ToString() : "{}" };
        }
    }
}
