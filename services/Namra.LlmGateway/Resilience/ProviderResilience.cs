using System.Collections.Concurrent;
using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.LlmGateway.Options;
using Namra.LlmGateway.Providers;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Namra.LlmGateway.Resilience;

/// <summary>
/// Opens a provider stream through Polly: retries (backoff with jitter, the provider's <c>retry-after</c> honoured)
/// and a circuit breaker per provider and model. Only opening the stream, up to its first event, is retried: once an
/// event has reached the caller, a failure is the caller's to see.
/// </summary>
internal sealed class ProviderResilience(IOptions<LlmGatewayOptions> options, TimeProvider timeProvider)
{
    // Model names come from callers; past this many, further models share their provider's pipeline.
    private const int MaxPipelines = 256;

    private readonly ConcurrentDictionary<(LlmProvider Provider, string BaseUrl, string Model), ResiliencePipeline> _pipelines = new();

    /// <summary>
    /// One pipeline, so one circuit, per provider, address and model: providers overload model by model, and a
    /// fallback model of the same provider must not be refused by the failing model's open circuit.
    /// </summary>
    private ResiliencePipeline PipelineFor(LlmProvider provider, string baseUrl, string model)
    {
        // The address is part of the key: one caller's dead server must not open the circuit for others' healthy ones.
        var key = (provider, baseUrl, model);
        if (_pipelines.TryGetValue(key, out var pipeline))
        {
            return pipeline;
        }

        if (_pipelines.Count >= MaxPipelines)
        {
            key = (provider, "", "");
        }

        return _pipelines.GetOrAdd(key, _ => Build(options.Value, timeProvider));
    }

    /// <summary>The open stream and its first event.</summary>
    public async Task<(IAsyncEnumerator<StreamGenerateResponse> Events, StreamGenerateResponse First, ProviderAttempt Attempt)> OpenAsync(
        ILlmProvider provider, ChatRequest chat, Pricing.AttemptLedger ledger, CancellationToken cancellationToken)
    {
        try
        {
            return await PipelineFor(provider.Provider, chat.Llm.BaseUrl, chat.Llm.Model).ExecuteAsync(async token =>
            {
                // Every request sent is an entry of the ledger, whatever becomes of it.
                var attempt = ledger.Begin(chat.Llm.Model);

                // The rest of the stream outlives this attempt, so it runs on the caller's token.
                var events = provider.StreamAsync(chat, cancellationToken).GetAsyncEnumerator(cancellationToken);
                try
                {
                    token.ThrowIfCancellationRequested();
                    if (!await events.MoveNextAsync().ConfigureAwait(false))
                    {
                        throw ProviderErrors.StreamEndedEarly(LlmGatewayGrpcService.Name(provider.Provider));
                    }

                    return (events, events.Current, attempt);
                }
                catch (Exception exception)
                {
                    ledger.Failed(attempt, exception);
                    await events.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (BrokenCircuitException exception)
        {
            var name = LlmGatewayGrpcService.Name(provider.Provider);
            throw new NamraException(StatusCode.Unavailable,
                $"{name} is failing and its circuit is open; calls fail fast until it is tried again.",
                [new ErrorInfo { Domain = name, Reason = "CIRCUIT_OPEN" }, .. RetryAfter(exception.RetryAfter)], exception);
        }
    }

    /// <summary>
    /// Whether a failure is worth another try (on this model, or a fallback model): never a refusal of the caller's
    /// budget (its <c>QuotaFailure</c>), which another request cannot fit either.
    /// </summary>
    public static bool IsTransient(Exception exception) =>
        exception is NamraException namra && Providers.ProviderErrors.IsRetryable(namra) && !namra.Details.OfType<QuotaFailure>().Any();

    private static ResiliencePipeline Build(LlmGatewayOptions options, TimeProvider timeProvider)
    {
        var builder = new ResiliencePipelineBuilder { TimeProvider = timeProvider };
        if (options.Retry.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.Retry.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.Retry.BaseDelay,
                MaxDelay = options.Retry.MaxDelay,
                // A provider asking for a longer wait than the gateway allows gets its answer passed on, not a retry too soon.
                ShouldHandle = new PredicateBuilder().Handle<NamraException>(e => IsTransient(e) && !(ProviderRetryAfter(e, TimeSpan.MaxValue) > options.Retry.MaxDelay)),
                DelayGenerator = arguments => ValueTask.FromResult(ProviderRetryAfter(arguments.Outcome.Exception, options.Retry.MaxDelay)),
            });
        }

        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            FailureRatio = options.CircuitBreaker.FailureRatio,
            MinimumThroughput = options.CircuitBreaker.MinimumThroughput,
            SamplingDuration = options.CircuitBreaker.SamplingDuration,
            BreakDuration = options.CircuitBreaker.BreakDuration,
            // Rate limits say "slow down", not "broken": they do not open the circuit.
            ShouldHandle = new PredicateBuilder().Handle<NamraException>(e => e.StatusCode == StatusCode.Unavailable),
        });
        return builder.Build();
    }

    // The provider's retry-after, when it gave one; otherwise the backoff decides (null).
    private static TimeSpan? ProviderRetryAfter(Exception? exception, TimeSpan max)
    {
        var delay = (exception as NamraException)?.Details.OfType<RetryInfo>().FirstOrDefault()?.RetryDelay?.ToTimeSpan();
        return delay is null ? null : delay < max ? delay : max;
    }

    private static IEnumerable<Google.Protobuf.IMessage> RetryAfter(TimeSpan? delay) =>
        delay is { } value ? [new RetryInfo { RetryDelay = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(value) }] : [];
}
