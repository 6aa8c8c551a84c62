using System.Threading.RateLimiting;
using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.LlmGateway.Options;

namespace Namra.LlmGateway.Resilience;

/// <summary>
/// Client-side rate limits per provider: token buckets of requests and of tokens (input estimate plus
/// <c>max_tokens</c>) per minute, refilled every second. A call that finds a bucket empty is refused at once with
/// RESOURCE_EXHAUSTED and the time after which it would fit, rather than queued, so the caller decides.
/// </summary>
internal sealed class ProviderRateLimits : IDisposable
{
    private readonly Dictionary<LlmProvider, (TokenBucketRateLimiter? Requests, TokenBucketRateLimiter? Tokens, int TokenLimit)> _limiters = [];

    public ProviderRateLimits(IOptions<LlmGatewayOptions> options)
    {
        foreach (var (name, limits) in options.Value.RateLimits)
        {
            var provider = name switch
            {
                "anthropic" => LlmProvider.Anthropic,
                "openai" => LlmProvider.Openai,
                "openai_compatible" => LlmProvider.OpenaiCompatible,
                _ => throw new OptionsValidationException(LlmGatewayOptions.SectionName, typeof(LlmGatewayOptions),
                    [$"RateLimits names '{name}'; providers are anthropic, openai and openai_compatible."]),
            };
            _limiters[provider] = (Bucket(limits.RequestsPerMinute), Bucket(limits.TokensPerMinute), limits.TokensPerMinute);
        }
    }

    /// <summary>Takes a request and its tokens from the provider's buckets, or refuses the call.</summary>
    public void Acquire(LlmProvider provider, long tokens, string providerName)
    {
        if (!_limiters.TryGetValue(provider, out var limiters))
        {
            return;
        }

        if (limiters.Tokens is not null && tokens > limiters.TokenLimit)
        {
            // A call bigger than a whole minute's allowance would never fit: say so, with no retry delay.
            throw new NamraException(StatusCode.ResourceExhausted,
                $"The call needs about {tokens:N0} tokens (input and max_tokens) and the gateway allows {limiters.TokenLimit:N0} per minute for {providerName}.",
                [Quota(providerName, "tokens per minute")]);
        }

        Take(limiters.Requests, 1, providerName, "requests");
        Take(limiters.Tokens, (int)tokens, providerName, "tokens");
    }

    public void Dispose()
    {
        foreach (var (requests, tokens, _) in _limiters.Values)
        {
            requests?.Dispose();
            tokens?.Dispose();
        }
    }

    private static void Take(TokenBucketRateLimiter? limiter, int permits, string providerName, string what)
    {
        if (limiter is null)
        {
            return;
        }

        using var lease = limiter.AttemptAcquire(permits);
        if (lease.IsAcquired)
        {
            return;
        }

        var details = new List<Google.Protobuf.IMessage> { Quota(providerName, $"{what} per minute") };
        if (lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
        {
            details.Add(new RetryInfo { RetryDelay = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(retryAfter) });
        }

        throw new NamraException(StatusCode.ResourceExhausted,
            $"The gateway's {what}-per-minute limit for {providerName} is reached; try again shortly.", details);
    }

    private static QuotaFailure Quota(string providerName, string description) =>
        new() { Violations = { new QuotaFailure.Types.Violation { Subject = providerName, Description = description } } };

    // The bucket holds a minute's allowance and refills at exactly that rate: one permit every minute/limit (a
    // coarser step for very high limits, rounded down so the rate never exceeds the limit).
    private static TokenBucketRateLimiter? Bucket(int perMinute)
    {
        if (perMinute <= 0)
        {
            return null;
        }

        var (period, perPeriod) = perMinute <= 6000
            ? (TimeSpan.FromMinutes(1) / perMinute, 1)
            : (TimeSpan.FromMilliseconds(10), perMinute / 6000);
        return new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = perMinute,
            TokensPerPeriod = perPeriod,
            ReplenishmentPeriod = period,
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }
}
