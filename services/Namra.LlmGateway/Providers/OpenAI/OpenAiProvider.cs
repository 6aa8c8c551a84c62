using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using CommunityToolkit.HighPerformance.Buffers;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.LlmGateway.Options;

namespace Namra.LlmGateway.Providers.OpenAI;

/// <summary>
/// OpenAI Chat Completions over HttpClient (<c>POST {base}/chat/completions</c>, <c>Authorization: Bearer</c>),
/// always streamed with <c>stream_options.include_usage</c>; and the same protocol against any
/// OpenAI-compatible server (<c>openai_compatible</c>: vLLM, Ollama, LM Studio, LiteLLM), where the key is optional.
/// Tool calls arrive as argument pieces by <c>index</c>, several in parallel; the turn completes at <c>[DONE]</c>.
/// </summary>
internal sealed class OpenAiProvider(LlmProvider provider, IHttpClientFactory httpClients, ProviderEndpoints endpoints, IOptions<LlmGatewayOptions> options)
    : ILlmProvider, IEmbeddingProvider
{
    public static readonly Uri DefaultBaseUrl = new("https://api.openai.com/v1");

    private bool Compatible => provider == LlmProvider.OpenaiCompatible;

    private string Name => Compatible ? "openai_compatible" : "openai";

    public LlmProvider Provider => provider;

    public async IAsyncEnumerable<StreamGenerateResponse> StreamAsync(ChatRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var body = new ArrayPoolBufferWriter<byte>(4096); // pooled: returned when the stream has been read
        OpenAiRequestWriter.Write(body, request, Compatible);
        using var response = await SendAsync(request.Llm, "/chat/completions", body, cancellationToken).ConfigureAwait(false);
        using var stream = await HttpSend.ReadBodyAsync(response, Name, options.Value.MaxResponseBytes, cancellationToken).ConfigureAwait(false);
        var turn = new TurnState(Name);
        var requestId = ProviderErrors.RequestId(response.Headers) ?? "";
        await foreach (var item in HttpSend.ReadEventsAsync(stream, Name, options.Value.StreamIdleTimeout, cancellationToken).ConfigureAwait(false))
        {
            if (item.Data.AsSpan().SequenceEqual("[DONE]"u8))
            {
                yield return new StreamGenerateResponse { Completed = turn.Complete(requestId) };
                yield break;
            }

            foreach (var output in turn.Apply(item.Data))
            {
                yield return output;
            }
        }

        // Some compatible servers end the stream without [DONE]; a finished turn is still a turn.
        if (!turn.Finished)
        {
            throw ProviderErrors.StreamEndedEarly(Name);
        }

        yield return new StreamGenerateResponse { Completed = turn.Complete(requestId) };
    }

    /// <summary>Embeds texts with <c>POST {base}/embeddings</c>.</summary>
    public async Task<EmbedResult> EmbedAsync(LlmConfig llm, IReadOnlyList<string> inputs, CancellationToken cancellationToken)
    {
        using var body = new ArrayPoolBufferWriter<byte>(256);
        OpenAiRequestWriter.WriteEmbeddings(body, llm.Model, inputs);
        using var response = await SendAsync(llm, "/embeddings", body, cancellationToken).ConfigureAwait(false);
        using var stream = await HttpSend.ReadBodyAsync(response, Name, options.Value.MaxResponseBytes, cancellationToken).ConfigureAwait(false);
        try
        {
            using var json = await JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
            return new EmbedResult(ReadEmbeddings(json.RootElement, inputs.Count), ProviderErrors.RequestId(response.Headers) ?? "");
        }
        catch (Exception exception) when (exception is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw ProviderErrors.Malformed(Name, "an embeddings response without the fields it needs");
        }
        catch (Exception exception) when (exception is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            throw ProviderErrors.Network(Name, exception);
        }
    }

    private EmbedResponse ReadEmbeddings(JsonElement root, int inputCount)
    {
        var result = new EmbedResponse();
        var vectors = root.GetProperty("data").EnumerateArray()
            .OrderBy(item => item.GetProperty("index").GetInt32())
            .Select(item => new Embedding { Values = { item.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()) } });
        result.Embeddings.AddRange(vectors);
        // Some compatible servers report no usage: unset, so the call counts at its worst case, never as free.
        if (root.TryGetProperty("usage", out var usage) && usage.TryGetProperty("prompt_tokens", out var tokens))
        {
            result.Usage = new TokenUsage { InputTokens = tokens.GetInt64() };
        }

        if (result.Embeddings.Count != inputCount)
        {
            throw ProviderErrors.Malformed(Name, $"{result.Embeddings.Count} embeddings for {inputCount} inputs");
        }

        return result;
    }

    private async Task<HttpResponseMessage> SendAsync(LlmConfig llm, string path, ArrayPoolBufferWriter<byte> body, CancellationToken cancellationToken)
    {
        var endpoint = Compatible
            ? endpoints.Resolve(llm, Name, DefaultBaseUrl, "OPENAI_BASE_URL", keyVariable: null, keyRequired: false)
            : endpoints.Resolve(llm, Name, DefaultBaseUrl, "OPENAI_BASE_URL", "OPENAI_API_KEY", keyRequired: true);
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(endpoint.BaseUrl, endpoint.BaseUrl.AbsolutePath.TrimEnd('/') + path))
        {
            Content = new ReadOnlyMemoryContent(body.WrittenMemory) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        if (endpoint.ApiKey is { } key)
        {
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return await HttpSend.SendAsync(httpClients, message, Name, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The state of one streamed turn: text, tool calls by index, finish reason and usage.</summary>
    internal sealed class TurnState(string provider)
    {
        private readonly StringBuilder _text = new();
        private readonly SortedDictionary<int, ToolCallState> _calls = [];
        private readonly TokenUsage _usage = new();
        private string _id = "";
        private string _model = "";
        private StopReason _stopReason;
        private bool _refused;
        private bool _usageSeen;

        public bool Finished { get; private set; }

        /// <summary>The events one chunk yields; a chunk of an unexpected shape is the provider's fault (UNAVAILABLE).</summary>
        public List<StreamGenerateResponse> Apply(byte[] data)
        {
            try
            {
                return [.. ApplyCore(data)];
            }
            catch (Exception exception) when (exception is KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw ProviderErrors.Malformed(provider, "a chunk without the fields it needs");
            }
        }

        private IEnumerable<StreamGenerateResponse> ApplyCore(byte[] data)
        {
            JsonDocument json;
            try
            {
                json = JsonDocument.Parse(data);
            }
            catch (JsonException)
            {
                throw ProviderErrors.Malformed(provider, "a chunk that is not JSON");
            }

            using (json)
            {
                var root = json.RootElement;
                if (root.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
                {
                    throw ProviderErrors.FromStreamError(provider, WireJson.String(error, "type"), WireJson.String(error, "message"));
                }

                _id = _id.Length > 0 ? _id : WireJson.String(root, "id");
                _model = _model.Length > 0 ? _model : WireJson.String(root, "model");
                if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                {
                    ReadUsage(usage);
                }

                if (!root.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array)
                {
                    yield break;
                }

                foreach (var choice in choices.EnumerateArray())
                {
                    if (choice.TryGetProperty("index", out var choiceIndex) && choiceIndex.GetInt32() != 0)
                    {
                        continue; // n > 1 is not something Namra asks for
                    }

                    if (choice.TryGetProperty("delta", out var delta))
                    {
                        if (delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String && content.GetString() is { Length: > 0 } text)
                        {
                            _text.Append(text);
                            yield return new StreamGenerateResponse { TextDelta = new TextDelta { Text = text } };
                        }

                        if (delta.TryGetProperty("refusal", out var refusal) && refusal.ValueKind == JsonValueKind.String && refusal.GetString() is { Length: > 0 } refused)
                        {
                            _refused = true;
                            _text.Append(refused);
                            yield return new StreamGenerateResponse { TextDelta = new TextDelta { Text = refused } };
                        }

                        if (delta.TryGetProperty("tool_calls", out var toolCalls) && toolCalls.ValueKind == JsonValueKind.Array)
                        {
                            var position = 0;
                            foreach (var piece in toolCalls.EnumerateArray())
                            {
                                yield return ApplyToolCall(piece, position++);
                            }
                        }
                    }

                    if (choice.TryGetProperty("finish_reason", out var finish) && finish.ValueKind == JsonValueKind.String && !Finished)
                    {
                        Finished = true;
                        _stopReason = finish.GetString() switch
                        {
                            _ when _refused => StopReason.Refusal,
                            // Cut off: the calls' arguments may be incomplete, so they are no calls.
                            "length" => StopReason.MaxTokens,
                            "content_filter" => StopReason.ContentFilter,
                            // Some compatible servers say "stop" after tool calls; the calls are what matter.
                            _ when _calls.Count > 0 => StopReason.ToolUse,
                            "stop" => StopReason.EndTurn,
                            _ => StopReason.Unspecified,
                        };
                        if (_stopReason == StopReason.ToolUse)
                        {
                            foreach (var call in _calls.Values)
                            {
                                yield return new StreamGenerateResponse { ToolCall = call.ToToolCall() };
                            }
                        }
                    }
                }
            }
        }

        public GenerateCompleted Complete(string requestId = "")
        {
            var message = new Message { Role = Role.Assistant };
            if (_text.Length > 0)
            {
                message.Content.Add(new ContentBlock { Text = _text.ToString() });
            }

            if (_stopReason == StopReason.ToolUse)
            {
                message.Content.AddRange(_calls.Values.Select(call => new ContentBlock { ToolCall = call.ToToolCall() }));
            }
            // Without a usage chunk (servers that ignore include_usage) the usage, and so the cost, is unknown, not zero.
            return new GenerateCompleted { Message = message, StopReason = _stopReason, Usage = _usageSeen ? _usage : null, Model = _model, ResponseId = _id, RequestId = requestId };
        }

        private StreamGenerateResponse ApplyToolCall(JsonElement piece, int position)
        {
            // Some compatible servers leave out the index; the position in the chunk stands in for it.
            var index = piece.TryGetProperty("index", out var given) && given.ValueKind == JsonValueKind.Number ? given.GetInt32() : position;
            if (!_calls.TryGetValue(index, out var call))
            {
                call = new ToolCallState();
                _calls[index] = call;
            }

            var delta = new ToolCallDelta { Index = index };
            if (WireJson.String(piece, "id") is { Length: > 0 } id)
            {
                call.Id = id;
                delta.Id = id;
            }

            if (piece.TryGetProperty("function", out var function))
            {
                if (WireJson.String(function, "name") is { Length: > 0 } name)
                {
                    call.Name = name;
                    delta.Name = name;
                }

                var arguments = WireJson.String(function, "arguments");
                call.Arguments.Append(arguments);
                delta.ArgumentsJsonDelta = arguments;
            }

            return new StreamGenerateResponse { ToolCallDelta = delta };
        }

        // prompt_tokens counts cached tokens too; Namra reports them apart, as they are priced apart.
        private void ReadUsage(JsonElement usage)
        {
            _usageSeen = true;
            var prompt = usage.TryGetProperty("prompt_tokens", out var p) && p.ValueKind == JsonValueKind.Number ? p.GetInt64() : 0;
            var cached = usage.TryGetProperty("prompt_tokens_details", out var details) && details.ValueKind == JsonValueKind.Object
                && details.TryGetProperty("cached_tokens", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetInt64() : 0;
            _usage.InputTokens = prompt - cached;
            _usage.CacheReadInputTokens = cached;
            _usage.OutputTokens = usage.TryGetProperty("completion_tokens", out var o) && o.ValueKind == JsonValueKind.Number ? o.GetInt64() : 0;
        }

        private sealed class ToolCallState
        {
            public string Id { get; set; } = "";

            public string Name { get; set; } = "";

            public StringBuilder Arguments { get; } = new();

            public ToolCall ToToolCall() => new() { Id = Id, Name = Name, ArgumentsJson = Arguments.Length > 0 ? Arguments.ToString() : "{}" };
        }
    }
}
