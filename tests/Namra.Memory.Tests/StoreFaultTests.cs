using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Health.V1;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Containers;

namespace Namra.Memory.Tests;

/// <summary>
/// The backend crashes (SIGKILL) in the middle of a load of appends and comes back: while it is down calls fail
/// with <c>UNAVAILABLE</c> (never hang) and the service still answers health checks; afterwards every append
/// that was acknowledged is there, once.
/// </summary>
public sealed class StoreFaultTests
{
    [Fact]
    public Task Redis_CrashesAndReturns_NothingAcknowledgedIsLost() =>
        CrashDuringLoadAsync(LocalContainers.StartRedisAsync, server => new Dictionary<string, string?>
        {
            ["Namra:Memory:RedisConnectionString"] = server.ConnectionString,
            ["Namra:Memory:DefaultStore"] = "redis",
            ["Namra:Memory:StoreTimeout"] = "00:00:02",
        });

    [Fact]
    public Task Postgres_CrashesAndReturns_NothingAcknowledgedIsLost() =>
        CrashDuringLoadAsync(LocalContainers.StartPostgresAsync, server => new Dictionary<string, string?>
        {
            ["Namra:Memory:PostgresConnectionString"] = server.ConnectionString,
            ["Namra:Memory:DefaultStore"] = "postgres",
            ["Namra:Memory:StoreTimeout"] = "00:00:02",
        });

    private static async Task CrashDuringLoadAsync(Func<CancellationToken, Task<LocalServer>> start, Func<LocalServer, IDictionary<string, string?>> settings)
    {
        await using var server = await start(CancellationToken.None);
        await using var host = await NamraTestHost.StartAsync("memory", settings(server));
        var client = new MemoryService.MemoryServiceClient(host.Channel);
        var health = new Health.HealthClient(host.Channel);
        var acknowledged = new ConcurrentBag<string>();
        var failures = new ConcurrentBag<StatusCode>();
        using var stop = new CancellationTokenSource();

        var load = Enumerable.Range(0, 8).Select(caller => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var id = $"c{caller}-{i}";
                try
                {
                    await client.AppendMessagesAsync(new AppendMessagesRequest
                    {
                        SessionId = "crash",
                        Messages = { new Message { Id = id, Role = Role.User, Content = { new ContentBlock { Text = id } } } },
                    }, deadline: DateTime.UtcNow.AddSeconds(10));
                    acknowledged.Add(id);
                }
                catch (RpcException exception)
                {
                    failures.Add(exception.StatusCode);
                    await Task.Delay(20);
                }
            }
        })).ToList();

        await WaitUntil(() => acknowledged.Count >= 200, "appends before the crash");
        await server.KillAsync();
        await WaitUntil(() => failures.Count >= 10, "failures while the store is down");
        var whileDown = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
        var before = acknowledged.Count;
        await server.StartAsync();
        await WaitUntil(() => acknowledged.Count >= before + 200, "appends after the store returned");
        await stop.CancelAsync();
        await Task.WhenAll(load);

        var history = await client.GetHistoryAsync(new GetHistoryRequest { SessionId = "crash" });
        var stored = history.Messages.Select(m => m.Id).ToList();

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, whileDown.Status);
        // Refused while down; a command caught in flight by the crash timed out.
        Assert.All(failures, code => Assert.Contains(code, new[] { StatusCode.Unavailable, StatusCode.DeadlineExceeded }));
        Assert.Empty(acknowledged.Except(stored));
        Assert.Equal(stored.Count, stored.Distinct().Count());
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        for (var i = 0; i < 600 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition(), $"timed out waiting for {what}");
    }
}
