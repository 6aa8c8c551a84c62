using System.Net.Sockets;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Namra.Contracts.V1;
using Namra.Hosting;
using Namra.Hosting.Clients;
using Namra.Hosting.Errors;
using Namra.Server;
using Namra.Testing;

namespace Namra.IntegrationTests;

/// <summary>
/// Calls from one Namra process to another over a real socket, to a service that answers <c>UNAVAILABLE</c> a set
/// number of times (a replica restarting): what is retried, how often, and what is not (a call that reached a
/// service and is not safe to repeat).
/// </summary>
public sealed class UnavailableRetryTests
{
    [Fact]
    public async Task AUnaryCall_AnsweredUnavailableTwice_SucceedsOnTheThirdAttempt()
    {
        var flaky = new Flaky { Failures = 2 };
        await using var hosts = await Hosts.StartAsync(flaky);

        var response = await hosts.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = "run-1" }, deadline: DateTime.UtcNow.AddSeconds(30));

        Assert.Equal("run-1", response.Run.RunId);
        Assert.Equal(3, flaky.Calls);
    }

    [Fact]
    public async Task AUnaryCall_AlwaysUnavailable_GivesUpAfterFiveAttempts_WithTheServicesStatus()
    {
        var flaky = new Flaky { Failures = int.MaxValue };
        await using var hosts = await Hosts.StartAsync(flaky);

        var error = await Assert.ThrowsAsync<DownstreamException>(() =>
            hosts.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = "run-1" }, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("The memory service is unavailable: restarting", error.Status.Detail);
        Assert.Equal("restarting", error.Cause.Status.Detail);
        var resource = Assert.Single(RpcDetails.Of<Google.Rpc.ResourceInfo>(error));
        Assert.Equal(("namra.v1.MemoryService", "memory"), (resource.ResourceType, resource.ResourceName));
        Assert.Equal(5, flaky.Calls);
    }

    [Fact]
    public async Task ACallNotSafeToRepeat_AnsweredUnavailableByTheService_IsNotRetried()
    {
        // The executor received the call (the tool may have run): running it again could repeat its effect.
        var flaky = new Flaky { Failures = int.MaxValue };
        await using var hosts = await Hosts.StartAsync(flaky);

        var error = await Assert.ThrowsAsync<DownstreamException>(() =>
            hosts.ToolExecutor.ExecuteToolAsync(new ExecuteToolRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("tool-executor", error.Service);
        Assert.False(error.NeverReachedTheService);
        Assert.Equal(1, flaky.Calls);
    }

    [Fact]
    public async Task ACallNotSafeToRepeat_ToAServiceNotListening_IsKnownNotToHaveBeenSent()
    {
        // Nothing listens on the port: the connection is refused, so a retry cannot repeat anything.
        await using var caller = await NamraTestHost.StartAsync("config", new Dictionary<string, string?>
        {
            ["Namra:Services:ToolExecutor"] = $"http://127.0.0.1:{LocalPorts.Free()}",
        });
        var client = new ToolExecutorService.ToolExecutorServiceClient(caller.Services.GetRequiredService<NamraServiceChannels>().For("tool-executor"));

        var error = await Assert.ThrowsAsync<DownstreamException>(() =>
            client.ExecuteToolAsync(new ExecuteToolRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.True(error.NeverReachedTheService, error.Cause.ToString());
    }

    [Fact]
    public async Task AUnaryCall_FailingWithAnotherStatus_IsNotRetried()
    {
        var flaky = new Flaky { Failures = int.MaxValue, Status = StatusCode.Internal };
        await using var hosts = await Hosts.StartAsync(flaky);

        var error = await Assert.ThrowsAsync<DownstreamException>(() =>
            hosts.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = "run-1" }, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.Equal("The memory service failed: restarting", error.Status.Detail);
        Assert.Equal(1, flaky.Calls);
    }

    [Fact]
    public async Task AUnaryCall_CancelledByItsCaller_EndsCancelled_WithoutAnotherAttempt()
    {
        var flaky = new Flaky { Failures = int.MaxValue };
        await using var hosts = await Hosts.StartAsync(flaky);
        using var caller = new CancellationTokenSource();
        flaky.OnCall = calls =>
        {
            if (calls == 2)
            {
                caller.Cancel();
            }
        };

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            hosts.Memory.GetRunRecordAsync(new GetRunRecordRequest { RunId = "run-1" }, deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: caller.Token).ResponseAsync);

        Assert.Equal(StatusCode.Cancelled, error.StatusCode);
        Assert.Equal(2, flaky.Calls);
    }

    [Fact]
    public async Task AModelTurn_ThatReachedAGateway_IsNotSentAgain()
    {
        // Every model turn that reaches a gateway may be billed: the gateway's retries are the only ones.
        var flaky = new Flaky { Failures = 1 };
        await using var hosts = await Hosts.StartAsync(flaky);

        var streamed = await Assert.ThrowsAsync<DownstreamException>(async () =>
        {
            using var call = hosts.LlmGateway.StreamGenerate(new StreamGenerateRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }
        });

        Assert.Equal(StatusCode.Unavailable, streamed.StatusCode);
        Assert.Equal(1, flaky.Calls);
    }

    [Fact]
    public async Task AnEmbedding_ThatReachedAGateway_IsNotSentAgain()
    {
        // An embedding is billed as a model turn is: the memory service's retry must not send it to the provider twice.
        var flaky = new Flaky { Failures = 1 };
        await using var hosts = await Hosts.StartAsync(flaky);

        var error = await Assert.ThrowsAsync<DownstreamException>(() =>
            hosts.LlmGateway.EmbedAsync(new EmbedRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(1, flaky.Calls);
    }

    [Fact]
    public async Task AModelTurn_ToAGatewayNotListening_IsKnownNotToHaveBeenSent()
    {
        await using var caller = await NamraTestHost.StartAsync("config", new Dictionary<string, string?>
        {
            ["Namra:Services:LlmGateway"] = $"http://127.0.0.1:{LocalPorts.Free()}",
        });
        var client = new LlmGatewayService.LlmGatewayServiceClient(caller.Services.GetRequiredService<NamraServiceChannels>().For("llm-gateway"));

        var error = await Assert.ThrowsAsync<DownstreamException>(async () =>
        {
            using var call = client.StreamGenerate(new StreamGenerateRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
            await call.ResponseStream.MoveNext();
        });

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.True(error.NeverReachedTheService, error.Cause.ToString());
    }

    [Theory]
    [InlineData(SocketError.ConnectionRefused, true)]
    [InlineData(SocketError.HostUnreachable, true)]
    [InlineData(SocketError.ConnectionReset, false)]
    [InlineData(SocketError.ConnectionAborted, false)]
    [InlineData(SocketError.Shutdown, false)]
    [InlineData(SocketError.TimedOut, false)]
    public void OnlyAConnectionNeverMade_CountsAsNothingSent(SocketError error, bool nothingSent)
    {
        // A connection reset or aborted once made may have carried the call: a model turn on it may be billed.
        var failure = new RpcException(new Status(StatusCode.Unavailable, "Error connecting to subchannel.",
            new HttpRequestException(HttpRequestError.ConnectionError, "connection failed", new SocketException((int)error))));

        Assert.Equal(nothingSent, UnavailableRetry.NothingWasSent(failure));
        Assert.False(UnavailableRetry.NothingWasSent(new RpcException(new Status(StatusCode.Unavailable, "no cause"))));
    }

    [Fact]
    public async Task AModelTurn_RefusedByAGatewayNotYetListening_IsSentAgain_AndAnsweredOnce()
    {
        // A gateway replica restarting: the first connection is refused (nothing was sent), then it listens and answers.
        var port = LocalPorts.Free();
        var clock = new SignallingClock();
        await using var caller = await NamraTestHost.StartAsync("config", new Dictionary<string, string?>
        {
            ["Namra:Services:LlmGateway"] = $"http://127.0.0.1:{port}",
        }, configure: builder => builder.Services.AddSingleton<TimeProvider>(clock));
        var client = new LlmGatewayService.LlmGatewayServiceClient(caller.Services.GetRequiredService<NamraServiceChannels>().For("llm-gateway"));
        var flaky = new Flaky();

        using var call = client.StreamGenerate(new StreamGenerateRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
        var first = call.ResponseStream.MoveNext();
        await clock.Waiting.WaitAsync(TimeSpan.FromSeconds(10)); // refused, and waiting to try again
        await using var gateway = await NamraTestHost.StartAsync("config", new Dictionary<string, string?>
        {
            ["Namra:Host:GrpcPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }, configure: builder => builder.Services.AddSingleton(flaky), build: builder =>
        {
            var app = NamraComposition.Build(builder);
            app.MapGrpcService<FlakyGateway>();
            return app;
        });
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // the channel's own reconnect wait, at most a second, in real time
        for (var i = 0; i < 300 && !first.IsCompleted; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(1)); // past each backoff, on the retries' clock
            await Task.WhenAny(first, Task.Delay(100));
        }

        Assert.True(await first.WaitAsync(TimeSpan.FromSeconds(1)));
        Assert.Equal("Hel", call.ResponseStream.Current.TextDelta.Text);
        Assert.Equal(1, flaky.Calls);
    }

    [Fact]
    public async Task AStreamSafeToRepeat_AnsweredUnavailableBeforeItsFirstMessage_IsSentAgain()
    {
        var flaky = new Flaky { Failures = 2 };
        await using var hosts = await WatchHosts.StartAsync(flaky);

        using var call = hosts.Config.WatchAgents(new WatchAgentsRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
        var names = new List<string>();
        await foreach (var change in call.ResponseStream.ReadAllAsync())
        {
            names.Add(change.Agent.Ref.Name);
        }

        Assert.Equal(["first", "second"], names);
        Assert.Equal(3, flaky.Calls);
    }

    [Fact]
    public async Task AStreamSafeToRepeat_FailingAfterItsFirstMessage_IsNotSentAgain()
    {
        // What was read is never read twice: the caller sees the failure.
        var flaky = new Flaky { Failures = 0, FailMidStream = true };
        await using var hosts = await WatchHosts.StartAsync(flaky);

        using var call = hosts.Config.WatchAgents(new WatchAgentsRequest(), deadline: DateTime.UtcNow.AddSeconds(30));
        Assert.True(await call.ResponseStream.MoveNext());
        var error = await Assert.ThrowsAsync<DownstreamException>(() => call.ResponseStream.MoveNext());

        Assert.Equal(("config", StatusCode.Unavailable), (error.Service, error.StatusCode));
        Assert.Equal(1, flaky.Calls);
    }

    // The clock of the retries' backoff, started at the real time so deadlines hold: says when a backoff waits on it.
    private sealed class SignallingClock() : Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow)
    {
        private readonly SemaphoreSlim _waiting = new(0);

        public Task Waiting => _waiting.WaitAsync();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = base.CreateTimer(callback, state, dueTime, period);
            if (period == Timeout.InfiniteTimeSpan && dueTime <= TimeSpan.FromSeconds(1))
            {
                _waiting.Release(); // a backoff: at most a second, once
            }

            return timer;
        }
    }

    // A memory service and a gateway that fail their first calls, as a replica restarting would.
    private sealed class Flaky
    {
        private int _calls;

        public int Failures { get; init; }

        public StatusCode Status { get; init; } = StatusCode.Unavailable;

        public Action<int>? OnCall { get; set; }

        public bool FailMidStream { get; init; }

        public int Calls => Volatile.Read(ref _calls);

        public void Answer()
        {
            var calls = Interlocked.Increment(ref _calls);
            OnCall?.Invoke(calls);
            if (calls <= Failures)
            {
                throw new RpcException(new Status(Status, "restarting"));
            }
        }
    }

    private sealed class FlakyMemory(Flaky flaky) : MemoryService.MemoryServiceBase
    {
        public override Task<GetRunRecordResponse> GetRunRecord(GetRunRecordRequest request, ServerCallContext context)
        {
            flaky.Answer();
            return Task.FromResult(new GetRunRecordResponse { Run = new Run { RunId = request.RunId } });
        }
    }

    private sealed class FlakyToolExecutor(Flaky flaky) : ToolExecutorService.ToolExecutorServiceBase
    {
        public override Task<ExecuteToolResponse> ExecuteTool(ExecuteToolRequest request, ServerCallContext context)
        {
            flaky.Answer();
            return Task.FromResult(new ExecuteToolResponse());
        }
    }

    private sealed class FlakyGateway(Flaky flaky) : LlmGatewayService.LlmGatewayServiceBase
    {
        public override Task<EmbedResponse> Embed(EmbedRequest request, ServerCallContext context)
        {
            flaky.Answer();
            return Task.FromResult(new EmbedResponse());
        }

        public override async Task StreamGenerate(StreamGenerateRequest request, IServerStreamWriter<StreamGenerateResponse> responseStream, ServerCallContext context)
        {
            flaky.Answer();
            await responseStream.WriteAsync(new StreamGenerateResponse { TextDelta = new TextDelta { Text = "Hel" } });
            await responseStream.WriteAsync(new StreamGenerateResponse { TextDelta = new TextDelta { Text = "lo" } });
        }
    }

    private sealed class FlakyConfig(Flaky flaky) : ConfigService.ConfigServiceBase
    {
        public override async Task WatchAgents(WatchAgentsRequest request, IServerStreamWriter<WatchAgentsResponse> responseStream, ServerCallContext context)
        {
            flaky.Answer();
            await responseStream.WriteAsync(new WatchAgentsResponse { Agent = new AgentSummary { Ref = new AgentRef { Name = "first" } } });
            if (flaky.FailMidStream)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "restarting"));
            }

            await responseStream.WriteAsync(new WatchAgentsResponse { Agent = new AgentSummary { Ref = new AgentRef { Name = "second" } } });
        }
    }

    // A flaky config service in one process (hosting the memory role, whose service is not called here), called from another.
    private sealed class WatchHosts(NamraTestHost server, NamraTestHost caller) : IAsyncDisposable
    {
        public ConfigService.ConfigServiceClient Config { get; } = new(caller.Services.GetRequiredService<NamraServiceChannels>().For("config"));

        public static async Task<WatchHosts> StartAsync(Flaky flaky)
        {
            var server = await NamraTestHost.StartAsync("memory", configure: builder => builder.Services.AddSingleton(flaky), build: builder =>
            {
                var app = NamraComposition.Build(builder);
                app.MapGrpcService<FlakyConfig>();
                return app;
            });
            var caller = await NamraTestHost.StartAsync("tool-executor", new Dictionary<string, string?>
            {
                ["Namra:Services:Config"] = server.Services.GetRequiredService<NamraEndpoints>().GrpcAddress.ToString(),
            });
            return new WatchHosts(server, caller);
        }

        public async ValueTask DisposeAsync()
        {
            await caller.DisposeAsync();
            await server.DisposeAsync();
        }
    }

    // The flaky services in one process; a second process calls them through its NamraServiceChannels.
    private sealed class Hosts(NamraTestHost server, NamraTestHost caller) : IAsyncDisposable
    {
        public MemoryService.MemoryServiceClient Memory { get; } = new(caller.Services.GetRequiredService<NamraServiceChannels>().For("memory"));

        public LlmGatewayService.LlmGatewayServiceClient LlmGateway { get; } = new(caller.Services.GetRequiredService<NamraServiceChannels>().For("llm-gateway"));

        public ToolExecutorService.ToolExecutorServiceClient ToolExecutor { get; } = new(caller.Services.GetRequiredService<NamraServiceChannels>().For("tool-executor"));

        public static async Task<Hosts> StartAsync(Flaky flaky)
        {
            var server = await NamraTestHost.StartAsync("config", configure: builder => builder.Services.AddSingleton(flaky), build: builder =>
            {
                var app = NamraComposition.Build(builder);
                app.MapGrpcService<FlakyMemory>();
                app.MapGrpcService<FlakyGateway>();
                app.MapGrpcService<FlakyToolExecutor>();
                return app;
            });
            var address = server.Services.GetRequiredService<NamraEndpoints>().GrpcAddress.ToString();
            var caller = await NamraTestHost.StartAsync("config", new Dictionary<string, string?>
            {
                ["Namra:Services:Memory"] = address,
                ["Namra:Services:LlmGateway"] = address,
                ["Namra:Services:ToolExecutor"] = address,
            });
            return new Hosts(server, caller);
        }

        public async ValueTask DisposeAsync()
        {
            await caller.DisposeAsync();
            await server.DisposeAsync();
        }
    }
}
