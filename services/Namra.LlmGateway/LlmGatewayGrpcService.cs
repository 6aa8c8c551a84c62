using System.Diagnostics;
using System.Runtime.CompilerServices;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.LlmGateway.Pricing;
using Namra.LlmGateway.Providers;
using Namra.LlmGateway.Resilience;

namespace Namra.LlmGateway;

/// <summary>The <c>namra.v1.LlmGatewayService</c> endpoint: routes each call to its provider, prices it, and records it.</summary>
internal sealed class LlmGatewayGrpcService(
    IEnumerable<ILlmProvider> providers,
    PricingTable pricing,
    ProviderResilience resilience,
    ProviderRateLimits rateLimits,
    Microsoft.Extensions.Options.IOptions<Options.LlmGatewayOptions> options) : LlmGatewayService.LlmGatewayServiceBase
{
    private readonly Dictionary<LlmProvider, ILlmProvider> _providers = providers.ToDictionary(p => p.Provider);

    public override async Task<GenerateResponse> Generate(GenerateRequest request, ServerCallContext context)
    {
        var chat = ToChatRequest(request.Llm, request.SystemPrompt, request.Messages, request.Tools, request.ToolChoice);
        await foreach (var item in RunAsync(chat, request.Context, request.Budget, context.CancellationToken).ConfigureAwait(false))
        {
            if (item.EventCase == StreamGenerateResponse.EventOneofCase.Completed)
            {
                var done = item.Completed;
                return new GenerateResponse
                {
                    Message = done.Message, StopReason = done.StopReason, Usage = done.Usage, Cost = done.Cost, Model = done.Model, ResponseId = done.ResponseId,
                    Reservation = done.Reservation, RequestId = done.RequestId, Attempts = { done.Attempts },
                };
            }
        }

        throw new NamraException(StatusCode.Unavailable, $"The {Name(chat.Llm.Provider)} stream ended without completing the turn.");
    }

    public override async Task StreamGenerate(StreamGenerateRequest request, IServerStreamWriter<StreamGenerateResponse> responseStream, ServerCallContext context)
    {
        var chat = ToChatRequest(request.Llm, request.SystemPrompt, request.Messages, request.Tools, request.ToolChoice);
        await foreach (var item in RunAsync(chat, request.Context, request.Budget, context.CancellationToken).ConfigureAwait(false))
        {
            await responseStream.WriteAsync(item, context.CancellationToken).ConfigureAwait(false);
        }
    }

    public override Task<ListModelsResponse> ListModels(ListModelsRequest request, ServerCallContext context)
    {
        var response = new ListModelsResponse();
        var prices = request.Model.Length == 0 ? pricing.All
            : pricing.Find(request.Provider, request.Model) is { } resolved ? [resolved with { Model = request.Model }] : [];
        response.Models.AddRange(prices
            .Where(p => request.Provider == LlmProvider.Unspecified || p.Provider == request.Provider)
            .Select(p => new ModelInfo
            {
                Provider = p.Provider,
                Model = p.Model,
                Pricing = p.ToProto(),
                SupportsTools = !p.Model.StartsWith("text-embedding", StringComparison.Ordinal),
                Embedding = p.Model.StartsWith("text-embedding", StringComparison.Ordinal),
            }));
        return Task.FromResult(response);
    }

    public override Task<CountTokensResponse> CountTokens(CountTokensRequest request, ServerCallContext context)
    {
        var response = new CountTokensResponse { InputTokens = Contracts.TokenEstimator.EstimateInput(request.SystemPrompt, request.Messages, request.Tools), Estimated = true };
        if (request.Llm is { Provider: not LlmProvider.Unspecified, Model.Length: > 0 } && request.Messages.Count > 0)
        {
            // The worst case a call would be reserved at, by the same rule and prices as the call itself.
            response.Reservation = CallReservations.Reserve(ToChatRequest(request.Llm, request.SystemPrompt, request.Messages, request.Tools, ToolChoice.Unspecified), pricing, budget: null);
        }

        return Task.FromResult(response);
    }

    public override async Task<EmbedResponse> Embed(EmbedRequest request, ServerCallContext context)
    {
        if (request.Llm is null || request.Llm.Model.Length == 0)
        {
            throw new InvalidArgumentException("llm.model", "Name the embedding model.");
        }

        if (request.Inputs.Count is 0 or > MaxEmbedInputs)
        {
            throw new InvalidArgumentException("inputs", $"Give 1 to {MaxEmbedInputs} texts to embed.");
        }

        if (!_providers.TryGetValue(request.Llm.Provider, out var provider) || provider is not IEmbeddingProvider embedder)
        {
            throw new NamraException(StatusCode.Unimplemented,
                $"Embeddings are served by the openai, openai_compatible and scripted providers, not {Name(request.Llm.Provider)}.");
        }

        // Reserved, refused and recorded as a model call is: an embedding is a provider request the caller pays for.
        var reservation = CallReservations.ReserveEmbedding(request.Llm, request.Inputs, pricing, request.Budget);
        var ledger = new AttemptLedger(request.Llm.Provider, reservation);
        var attempt = ledger.Begin(request.Llm.Model);
        EmbedResult result;
        try
        {
            result = await embedder.EmbedAsync(request.Llm, [.. request.Inputs], context.CancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception)
        {
            ledger.Failed(attempt, exception);
            throw ledger.WithAttempts(exception);
        }

        var response = result.Response;
        response.Usage = AttemptLedger.Believable(response.Usage);
        if (response.Usage is { } usage && pricing.PriceOf(request.Llm, request.Llm.Model) is { } price)
        {
            response.Cost = price.CostOf(usage);
        }

        ledger.Completed(attempt, result.RequestId, response.Usage, response.Cost);
        response.Reservation = reservation;
        response.Attempts.Add(ledger.All);
        LlmGatewayTelemetry.Tokens.Add(response.Usage?.InputTokens ?? 0, Name(request.Llm.Provider), MetricModel(request.Llm.Provider, request.Llm.Model), "input");
        return response;
    }

    private const int MaxEmbedInputs = 2048;

    private async IAsyncEnumerable<StreamGenerateResponse> RunAsync(ChatRequest chat, CallContext? call, CallBudget? budget, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var providerName = Name(chat.Llm.Provider);
        if (!_providers.TryGetValue(chat.Llm.Provider, out var provider))
        {
            throw new NamraException(StatusCode.Unimplemented, $"This gateway does not serve the {providerName} provider yet.");
        }

        // Before anything is sent: a call whose worst case does not fit the caller's budget is never made.
        var reservation = CallReservations.Reserve(chat, pricing, budget);
        var ledger = new AttemptLedger(chat.Llm.Provider, reservation, budget);
        ProviderAttempt? answering = null;

        // The caller's deadline bounds the call; so does the gateway's own limit, for callers that set none.
        using var callLimit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        callLimit.CancelAfter(options.Value.MaxCallDuration);
        var outer = cancellationToken;
        cancellationToken = callLimit.Token;
        var modelLabel = MetricModel(chat.Llm.Provider, chat.Llm.Model);

        using var activity = LlmGatewayTelemetry.ActivitySource.StartActivity($"chat {chat.Llm.Model}", ActivityKind.Client);
        Tag(activity, chat, call, providerName);
        if (activity is not null && options.Value.CaptureContent)
        {
            activity.SetTag(LlmGatewayTelemetry.Attributes.InputMessages, Google.Protobuf.JsonFormatter.Default.Format(
                new StreamGenerateRequest { SystemPrompt = chat.SystemPrompt, Messages = { chat.Messages } }));
        }

        var started = Stopwatch.GetTimestamp();
        var code = "OK";
        IAsyncEnumerator<StreamGenerateResponse>? events = null;
        try
        {
            StreamGenerateResponse first;
            try
            {
                rateLimits.Acquire(chat.Llm.Provider,
                    Contracts.TokenEstimator.EstimateInput(chat.SystemPrompt, chat.Messages, chat.Tools) + (chat.Llm.MaxTokens > 0 ? chat.Llm.MaxTokens : CallReservations.DefaultMaxTokens), providerName);
                (events, first, chat, answering) = await OpenWithFallbackAsync(provider, chat, ledger, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (callLimit.IsCancellationRequested && !outer.IsCancellationRequested)
            {
                code = nameof(StatusCode.DeadlineExceeded);
                throw ledger.WithAttempts(TooLong());
            }
            catch (Exception exception)
            {
                code = CodeOf(exception);
                throw ledger.WithAttempts(exception);
            }

            LlmGatewayTelemetry.TimeToFirstToken.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, providerName, modelLabel);
            var item = first;
            while (true)
            {
                if (item.EventCase == StreamGenerateResponse.EventOneofCase.Completed)
                {
                    item.Completed.Reservation = reservation;
                    Settle(item.Completed, chat, providerName, activity);
                    ledger.Completed(answering, item.Completed.RequestId, item.Completed.Usage, item.Completed.Cost, item.Completed.ResponseId);
                    item.Completed.Attempts.AddRange(ledger.All);
                }

                yield return item;
                try
                {
                    if (!await events.MoveNextAsync().ConfigureAwait(false))
                    {
                        break;
                    }
                }
                catch (OperationCanceledException) when (callLimit.IsCancellationRequested && !outer.IsCancellationRequested)
                {
                    // Broken off mid-stream: the provider may bill what it wrote.
                    code = nameof(StatusCode.DeadlineExceeded);
                    ledger.Unknown(answering);
                    throw ledger.WithAttempts(TooLong());
                }
                catch (Exception exception)
                {
                    code = CodeOf(exception);
                    ledger.Unknown(answering);
                    throw ledger.WithAttempts(exception);
                }

                item = events.Current;
            }
        }
        finally
        {
            if (events is not null)
            {
                await events.DisposeAsync().ConfigureAwait(false);
            }

            LlmGatewayTelemetry.Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, providerName, modelLabel);
            LlmGatewayTelemetry.Calls.Add(1, providerName, modelLabel, code);
            if (code != "OK")
            {
                activity?.SetStatus(ActivityStatusCode.Error, code);
                activity?.SetTag(LlmGatewayTelemetry.Attributes.ErrorType, code);
                // The provider's id of the last request it answered, for its support to find the failure.
                if (ledger.All.LastOrDefault(a => a.RequestId.Length > 0) is { } named)
                {
                    activity?.SetTag(LlmGatewayTelemetry.Attributes.ProviderRequestId, named.RequestId);
                }
            }
        }

        NamraException TooLong() => new(StatusCode.DeadlineExceeded,
            $"The {providerName} call took longer than the gateway allows ({options.Value.MaxCallDuration.TotalSeconds:0} s).");
    }

    // Model names come from callers: only priced models get their own metric series, the rest share "other".
    private string MetricModel(LlmProvider provider, string model) =>
        pricing.Find(provider, model) is { } price ? price.Model : "other";

    // The model, then each fallback model in turn while failures are transient; the chat that answered is returned.
    private async Task<(IAsyncEnumerator<StreamGenerateResponse>, StreamGenerateResponse, ChatRequest, ProviderAttempt)> OpenWithFallbackAsync(
        ILlmProvider provider, ChatRequest chat, AttemptLedger ledger, CancellationToken cancellationToken)
    {
        var models = chat.Llm.FallbackModels.Prepend(chat.Llm.Model).Distinct(StringComparer.Ordinal).ToList();
        for (var i = 0; ; i++)
        {
            var attempt = i == 0 ? chat : chat with { Llm = new LlmConfig(chat.Llm) { Model = models[i] } };
            try
            {
                var (events, first, sent) = await resilience.OpenAsync(provider, attempt, ledger, cancellationToken).ConfigureAwait(false);
                return (events, first, attempt, sent);
            }
            catch (Exception exception) when (i + 1 < models.Count && ProviderResilience.IsTransient(exception))
            {
                // Next model.
            }
        }
    }

    private static string CodeOf(Exception exception) => exception switch
    {
        NamraException namra => namra.StatusCode.ToString(),
        OperationCanceledException => "Cancelled",
        _ => "Internal",
    };

    // Prices the turn and records its usage; an unpriced model leaves the cost unset (unknown, not zero). The model
    // that answered is priced (a fallback, a snapshot); when its name resolves to no price, the model asked for is,
    // as the provider served it under that name.
    private void Settle(GenerateCompleted completed, ChatRequest chat, string providerName, Activity? activity)
    {
        completed.Usage = AttemptLedger.Believable(completed.Usage);
        var model = completed.Model.Length > 0 ? completed.Model : chat.Llm.Model;
        var label = MetricModel(chat.Llm.Provider, model);
        var usage = completed.Usage ?? new TokenUsage();
        if (completed.Usage is not null && (pricing.PriceOf(chat.Llm, model) ?? pricing.PriceOf(chat.Llm, chat.Llm.Model)) is { } price)
        {
            completed.Cost = price.CostOf(usage);
            LlmGatewayTelemetry.CostMicroUsd.Add((long)Math.Round(completed.Cost.TotalUsd * 1_000_000), providerName, label);
        }

        LlmGatewayTelemetry.Tokens.Add(usage.InputTokens, providerName, label, "input");
        LlmGatewayTelemetry.Tokens.Add(usage.OutputTokens, providerName, label, "output");
        LlmGatewayTelemetry.Tokens.Add(usage.CacheCreationInputTokens, providerName, label, "cache_write");
        LlmGatewayTelemetry.Tokens.Add(usage.CacheReadInputTokens, providerName, label, "cache_read");
        if (activity is not null)
        {
            if (options.Value.CaptureContent)
            {
                activity.SetTag(LlmGatewayTelemetry.Attributes.OutputMessages, Google.Protobuf.JsonFormatter.Default.Format(completed.Message));
            }

            activity.SetTag(LlmGatewayTelemetry.Attributes.ResponseModel, model);
            activity.SetTag(LlmGatewayTelemetry.Attributes.ResponseId, completed.ResponseId);
            activity.SetTag(LlmGatewayTelemetry.Attributes.ProviderRequestId, completed.RequestId);
            activity.SetTag(LlmGatewayTelemetry.Attributes.FinishReasons, new[] { FinishReason(completed.StopReason) });
            activity.SetTag(LlmGatewayTelemetry.Attributes.InputTokens, usage.InputTokens);
            activity.SetTag(LlmGatewayTelemetry.Attributes.OutputTokens, usage.OutputTokens);
            if (completed.Cost is { } cost)
            {
                activity.SetTag(LlmGatewayTelemetry.Attributes.CostUsd, cost.TotalUsd);
            }
        }
    }

    private static void Tag(Activity? activity, ChatRequest chat, CallContext? call, string providerName)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag(LlmGatewayTelemetry.Attributes.OperationName, "chat");
        activity.SetTag(LlmGatewayTelemetry.Attributes.ProviderName, providerName);
        activity.SetTag(LlmGatewayTelemetry.Attributes.RequestModel, chat.Llm.Model);
        activity.SetTag(LlmGatewayTelemetry.Attributes.RequestMaxTokens, chat.Llm.MaxTokens);
        if (chat.Llm.HasTemperature)
        {
            activity.SetTag(LlmGatewayTelemetry.Attributes.RequestTemperature, chat.Llm.Temperature);
        }

        if (call is not null)
        {
            activity.SetTag(LlmGatewayTelemetry.Attributes.RunId, call.RunId);
            activity.SetTag(LlmGatewayTelemetry.Attributes.AgentName, call.AgentName);
        }
    }

    private static ChatRequest ToChatRequest(LlmConfig? llm, string systemPrompt, Google.Protobuf.Collections.RepeatedField<Message> messages, Google.Protobuf.Collections.RepeatedField<ToolDefinition> tools, ToolChoice toolChoice)
    {
        if (llm is null || llm.Provider == LlmProvider.Unspecified)
        {
            throw new InvalidArgumentException("llm.provider", "Name the provider (anthropic, openai, openai_compatible or scripted).");
        }

        if (llm.Model.Length == 0)
        {
            throw new InvalidArgumentException("llm.model", "Name the model.");
        }

        if (messages.Count == 0)
        {
            throw new InvalidArgumentException("messages", "A model call needs at least one message.");
        }

        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role is not (Role.User or Role.Assistant or Role.Tool))
            {
                throw new InvalidArgumentException($"messages[{i}].role",
                    "Messages are user, assistant or tool; the system prompt goes in system_prompt.");
            }
        }

        return new ChatRequest(llm, systemPrompt, [.. messages], [.. tools], toolChoice);
    }

    // The GenAI semantic conventions' provider names.
    internal static string Name(LlmProvider provider) => provider switch
    {
        LlmProvider.Anthropic => "anthropic",
        LlmProvider.Openai => "openai",
        LlmProvider.OpenaiCompatible => "openai_compatible",
        LlmProvider.Scripted => "scripted",
        _ => "unspecified",
    };

    private static string FinishReason(StopReason reason) => reason switch
    {
        StopReason.EndTurn => "stop",
        StopReason.ToolUse => "tool_calls",
        StopReason.MaxTokens => "length",
        StopReason.StopSequence => "stop",
        StopReason.ContentFilter => "content_filter",
        StopReason.Refusal => "refusal",
        StopReason.PauseTurn => "pause_turn",
        _ => "unknown",
    };
}
