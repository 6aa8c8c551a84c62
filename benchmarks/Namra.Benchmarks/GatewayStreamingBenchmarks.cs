using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Text;
using BenchmarkDotNet.Attributes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.LlmGateway.Options;
using Namra.LlmGateway.Providers;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Benchmarks;

/// <summary>
/// The gateway's overhead per streamed model call: a gRPC StreamGenerate through the gateway to the local
/// Anthropic server, against the same request sent straight to that server with HttpClient and its stream read
/// with the same SSE parser, in the same run. Both include the local server's own work.
/// </summary>
[MemoryDiagnoser]
public class GatewayStreamingBenchmarks
{
    private FakeProviderServer _provider = null!;
    private NamraTestHost _gateway = null!;
    private LlmGatewayService.LlmGatewayServiceClient _client = null!;
    private HttpClient _http = null!;
    private byte[] _body = [];
    private StreamGenerateRequest _request = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _provider = await FakeProviderServer.StartAsync();
        _provider.RecordRequests = false;
        _provider.DefaultReply = new SseReply([
            AnthropicWire.MessageStart(inputTokens: 120),
            AnthropicWire.Ping(),
            .. AnthropicWire.TextBlock(0, "I'll ", "compute ", "that ", "with ", "the ", "calculator."),
            .. AnthropicWire.ToolUseBlock(1, "toolu_01", "calculator", "{\"expr", "ession\": ", "\"(17 + 25) * 2\"}"),
            AnthropicWire.MessageDelta("tool_use", 40),
            AnthropicWire.MessageStop()]);
        var environment = new Dictionary<string, string> { ["ANTHROPIC_API_KEY"] = "sk-ant-bench", ["ANTHROPIC_BASE_URL"] = _provider.BaseUrl.ToString() };
        _gateway = await NamraTestHost.StartAsync("llm-gateway", configure: builder => builder.Services.AddSingleton(services =>
            new ProviderEndpoints(services.GetRequiredService<IOptions<LlmGatewayOptions>>(), name => environment.GetValueOrDefault(name))));
        _client = new LlmGatewayService.LlmGatewayServiceClient(_gateway.Channel);
        _http = new HttpClient { BaseAddress = _provider.BaseUrl };
        _request = new StreamGenerateRequest
        {
            Llm = new LlmConfig { Provider = LlmProvider.Anthropic, Model = AnthropicWire.Model, MaxTokens = 1024 },
            SystemPrompt = "Use the calculator for every computation.",
            Messages = { new Message { Role = Role.User, Content = { new ContentBlock { Text = "What is (17 + 25) * 2?" } } } },
            Tools = { new ToolDefinition { Name = "calculator", Description = "Evaluates arithmetic.", InputSchemaJson = "{\"type\":\"object\",\"properties\":{\"expression\":{\"type\":\"string\"}}}" } },
        };
        _body = Encoding.UTF8.GetBytes("""{"model":"claude-sonnet-4-5-20250929","max_tokens":1024,"system":"Use the calculator for every computation.","messages":[{"role":"user","content":[{"type":"text","text":"What is (17 + 25) * 2?"}]}],"tools":[{"name":"calculator","description":"Evaluates arithmetic.","input_schema":{"type":"object","properties":{"expression":{"type":"string"}}}}],"stream":true}""");
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        _http.Dispose();
        await _gateway.DisposeAsync();
        await _provider.DisposeAsync();
    }

    [Benchmark(Baseline = true, Description = "baseline: HttpClient straight to the provider")]
    public async Task<int> Direct()
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/messages") { Content = new ByteArrayContent(_body) };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        message.Headers.Add("x-api-key", "sk-ant-bench");
        message.Headers.Add("anthropic-version", "2023-06-01");
        using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead);
        using var stream = await response.Content.ReadAsStreamAsync();
        var events = 0;
        await foreach (var item in SseParser.Create(stream).EnumerateAsync())
        {
            events += item.Data.Length > 0 ? 1 : 0;
        }

        return events;
    }

    [Benchmark(Description = "Namra: StreamGenerate through the gateway")]
    public async Task<int> ThroughGateway()
    {
        using var call = _client.StreamGenerate(_request);
        var events = 0;
        await foreach (var _ in call.ResponseStream.ReadAllAsync())
        {
            events++;
        }

        return events;
    }
}
