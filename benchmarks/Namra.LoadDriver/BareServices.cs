using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Namra.Contracts.V1;

namespace Namra.LoadDriver;

/// <summary>
/// The distributed baseline: the same run split over the same four processes Namra's distributed mode uses per run
/// (orchestrator, LLM gateway, tool executor, memory), speaking Namra's own protos over gRPC on loopback, with no
/// framework: a bare ASP.NET Core gRPC server in each, channels with the settings Namra's use, and in the handlers
/// only what the run needs (the provider's request written and its stream read, the calculator, a dictionary of run
/// records). No deadlines, retries, interceptors, validation, tracing, metrics or logging. It is what any design
/// with these hops costs on this machine, so Namra's distributed mode is read against it as well as against the
/// bare loop.
/// </summary>
internal static class BareServices
{
    public const string Orchestrator = "orchestrator";
    public const string Gateway = "llm-gateway";
    public const string Tools = "tool-executor";
    public const string Memory = "memory";

    private static readonly ToolDefinition Calculator = new()
    {
        Name = "calculator",
        Description = "Evaluates an arithmetic expression exactly and returns the number.",
        InputSchemaJson = """{"type":"object","properties":{"expression":{"type":"string","maxLength":1000}},"required":["expression"],"additionalProperties":false}""",
        Source = "calculator",
    };

    /// <summary>Serves <paramref name="role"/> on 127.0.0.1:<paramref name="port"/> until stopped.</summary>
    public static async Task<int> RunAsync(string role, int port, Uri provider, IReadOnlyDictionary<string, Uri> peers)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddGrpcHealthChecks(health => health.UseHealthChecksCache = false).AddCheck("started", () => HealthCheckResult.Healthy());
        switch (role) // one instance of the role's service serves every call, as Namra's do
        {
            case Orchestrator:
                builder.Services.AddSingleton(_ => new BareOrchestrator(Channel(peers[Gateway]), Channel(peers[Tools]), Channel(peers[Memory])));
                break;
            case Gateway:
                builder.Services.AddSingleton(_ => new BareGateway(new HttpClient(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5), MaxConnectionsPerServer = 1024 }) { BaseAddress = provider }));
                break;
            case Tools:
                builder.Services.AddSingleton<BareToolExecutor>();
                break;
            case Memory:
                builder.Services.AddSingleton<BareMemory>();
                break;
            default:
                throw new ArgumentException($"Unknown role {role}; use {Orchestrator}, {Gateway}, {Tools} or {Memory}.");
        }

        var app = builder.Build();
        app.MapGrpcHealthChecksService();
        _ = role switch
        {
            Orchestrator => app.MapGrpcService<BareOrchestrator>(),
            Gateway => app.MapGrpcService<BareGateway>(),
            Tools => app.MapGrpcService<BareToolExecutor>(),
            _ => app.MapGrpcService<BareMemory>(),
        };
        await app.RunAsync();
        return 0;
    }

    // What Namra's channels between services are given (NamraServiceChannels), so the transport is the same.
    private static GrpcChannel Channel(Uri address) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
        },
    });

    /// <summary>The loop: a run record, model turns until one calls no tool, each call run, the record saved.</summary>
    private sealed class BareOrchestrator(GrpcChannel gateway, GrpcChannel tools, GrpcChannel memory) : AgentService.AgentServiceBase, IDisposable
    {
        private static readonly LlmConfig Llm = new() { Provider = LlmProvider.Anthropic, Model = "claude-sonnet-4-5-20250929", MaxTokens = 1024 };
        private static readonly ToolConfig CalculatorConfig = new() { Name = "calculator", Type = ToolType.BuiltinCalculator };
        private readonly LlmGatewayService.LlmGatewayServiceClient _gateway = new(gateway);
        private readonly ToolExecutorService.ToolExecutorServiceClient _tools = new(tools);
        private readonly MemoryService.MemoryServiceClient _memory = new(memory);

        public override async Task<ExecuteResponse> Execute(ExecuteRequest request, ServerCallContext context)
        {
            var token = context.CancellationToken;
            var run = new Run
            {
                RunId = Guid.NewGuid().ToString("N"),
                Agent = new AgentRef { Name = "load_agent", Version = "1.0.0" },
                Status = RunStatus.Running,
                Input = request.Input,
                CreateTime = Timestamp.FromDateTime(DateTime.UtcNow),
            };
            await _memory.CreateRunRecordAsync(new CreateRunRecordRequest { Run = run }, cancellationToken: token);
            var messages = new List<Message> { new() { Role = Role.User, Content = { new ContentBlock { Text = request.Input } } } };
            for (var iteration = 1; iteration <= 10; iteration++)
            {
                run.Iterations = iteration;
                var reply = (await _gateway.GenerateAsync(new GenerateRequest
                {
                    Llm = Llm,
                    SystemPrompt = "Use the calculator for every computation.",
                    Messages = { messages },
                    Tools = { Calculator },
                    ToolChoice = ToolChoice.Auto,
                }, cancellationToken: token)).Message;
                messages.Add(reply);
                var calls = reply.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolCall).Select(b => b.ToolCall).ToList();
                if (calls.Count == 0)
                {
                    run.Answer = string.Concat(reply.Content.Where(b => b.BlockCase == ContentBlock.BlockOneofCase.Text).Select(b => b.Text));
                    run.Status = RunStatus.Completed;
                    break;
                }

                var results = await Task.WhenAll(calls.Select(async call =>
                    (await _tools.ExecuteToolAsync(new ExecuteToolRequest { Tool = CalculatorConfig, Call = call }, cancellationToken: token)).Result));
                messages.Add(new Message { Role = Role.Tool, Content = { results.Select(r => new ContentBlock { ToolResult = r }) } });
            }

            run.EndTime = Timestamp.FromDateTime(DateTime.UtcNow);
            await _memory.UpdateRunRecordAsync(new UpdateRunRecordRequest { Run = run }, cancellationToken: token);
            return new ExecuteResponse { Run = run };
        }

        public void Dispose()
        {
            gateway.Dispose();
            tools.Dispose();
            memory.Dispose();
        }
    }

    /// <summary>A model turn: the conversation written as Anthropic's request, its stream read as the bare loop reads it.</summary>
    private sealed class BareGateway(HttpClient http) : LlmGatewayService.LlmGatewayServiceBase, IDisposable
    {
        public void Dispose() => http.Dispose();

        public override async Task<GenerateResponse> Generate(GenerateRequest request, ServerCallContext context)
        {
            var turn = await BareLoop.SendAsync(http, Body(request), context.CancellationToken);
            var message = new Message { Role = Role.Assistant };
            if (turn.Text.Length > 0)
            {
                message.Content.Add(new ContentBlock { Text = turn.Text.ToString() });
            }

            if (turn.ToolId.Length > 0)
            {
                message.Content.Add(new ContentBlock { ToolCall = new ToolCall { Id = turn.ToolId, Name = turn.ToolName, ArgumentsJson = turn.ToolArguments.ToString() } });
            }

            return new GenerateResponse { Message = message, StopReason = turn.ToolId.Length > 0 ? StopReason.ToolUse : StopReason.EndTurn, Model = request.Llm.Model };
        }

        private static string Body(GenerateRequest request)
        {
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                json.WriteString("model", request.Llm.Model);
                json.WriteNumber("max_tokens", request.Llm.MaxTokens);
                json.WriteString("system", request.SystemPrompt);
                json.WriteStartArray("messages");
                foreach (var message in request.Messages)
                {
                    json.WriteStartObject();
                    json.WriteString("role", message.Role == Role.Assistant ? "assistant" : "user");
                    json.WriteStartArray("content");
                    foreach (var block in message.Content)
                    {
                        json.WriteStartObject();
                        switch (block.BlockCase)
                        {
                            case ContentBlock.BlockOneofCase.Text:
                                json.WriteString("type", "text");
                                json.WriteString("text", block.Text);
                                break;
                            case ContentBlock.BlockOneofCase.ToolCall:
                                json.WriteString("type", "tool_use");
                                json.WriteString("id", block.ToolCall.Id);
                                json.WriteString("name", block.ToolCall.Name);
                                json.WritePropertyName("input");
                                json.WriteRawValue(block.ToolCall.ArgumentsJson);
                                break;
                            case ContentBlock.BlockOneofCase.ToolResult:
                                json.WriteString("type", "tool_result");
                                json.WriteString("tool_use_id", block.ToolResult.ToolCallId);
                                json.WriteString("content", block.ToolResult.Content);
                                break;
                        }

                        json.WriteEndObject();
                    }

                    json.WriteEndArray();
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteStartArray("tools");
                foreach (var tool in request.Tools)
                {
                    json.WriteStartObject();
                    json.WriteString("name", tool.Name);
                    json.WriteString("description", tool.Description);
                    json.WritePropertyName("input_schema");
                    json.WriteRawValue(tool.InputSchemaJson);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteBoolean("stream", true);
                json.WriteEndObject();
            }

            return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
    }

    /// <summary>The calculator: the expression read from the arguments and evaluated.</summary>
    private sealed class BareToolExecutor : ToolExecutorService.ToolExecutorServiceBase
    {
        public override Task<ExecuteToolResponse> ExecuteTool(ExecuteToolRequest request, ServerCallContext context)
        {
            using var arguments = JsonDocument.Parse(request.Call.ArgumentsJson);
            var expression = arguments.RootElement.GetProperty("expression").GetString()!;
            var value = Convert.ToString(new NCalc.Expression(expression).Evaluate(CancellationToken.None), CultureInfo.InvariantCulture)!;
            return Task.FromResult(new ExecuteToolResponse { Result = new ToolResult { ToolCallId = request.Call.Id, Content = value } });
        }
    }

    /// <summary>Run records in a dictionary, the newest 10,000 kept (as Namra's in-memory store keeps them).</summary>
    private sealed class BareMemory : MemoryService.MemoryServiceBase
    {
        private const int Kept = 10_000;
        private readonly ConcurrentDictionary<string, Run> _runs = new(StringComparer.Ordinal);
        private readonly ConcurrentQueue<string> _order = new();

        public override Task<CreateRunRecordResponse> CreateRunRecord(CreateRunRecordRequest request, ServerCallContext context)
        {
            if (!_runs.TryAdd(request.Run.RunId, request.Run))
            {
                throw new RpcException(new Status(StatusCode.AlreadyExists, $"Run {request.Run.RunId} exists."));
            }

            _order.Enqueue(request.Run.RunId);
            while (_order.Count > Kept && _order.TryDequeue(out var oldest))
            {
                _runs.TryRemove(oldest, out _);
            }

            return Task.FromResult(new CreateRunRecordResponse { Run = request.Run });
        }

        public override Task<UpdateRunRecordResponse> UpdateRunRecord(UpdateRunRecordRequest request, ServerCallContext context)
        {
            if (!_runs.ContainsKey(request.Run.RunId))
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"Run {request.Run.RunId} does not exist."));
            }

            _runs[request.Run.RunId] = request.Run;
            return Task.FromResult(new UpdateRunRecordResponse { Run = request.Run });
        }
    }
}
