using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;
using Namra.Hosting.Clients;

namespace Namra.IntegrationTests;

/// <summary>Calls between services hosted in one process (embedded mode, the CLI), without the network.</summary>
public sealed class InProcessCallTests
{
    [Fact]
    public async Task AFinishedCall_HoldsNoLinkToTheCallersToken()
    {
        // A server that keeps every call's cancellation token, as a handler's lingering work would.
        var server = new CallRecorder();
        using var services = new ServiceCollection().AddLogging().AddSingleton(server).BuildServiceProvider();
        var invoker = new InProcessCallInvoker(services, InProcessService.Of<TokenKeepingHealth, Health.HealthBase>("health", Health.BindService));
        var client = new Health.HealthClient(invoker);
        using var caller = new CancellationTokenSource();

        for (var i = 0; i < 3; i++)
        {
            var response = await client.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddHours(1), cancellationToken: caller.Token);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, response.Status);
        }

        await caller.CancelAsync();

        // Each call linked its token to the caller's and set a timer for its deadline; both must go when it ends,
        // or a server making thousands of calls a second keeps every one of them until its deadline.
        Assert.Equal(3, server.Tokens.Count);
        Assert.All(server.Tokens, token => Assert.False(token.IsCancellationRequested));
    }

    [Fact]
    public async Task ACallInProgress_IsCancelledWithTheCallersToken()
    {
        var server = new CallRecorder { Wait = true };
        using var services = new ServiceCollection().AddLogging().AddSingleton(server).BuildServiceProvider();
        var invoker = new InProcessCallInvoker(services, InProcessService.Of<TokenKeepingHealth, Health.HealthBase>("health", Health.BindService));
        using var caller = new CancellationTokenSource();

        var call = new Health.HealthClient(invoker).CheckAsync(new HealthCheckRequest(), cancellationToken: caller.Token);
        await server.Started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await caller.CancelAsync();
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);

        Assert.Equal(StatusCode.Cancelled, error.StatusCode);
    }

    private sealed class CallRecorder
    {
        public List<CancellationToken> Tokens { get; } = [];

        public bool Wait { get; init; }

        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    // The in-process invoker creates its service from the container, as the hosts do.
    private sealed class TokenKeepingHealth(CallRecorder recorder) : Health.HealthBase
    {
        public override async Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context)
        {
            lock (recorder.Tokens)
            {
                recorder.Tokens.Add(context.CancellationToken);
            }

            recorder.Started.TrySetResult();
            if (recorder.Wait)
            {
                await Task.Delay(Timeout.Infinite, context.CancellationToken);
            }

            return new HealthCheckResponse { Status = HealthCheckResponse.Types.ServingStatus.Serving };
        }
    }
}
