using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.LlmGateway.Options;
using Namra.LlmGateway.Resilience;
using Namra.Testing.Providers;
using Namra.Testing;

namespace Namra.LlmGateway.Tests;

/// <summary>Retries, retry-after, the circuit breaker and fallback models, on a fake clock: no test waits for real time.</summary>
public sealed class ResilienceTests : IAsyncLifetime
{
    private readonly SignallingTimeProvider _time = new();
    private FakeProviderServer _anthropic = null!;
    private NamraTestHost _host = null!;
    private LlmGatewayService.LlmGatewayServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _anthropic = await FakeProviderServer.StartAsync();
        var environment = new Dictionary<string, string>
        {
            ["ANTHROPIC_API_KEY"] = "sk-ant-test",
            ["ANTHROPIC_BASE_URL"] = _anthropic.BaseUrl.ToString(),
            ["OPENAI_API_KEY"] = "sk-openai-test",
            ["OPENAI_BASE_URL"] = new Uri(_anthropic.BaseUrl, "/v1").ToString(),
        };
        _host = await TestGateway.StartAsync(environment, new Dictionary<string, string?>
        {
            ["Namra:LlmGateway:Retry:MaxRetries"] = "2",
            ["Namra:LlmGateway:Retry:BaseDelay"] = "00:00:01",
            ["Namra:LlmGateway:Retry:MaxDelay"] = "00:00:30",
            ["Namra:LlmGateway:CircuitBreaker:MinimumThroughput"] = "3",
            ["Namra:LlmGateway:CircuitBreaker:FailureRatio"] = "0.5",
            ["Namra:LlmGateway:CircuitBreaker:BreakDuration"] = "00:00:30",
            ["Namra:LlmGateway:CircuitBreaker:SamplingDuration"] = "00:05:00", // longer than the backoffs the tests pass
        }, configure: builder =>
        {
            // Only the retries and the breaker run on the fake clock; the server and clients keep real time.
            builder.Services.AddSingleton(services => new ProviderResilience(services.GetRequiredService<IOptions<LlmGatewayOptions>>(), _time));
        });
        _client = new LlmGatewayService.LlmGatewayServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _anthropic.DisposeAsync();
    }

    [Fact]
    public async Task Generate_WhenOverloadedThenFine_RetriesAndAnswers()
    {
        _anthropic.Enqueue(new ErrorReply(529, AnthropicWire.ErrorBody("overloaded_error", "Overloaded")), AnthropicWire.TextTurn(10, 2, "ok"));

        var call = _client.GenerateAsync(Request()).ResponseAsync;
        await PassNextBackoffAsync();

        var response = await call.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("ok", response.Message.Content.Single().Text);
        Assert.Equal(2, _anthropic.Requests.Count);
        // Both requests are on the call's ledger: the refused one billed nothing, the answered one its usage.
        Assert.Equal([AttemptOutcome.Failed, AttemptOutcome.Completed], response.Attempts.Select(a => a.Outcome));
        Assert.Contains("Overloaded", response.Attempts[0].Error, StringComparison.Ordinal);
        Assert.Equal(12, response.Attempts[1].Usage.InputTokens + response.Attempts[1].Usage.OutputTokens);
        Assert.Equal(response.Cost.TotalUsd, response.Attempts[1].Cost.TotalUsd);
    }

    [Theory]
    [InlineData(-1, false)]
    [InlineData(0, true)]
    public async Task Generate_AfterARequestOfUnknownOutcome_SendsAnother_OnlyWhenBothWorstCasesFitTheBudget(long beyondTwoReservations, bool retried)
    {
        // A request whose connection broke may be billed its worst case; a retry is another worst case on top of it.
        _anthropic.Enqueue(AnthropicWire.TextTurn(10, 2, "measure"));
        var reservation = (await _client.GenerateAsync(Request()).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(10))).Reservation.Tokens;
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart()], DropAfter: 0), AnthropicWire.TextTurn(10, 2, "ok"));
        var budget = new CallBudget { MaxTokens = (2 * reservation) + beyondTwoReservations };
        var request = Request();
        request.Budget = budget;

        var call = _client.GenerateAsync(request).ResponseAsync;
        await PassNextBackoffAsync();

        if (retried)
        {
            var response = await call.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal([AttemptOutcome.Unknown, AttemptOutcome.Completed], response.Attempts.Select(a => a.Outcome));
            Assert.Equal(reservation, response.Attempts[0].ChargedTokens);
            Assert.Equal(3, _anthropic.Requests.Count);
            return;
        }

        var error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        var violation = Assert.Single(Assert.Single(RpcDetails.Of<Google.Rpc.QuotaFailure>(error)).Violations);
        Assert.Equal("execution.budget.max_tokens", violation.Subject);
        Assert.Contains("unknown outcome", violation.Description, StringComparison.Ordinal);
        var attempt = Assert.Single(Assert.Single(RpcDetails.Of<ProviderAttempts>(error)).Attempts);
        Assert.Equal((AttemptOutcome.Unknown, reservation), (attempt.Outcome, attempt.ChargedTokens));
        Assert.Equal(2, _anthropic.Requests.Count); // the measuring call and the broken one: no retry, no fallback
    }

    [Fact]
    public async Task Generate_WhenRateLimited_WaitsTheRetryAfterTheProviderAsked()
    {
        _anthropic.Enqueue(
            new ErrorReply(429, AnthropicWire.ErrorBody("rate_limit_error", "slow down"), new Dictionary<string, string> { ["retry-after"] = "20" }),
            AnthropicWire.TextTurn(10, 2, "ok"));

        var call = _client.GenerateAsync(Request()).ResponseAsync;
        await _time.TimerCreated.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.FromSeconds(20), _time.LastDueTime); // the wait the provider asked for, not the backoff
        _time.Advance(TimeSpan.FromSeconds(20));

        Assert.Equal("ok", (await call.WaitAsync(TimeSpan.FromSeconds(10))).Message.Content.Single().Text);
        Assert.Equal(2, _anthropic.Requests.Count);
    }

    [Fact]
    public async Task StreamGenerate_AfterTheFirstEvent_DoesNotRetry()
    {
        _anthropic.Enqueue(new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.TextBlock(0, "Hel"), AnthropicWire.Error("overloaded_error", "Overloaded")]),
            AnthropicWire.TextTurn(10, 2, "never sent"));

        using var call = _client.StreamGenerate(new StreamGenerateRequest { Llm = Request().Llm, Messages = { Request().Messages } });
        var received = new List<StreamGenerateResponse>();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var item in call.ResponseStream.ReadAllAsync())
            {
                received.Add(item);
            }
        });

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("Hel", Assert.Single(received).TextDelta.Text);
        Assert.Single(_anthropic.Requests);
    }

    [Fact]
    public async Task Generate_WhenTheRequestIsBad_DoesNotRetry()
    {
        _anthropic.Enqueue(new ErrorReply(400, AnthropicWire.ErrorBody("invalid_request_error", "max_tokens: must be positive")));

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Request()).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Single(_anthropic.Requests);
    }

    [Fact]
    public async Task Generate_WhenTheProviderSaysNotToRetry_DoesNot_AndSaysWhichRequestFailed()
    {
        // Anthropic's x-should-retry overrides the status, as the official SDKs obey it.
        _anthropic.Enqueue(new ErrorReply(529, AnthropicWire.ErrorBody("overloaded_error", "Overloaded"),
            new Dictionary<string, string> { ["x-should-retry"] = "false", ["request-id"] = "req_011CSHoEeqs5C35K2UUqR7Fy" }));

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Request()).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Single(_anthropic.Requests);
        Assert.Contains("(request req_011CSHoEeqs5C35K2UUqR7Fy)", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("req_011CSHoEeqs5C35K2UUqR7Fy", RpcDetails.Of<Google.Rpc.ErrorInfo>(error).Single().Metadata["request_id"]);
    }

    [Fact]
    public async Task Generate_WhenTheProviderSaysToRetry_Retries_WhateverTheStatus()
    {
        _anthropic.Enqueue(new ErrorReply(409, AnthropicWire.ErrorBody("api_error", "Conflict"), new Dictionary<string, string> { ["x-should-retry"] = "true" }),
            AnthropicWire.TextTurn(10, 2, "ok"));

        var call = _client.GenerateAsync(Request()).ResponseAsync;
        await PassNextBackoffAsync();

        Assert.Equal("ok", (await call.WaitAsync(TimeSpan.FromSeconds(10))).Message.Content.Single().Text);
        Assert.Equal(2, _anthropic.Requests.Count);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("true")]
    public async Task Generate_WhenTheAccountHasNoCredit_IsNotRetried(string? shouldRetry)
    {
        // OpenAI answers 429 for a billing state too: retrying costs time and changes nothing, whatever a header advises.
        var headers = new Dictionary<string, string> { ["x-request-id"] = "req_8c1f0a" };
        if (shouldRetry is not null)
        {
            headers["x-should-retry"] = shouldRetry;
        }

        _anthropic.Enqueue(new ErrorReply(429, OpenAiWire.ErrorBody("insufficient_quota", "You exceeded your current quota, please check your plan and billing details.", "insufficient_quota"),
            headers), AnthropicWire.TextTurn(10, 2, "never sent"));
        var request = new GenerateRequest
        {
            Llm = new LlmConfig { Provider = LlmProvider.Openai, Model = "gpt-4o-mini", MaxTokens = 64 },
            Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "hi" } } } },
        };

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(request).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(10))); // a retry would wait on the fake clock

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Single(_anthropic.Requests);
        Assert.Contains("exceeded your current quota", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("(request req_8c1f0a)", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CircuitBreaker_OpensAfterFailures_FailsFast_ThenClosesAfterATrialCall()
    {
        var failure = new ErrorReply(500, AnthropicWire.ErrorBody("api_error", "Internal server error"));
        _anthropic.Enqueue(failure, failure, failure);

        var failing = _client.GenerateAsync(Request()).ResponseAsync;
        await PassNextBackoffAsync();
        await PassNextBackoffAsync();
        var first = await Assert.ThrowsAsync<RpcException>(() => failing.WaitAsync(TimeSpan.FromSeconds(10)));
        var fast = await Assert.ThrowsAsync<RpcException>(() => _client.GenerateAsync(Request(), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, first.StatusCode);
        Assert.Equal(StatusCode.Unavailable, fast.StatusCode);
        Assert.Contains("circuit is open", fast.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(3, _anthropic.Requests.Count); // the fast failure never reached the provider

        _time.Advance(TimeSpan.FromSeconds(31));
        _anthropic.Enqueue(AnthropicWire.TextTurn(10, 2, "back"));
        var recovered = await _client.GenerateAsync(Request(), deadline: DateTime.UtcNow.AddSeconds(10));

        Assert.Equal("back", recovered.Message.Content.Single().Text);
    }

    [Fact]
    public async Task Generate_WhenTheModelStaysOverloaded_FallsBackToTheNextModel()
    {
        var overloaded = new ErrorReply(529, AnthropicWire.ErrorBody("overloaded_error", "Overloaded"));
        _anthropic.Enqueue(overloaded, overloaded, overloaded, new SseReply([
            AnthropicWire.MessageStart(model: "claude-haiku-4-5-20251001", inputTokens: 10), .. AnthropicWire.TextBlock(0, "from haiku"),
            AnthropicWire.MessageDelta("end_turn", 3), AnthropicWire.MessageStop()]));
        var request = Request();
        request.Llm.FallbackModels.Add("claude-haiku-4-5-20251001");

        var call = _client.GenerateAsync(request).ResponseAsync;
        await PassNextBackoffAsync();
        await PassNextBackoffAsync();
        var response = await call.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(("claude-haiku-4-5-20251001", "from haiku"), (response.Model, response.Message.Content.Single().Text));
        Assert.Contains("\"model\":\"claude-haiku-4-5-20251001\"", _anthropic.Requests[^1].Body, StringComparison.Ordinal);
        Assert.Equal(0.000025, response.Cost.TotalUsd, 10); // haiku 4.5: 10 × $1 + 3 × $5 per MTok
    }

    // Waits until the retry strategy has scheduled its backoff on the fake clock, then lets it pass.
    private async Task PassNextBackoffAsync()
    {
        await _time.TimerCreated.WaitAsync(TimeSpan.FromSeconds(10));
        _time.Advance(TimeSpan.FromSeconds(30));
    }

    private static GenerateRequest Request() => new()
    {
        Llm = new LlmConfig { Provider = LlmProvider.Anthropic, Model = AnthropicWire.Model, MaxTokens = 64 },
        Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "hi" } } } },
    };

    /// <summary>A fake clock that says when something starts waiting on it.</summary>
    private sealed class SignallingTimeProvider : FakeTimeProvider
    {
        private readonly SemaphoreSlim _created = new(0);

        public SignallingTimeProvider()
            : base(DateTimeOffset.Parse("2026-11-26T12:00:00Z", global::System.Globalization.CultureInfo.InvariantCulture))
        {
        }

        public Task TimerCreated => _created.WaitAsync();

        public TimeSpan LastDueTime { get; private set; }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            LastDueTime = dueTime;
            var timer = base.CreateTimer(callback, state, dueTime, period);
            _created.Release();
            return timer;
        }
    }
}
