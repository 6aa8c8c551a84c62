using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
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
    public async Task ARun_IsOneTraceAcrossFiveProcesses()
    {
        await using var collector = await OtlpCollector.StartAsync();
        var roles = new[] { "config", "llm-gateway", "tool-executor", "memory", "orchestrator" };
        var ports = roles.ToDictionary(role => role, _ => (Grpc: FreePort(), Http: FreePort()));
        var processes = new List<Process>();
        try
        {
            foreach (var role in roles)
            {
                processes.Add(Start(role, ports, collector.Endpoint));
            }

            using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{ports["orchestrator"].Grpc}");
            var client = new AgentService.AgentServiceClient(channel);
            Run? run = null;
            for (var attempt = 0; attempt < 100 && run is null; attempt++)
            {
                try
                {
                    run = (await client.ExecuteAsync(new ExecuteRequest { Agent = new AgentSource { Inline = new InlineAgent { Content = Agent, Format = AgentFormat.Yaml } }, Input = "6 times 7?" },
                        deadline: DateTime.UtcNow.AddSeconds(20))).Run;
                }
                catch (Grpc.Core.RpcException exception) when (exception.StatusCode == Grpc.Core.StatusCode.Unavailable)
                {
                    await Task.Delay(200); // the processes are still starting
                }
            }

            Assert.NotNull(run);
            Assert.Equal(RunStatus.Completed, run.Status);
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
            Assert.Equal("namra-orchestrator", root!.Service);
            Assert.All(expected, service => Assert.Contains(trace, s => s.Service == service));
            var tool = Assert.Single(trace, s => s.Name == "execute_tool calculator");
            var chats = trace.Where(s => s.Name == "chat scripted").ToList();
            Assert.Equal(2, chats.Count);
            Assert.Contains(trace, s => s.Service == "namra-memory" && s.Name == "memory create_run");
            var byId = trace.ToDictionary(s => s.SpanId);
            Assert.All(chats.Append(tool), span => Assert.True(IsUnder(span, root!, byId), $"{span.Name} is not under the run's root span"));
            Assert.True(IsUnder(tool, trace.Single(s => s.Name == "iteration 1"), byId), "the tool call belongs to the first iteration");
        }
        finally
        {
            foreach (var process in processes)
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                await process.WaitForExitAsync();
                process.Dispose();
            }
        }
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

    private static Process Start(string role, Dictionary<string, (int Grpc, int Http)> ports, Uri collector)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "namra-server.dll"));
        start.ArgumentList.Add("--services");
        start.ArgumentList.Add(role);
        start.Environment["Namra__Host__ListenAddress"] = "127.0.0.1";
        start.Environment["Namra__Host__GrpcPort"] = ports[role].Grpc.ToString(CultureInfo.InvariantCulture);
        start.Environment["Namra__Host__HttpPort"] = ports[role].Http.ToString(CultureInfo.InvariantCulture);
        start.Environment["Namra__Services__Config"] = $"http://127.0.0.1:{ports["config"].Grpc}";
        start.Environment["Namra__Services__LlmGateway"] = $"http://127.0.0.1:{ports["llm-gateway"].Grpc}";
        start.Environment["Namra__Services__ToolExecutor"] = $"http://127.0.0.1:{ports["tool-executor"].Grpc}";
        start.Environment["Namra__Services__Memory"] = $"http://127.0.0.1:{ports["memory"].Grpc}";
        start.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.ToString().TrimEnd('/');
        start.Environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        start.Environment["OTEL_BSP_SCHEDULE_DELAY"] = "100";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
