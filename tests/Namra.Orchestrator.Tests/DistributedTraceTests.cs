using Grpc.Net.Client;
using Namra.Contracts.V1;
using Namra.Testing.Telemetry;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// The five services as five <c>namra-server</c> processes, calling each other over gRPC on loopback, each exporting
/// its spans over OTLP to a local collector: one run is one trace, rooted at <c>invoke_agent</c>, with the model
/// call, the tool call and the memory and config calls beneath it.
/// </summary>
public sealed class DistributedTraceTests
{
    private const string Agent = """
        name: traced_agent
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - tool_calls:
                - name: calculator
                  arguments: { expression: "6 * 7" }
            - text: "42."
        tools:
          - name: calculator
            type: builtin.calculator
        """;

    [Fact]
    public async Task ARun_IsOneTraceAcrossFiveProcesses_AndAnyOrchestratorReadsIt()
    {
        await using var collector = await OtlpCollector.StartAsync();
        var telemetry = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Endpoint.ToString().TrimEnd('/'),
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        };
        using var config = ServerProcess.Start("config", telemetry);
        using var gateway = ServerProcess.Start("llm-gateway", telemetry);
        using var executor = ServerProcess.Start("tool-executor", telemetry);
        using var memory = ServerProcess.Start("memory", telemetry);
        var addresses = new Dictionary<string, string>(telemetry)
        {
            ["Namra__Services__Config"] = config.GrpcAddress,
            ["Namra__Services__LlmGateway"] = gateway.GrpcAddress,
            ["Namra__Services__ToolExecutor"] = executor.GrpcAddress,
            ["Namra__Services__Memory"] = memory.GrpcAddress,
        };
        using var orchestrator = ServerProcess.Start("orchestrator", addresses);
        using var secondOrchestrator = ServerProcess.Start("orchestrator", addresses);

        using var channel = GrpcChannel.ForAddress(orchestrator.GrpcAddress);
        var run = (await new AgentService.AgentServiceClient(channel).ExecuteAsync(
            new ExecuteRequest { Agent = new AgentSource { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } }, Input = "6 times 7?" },
            deadline: DateTime.UtcNow.AddSeconds(30))).Run;
        using var otherChannel = GrpcChannel.ForAddress(secondOrchestrator.GrpcAddress);
        var elsewhere = (await new AgentService.AgentServiceClient(otherChannel).GetRunAsync(new GetRunRequest { RunId = run.RunId })).Run;
        using var http = new HttpClient { BaseAddress = secondOrchestrator.HttpAddress };
        var rest = await http.GetStringAsync($"/v1/agents/{run.RunId}/status");

        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal(("42.", RunStatus.Completed), (elsewhere.Answer, elsewhere.Status));
        Assert.Contains("\"status\":\"RUN_STATUS_COMPLETED\"", rest, StringComparison.Ordinal);

        var expected = new[] { "namra-orchestrator", "namra-config", "namra-llm-gateway", "namra-tool-executor", "namra-memory" };
        List<CollectedSpan> trace = [];
        for (var i = 0; i < 100; i++)
        {
            trace = [.. collector.Spans.Where(s => s.TraceId == run.TraceId)];
            if (expected.All(service => trace.Any(s => s.Service == service)) && trace.Any(s => s.Name.StartsWith("invoke_agent", StringComparison.Ordinal))
                && trace.Count(s => s.Name.StartsWith("chat", StringComparison.Ordinal)) == 2 && trace.Any(s => s.Name.StartsWith("execute_tool", StringComparison.Ordinal)))
            {
                break;
            }

            await Task.Delay(100);
        }

        var names = string.Join(", ", trace.Select(s => $"{s.Service}:{s.Name}"));
        var root = trace.SingleOrDefault(s => s.Name == "invoke_agent traced_agent");
        Assert.True(root is not null, names);
        Assert.Equal("namra-orchestrator", root.Service);
        Assert.All(expected, service => Assert.Contains(trace, s => s.Service == service));
        var tool = Assert.Single(trace, s => s.Name == "execute_tool calculator");
        var chats = trace.Where(s => s.Name == "chat scripted").ToList();
        Assert.Equal(2, chats.Count);
        Assert.Contains(trace, s => s.Service == "namra-memory" && s.Name == "memory create_run");
        // A call between services is one client span (gRPC), not also an HTTP request span beneath it.
        Assert.Contains(trace, s => s.Service == "namra-orchestrator" && s.Name == "namra.v1.MemoryService/CreateRunRecord");
        Assert.DoesNotContain(trace, s => s.Service == "namra-orchestrator" && s.Name == "POST");
        var byId = trace.ToDictionary(s => s.SpanId);
        Assert.All(chats.Append(tool), span => Assert.True(IsUnder(span, root, byId), $"{span.Name} is not under the run's root span"));
        Assert.True(IsUnder(tool, trace.Single(s => s.Name == "iteration 1"), byId), "the tool call belongs to the first iteration");
    }

    private static bool IsUnder(CollectedSpan span, CollectedSpan root, Dictionary<string, CollectedSpan> byId)
    {
        for (var current = span; current.ParentSpanId.Length > 0;)
        {
            if (current.ParentSpanId == root.SpanId)
            {
                return true;
            }

            if (!byId.TryGetValue(current.ParentSpanId, out var parent))
            {
                return false;
            }

            current = parent;
        }

        return false;
    }
}
