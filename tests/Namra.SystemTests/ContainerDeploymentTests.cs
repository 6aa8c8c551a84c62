using Namra.Testing.Telemetry;
using System.Globalization;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;
using Grpc.Net.Client;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Containers;
using Namra.Testing.Providers;
using Npgsql;

namespace Namra.SystemTests;

/// <summary>
/// The deployment as containers: the server image (<c>NAMRA_IMAGE</c>, built by <c>.ci/run</c> from
/// deploy/docker/Dockerfile) runs each of the five services in its own container, with Redis and PostgreSQL,
/// all on the host's network bound to 127.0.0.1. An agent runs end to end through the orchestrator against the
/// local Anthropic server; its record is read back from PostgreSQL, its conversation from Redis, and its
/// metrics from the orchestrator's scrape.
/// </summary>
public sealed class ContainerDeploymentTests
{
    private static readonly string[] Roles = ["config", "llm-gateway", "tool-executor", "memory", "orchestrator"];

    [Fact]
    public async Task AnAgentRunsEndToEnd_AcrossFiveServiceContainers()
    {
        var image = Environment.GetEnvironmentVariable("NAMRA_IMAGE") is { Length: > 0 } named ? named : "namra/server:ci";
        await using var postgres = await LocalContainers.StartPostgresAsync();
        await using var redis = await LocalContainers.StartRedisAsync();
        await using var anthropic = await FakeProviderServer.StartAsync();
        anthropic.Enqueue(
            new SseReply([AnthropicWire.MessageStart(), .. AnthropicWire.ToolUseBlock(0, "toolu_1", "calculator", "{\"expression\":\"(17 + 25) * 2\"}"), AnthropicWire.MessageDelta("tool_use", 30), AnthropicWire.MessageStop()]),
            AnthropicWire.TextTurn(60, 8, "It is 84."));

        var ports = Roles.ToDictionary(role => role, _ => (Grpc: LocalPorts.Free(), Http: LocalPorts.Free()));
        string Address(string role) => $"http://127.0.0.1:{ports[role].Grpc}";
        var containers = new List<IContainer>();
        try
        {
            foreach (var role in Roles)
            {
                var environment = new Dictionary<string, string>
                {
                    ["NAMRA_SERVICES"] = role,
                    ["Namra__Host__ListenAddress"] = "127.0.0.1",
                    ["Namra__Host__GrpcPort"] = ports[role].Grpc.ToString(CultureInfo.InvariantCulture),
                    ["Namra__Host__HttpPort"] = ports[role].Http.ToString(CultureInfo.InvariantCulture),
                    ["Namra__Services__Config"] = Address("config"),
                    ["Namra__Services__LlmGateway"] = Address("llm-gateway"),
                    ["Namra__Services__ToolExecutor"] = Address("tool-executor"),
                    ["Namra__Services__Memory"] = Address("memory"),
                    ["Namra__Memory__PostgresConnectionString"] = postgres.ConnectionString,
                    ["Namra__Memory__RedisConnectionString"] = redis.ConnectionString,
                    ["Namra__Memory__DefaultStore"] = "postgres",
                    ["ANTHROPIC_API_KEY"] = "sk-ant-system-test",
                    ["ANTHROPIC_BASE_URL"] = anthropic.BaseUrl.ToString(),
                };
                var container = new ContainerBuilder(image)
                    .WithCreateParameterModifier(parameters => parameters.HostConfig!.NetworkMode = "host")
                    .WithEnvironment(environment)
                    .WithWaitStrategy(Wait.ForUnixContainer().UntilCommandIsCompleted("dotnet", "/app/namra-server.dll", "health"))
                    .WithCleanUp(true)
                    .Build();
                containers.Add(container);
            }

            await Task.WhenAll(containers.Select(c => c.StartAsync()));

            using var channel = GrpcChannel.ForAddress(Address("orchestrator"));
            var run = (await new AgentService.AgentServiceClient(channel).ExecuteAsync(new ExecuteRequest
            {
                Agent = new AgentSource { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } },
                Input = "What is (17 + 25) * 2?",
                SessionId = "system-test",
            }, deadline: DateTime.UtcNow.AddSeconds(60))).Run;

            Assert.Equal(RunStatus.Completed, run.Status);
            Assert.Equal("It is 84.", run.Answer);
            Assert.Contains("\"content\":\"84\"", anthropic.Requests[1].Body, StringComparison.Ordinal);

            await using (var connection = new NpgsqlConnection(postgres.ConnectionString))
            {
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand("SELECT status, agent_name FROM namra_runs WHERE run_id = $1", connection) { Parameters = { new() { Value = run.RunId } } };
                await using var reader = await command.ExecuteReaderAsync();
                Assert.True(await reader.ReadAsync(), "the run record is in PostgreSQL");
                Assert.Equal(((int)RunStatus.Completed, "system_test_agent"), (reader.GetInt32(0), reader.GetString(1)));
            }

            var messages = await redis.ExecAsync("redis-cli", "-h", "127.0.0.1", "-p", redis.Port.ToString(CultureInfo.InvariantCulture), "LLEN", "namra:s:{system-test}:msgs");
            Assert.Equal("4", messages.Trim()); // the input, the tool call, its result, the answer

            using var http = new HttpClient();
            var scrape = new PrometheusScrape(await http.GetStringAsync($"http://127.0.0.1:{ports["orchestrator"].Http}/metrics"));
            Assert.Equal(1, scrape.Value("namra_runs_total", ("agent", "system_test_agent"), ("status", "completed")));
        }
        finally
        {
            foreach (var container in containers)
            {
                await container.DisposeAsync();
            }
        }
    }

    private const string Agent = """
        name: system_test_agent
        version: 1.0.0
        llm:
          provider: anthropic
          model: claude-sonnet-4-5-20250929
          max_tokens: 512
        tools:
          - name: calculator
            type: builtin.calculator
        memory:
          type: redis
        """;
}
