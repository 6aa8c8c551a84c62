using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing;
using Namra.Testing.Containers;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// A tenant's spending quota, reserved before each model call like a run's budget: concurrent runs, on one server or on
/// two replicas sharing Redis, never take the tenant past it; a tenant at its quota is refused new runs with a
/// QuotaFailure; GET /v1/usage says where it stands, and a restarted server reads what was spent from the runs' ledgers.
/// </summary>
public sealed class TenantQuotaTests : IAsyncLifetime
{
    private const string Acme = "nk_acme_0401";
    private const string Tiny = "nk_tiny_0402";
    private const int Quota = 2_000;
    private const int TokensPerCall = 350; // what the provider counts for each call: within the call's worst case (about 430)

    private readonly string _file = Path.Combine(Path.GetTempPath(), $"namra-access-{Guid.NewGuid():N}.json");
    private FakeProviderServer _anthropic = null!;

    public async ValueTask InitializeAsync()
    {
        _anthropic = await FakeProviderServer.StartAsync();
        _anthropic.DefaultReply = AnthropicWire.TextTurn(TokensPerCall - 50, 50, "Done.");
        await File.WriteAllTextAsync(_file, $$"""
            {
              "tenants": { "acme": { "quota": { "tokens_per_day": {{Quota}}, "usd_per_month": 100 } }, "tiny": { "quota": { "tokens_per_month": 50 } } },
              "keys": [
                { "id": "acme", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Acme)}}", "tenant": "acme", "roles": ["runner"] },
                { "id": "tiny", "sha256": "{{Namra.Orchestrator.Access.AccessKeys.Hash(Tiny)}}", "tenant": "tiny", "roles": ["runner"] } ]
            }
            """);
    }

    public async ValueTask DisposeAsync()
    {
        await _anthropic.DisposeAsync();
        File.Delete(_file);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ConcurrentRuns_NeverTakeTheTenantPastItsQuota(bool twoReplicasSharingRedis)
    {
        await using var redis = twoReplicasSharingRedis ? await LocalContainers.StartRedisAsync() : null;
        await using var first = await StartAsync(redis?.ConnectionString);
        await using var second = redis is null ? null : await StartAsync(redis.ConnectionString);
        var clients = new[] { first, second ?? first }.Select(host => new AgentService.AgentServiceClient(host.Channel)).ToArray();

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 12).Select(async i =>
        {
            try
            {
                return (Run: (await clients[i % 2].ExecuteAsync(new ExecuteRequest { Agent = Agent, Input = $"Question {i}." }, Key)).Run, Refused: (RpcException?)null);
            }
            catch (RpcException exception)
            {
                return (Run: (Run?)null, Refused: exception);
            }
        }));
        var usage = await clients[1].GetUsageAsync(new GetUsageRequest(), Key);
        var requests = _anthropic.Requests.Count;
        var oneMore = await Record(() => clients[0].ExecuteAsync(new ExecuteRequest { Agent = Agent, Input = "One more." }, Key).ResponseAsync);
        // A tenant whose quota is below the agent's llm.max_tokens cannot make any call: refused before a run starts.
        var refusedAtStart = await Assert.ThrowsAsync<RpcException>(() => clients[0].ExecuteAsync(new ExecuteRequest { Agent = Agent, Input = "Hi." },
            new Metadata { { "authorization", $"Bearer {Tiny}" } }).ResponseAsync);

        var completed = outcomes.Where(o => o.Run?.Status == RunStatus.Completed).Select(o => o.Run!).ToList();
        var stopped = outcomes.Where(o => o.Run?.Status == RunStatus.BudgetExceeded).Select(o => o.Run!).ToList();
        var day = usage.Periods.Single(p => p.Period == "day");
        // Calls in flight are set aside at their worst case, and a call that would fit once they settle waits for them:
        // the quota is filled by whole calls, as many as fit (five of 350 within 2,000, with room for a worst case of ~430).
        Assert.Equal(5, requests);
        Assert.InRange(requests * TokensPerCall, TokensPerCall, Quota); // what the provider billed
        Assert.Equal(requests, completed.Count);
        Assert.Equal(completed.Sum(r => r.Usage.InputTokens + r.Usage.OutputTokens), day.Tokens);
        Assert.Equal((0L, Quota), (day.ReservedTokens, day.MaxTokens));
        Assert.True(stopped.Count + outcomes.Count(o => o.Refused is not null) > 0, "no run was held back by the quota");
        Assert.All(stopped, run => Assert.Contains("tenant 'acme'", run.Error.Message, StringComparison.Ordinal));
        Assert.All(outcomes.Where(o => o.Refused is not null).Select(o => o.Refused!), refused => Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode));
        Assert.True(oneMore.Refused is { StatusCode: StatusCode.ResourceExhausted } || oneMore.Run?.Status == RunStatus.BudgetExceeded, "a run past the quota went on");
        Assert.Equal(requests, _anthropic.Requests.Count);
        Assert.Equal(StatusCode.ResourceExhausted, refusedAtStart.StatusCode);
        Assert.Equal("tenants.tiny.quota.tokens_per_month", Assert.Single(RpcDetails.Of<Google.Rpc.QuotaFailure>(refusedAtStart)).Violations[0].Subject);
    }

    private static async Task<(Run? Run, RpcException? Refused)> Record(Func<Task<ExecuteResponse>> call)
    {
        try
        {
            return ((await call()).Run, null);
        }
        catch (RpcException exception)
        {
            return (null, exception);
        }
    }

    [Fact]
    public async Task Usage_IsReadBackFromTheLedgers_AfterARestart_AndOverRest()
    {
        var folder = Directory.CreateTempSubdirectory("namra-quota-").FullName;
        try
        {
            var store = new Dictionary<string, string?> { ["Namra:Memory:SqlitePath"] = Path.Combine(folder, "memory.db"), ["Namra:Memory:DefaultStore"] = "sqlite" };
            await using (var before = await StartAsync(null, store))
            {
                var client = new AgentService.AgentServiceClient(before.Channel);
                await client.ExecuteAsync(new ExecuteRequest { Agent = Agent, Input = "One." }, Key);
                await client.ExecuteAsync(new ExecuteRequest { Agent = Agent, Input = "Two." }, Key);
            }

            await using var after = await StartAsync(null, store);
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/usage") { Headers = { { "x-api-key", Acme } } };
            using var response = await after.Http.SendAsync(request);
            var usage = await response.Content.ReadFromJsonAsync<JsonObject>();
            var periods = usage!["periods"]!.AsArray();

            Assert.Equal("acme", (string?)usage["tenant"]);
            Assert.Equal(["day", "month"], periods.Select(p => (string?)p!["period"]));
            Assert.All(periods, p => Assert.Equal(2 * TokensPerCall, long.Parse(p!["tokens"]!.ToString(), System.Globalization.CultureInfo.InvariantCulture)));
            Assert.True((double)periods[1]!["costUsd"]! > 0);
            Assert.Equal(100.0, (double)periods[1]!["maxCostUsd"]!);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task EmbeddingsOfSemanticMemory_CountInTheTenantsQuota_AsTheProviderCountedThem()
    {
        await using var openai = await FakeProviderServer.StartAsync();
        openai.DefaultReply = new JsonReply(OpenAiWire.Embeddings(60, [1f, 0f]));
        await using var server = await KeyedServers.StartAsync(_file, _anthropic, openai: openai);
        var client = new AgentService.AgentServiceClient(server.Channel);
        var agent = InlineAgents.Yaml($"name: recalling\nversion: 1.0.0\nllm: {{ provider: anthropic, model: {AnthropicWire.Model}, max_tokens: 64 }}\n" +
            "memory: { semantic: { enabled: true, provider: openai, embedding_model: text-embedding-3-small } }\n");

        var run = (await client.ExecuteAsync(new ExecuteRequest { Agent = agent, Input = "What do you know about me?" }, Key)).Run;
        var usage = await client.GetUsageAsync(new GetUsageRequest(), Key);

        var (day, month) = (usage.Periods.Single(p => p.Period == "day"), usage.Periods.Single(p => p.Period == "month"));
        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Single(openai.Requests);
        Assert.Equal((TokensPerCall + 60L, 0L), (day.Tokens, day.ReservedTokens)); // the recall's embedding and the model turn, settled
        Assert.Equal(run.Usage.InputTokens + run.Usage.OutputTokens, day.Tokens);
        Assert.Equal(run.Cost.TotalUsd, month.CostUsd, 9);
    }

    private static Metadata Key => KeyedServers.Bearer(Acme);

    private static AgentSource Agent => KeyedServers.Agent("quota_agent");

    private Task<NamraTestHost> StartAsync(string? redis, IDictionary<string, string?>? more = null) => KeyedServers.StartAsync(_file, _anthropic, redis, more);
}
