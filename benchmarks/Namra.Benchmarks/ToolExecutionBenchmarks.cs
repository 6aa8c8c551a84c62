using BenchmarkDotNet.Attributes;
using Grpc.Health.V1;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.ToolExecutor.Tools;

namespace Namra.Benchmarks;

/// <summary>
/// The tool executor's overhead per call: one calculator call through <c>ExecuteTool</c> over gRPC on a loopback
/// socket (schema check, timeout, span, metrics included), against evaluating the same expression in-process
/// with the same evaluator, and against the cheapest gRPC call on the same channel (a health check), in the same run.
/// </summary>
[MemoryDiagnoser]
public class ToolExecutionBenchmarks
{
    private readonly string _expression = "(17 + 25) * 2 / sqrt(16) + pow(2, 10)";
    private NamraTestHost _executor = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;
    private Health.HealthClient _health = null!;
    private ExecuteToolRequest _request = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _executor = await NamraTestHost.StartAsync("tool-executor");
        _client = new ToolExecutorService.ToolExecutorServiceClient(_executor.Channel);
        _health = new Health.HealthClient(_executor.Channel);
        _request = new ExecuteToolRequest
        {
            Tool = new ToolConfig { Name = "calculator", Type = ToolType.BuiltinCalculator },
            Call = new ToolCall { Id = "call_1", Name = "calculator", ArgumentsJson = $"{{\"expression\":\"{_expression}\"}}" },
        };
    }

    [GlobalCleanup]
    public async Task Cleanup() => await _executor.DisposeAsync();

    [Benchmark(Baseline = true, Description = "baseline: the evaluator in-process")]
    public string InProcess() => CalculatorTool.Evaluate(_expression).Content;

    [Benchmark(Description = "transport floor: gRPC health check on the same channel")]
    public async Task<HealthCheckResponse.Types.ServingStatus> HealthCheck() => (await _health.CheckAsync(new HealthCheckRequest())).Status;

    [Benchmark(Description = "ExecuteTool over gRPC (loopback)")]
    public async Task<string> OverGrpc() => (await _client.ExecuteToolAsync(_request)).Result.Content;
}
