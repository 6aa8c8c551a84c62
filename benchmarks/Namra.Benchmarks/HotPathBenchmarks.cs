using System.Buffers;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Namra.Contracts.V1;
using Namra.LlmGateway.Providers;
using Namra.LlmGateway.Providers.Anthropic;
using Namra.LlmGateway.Providers.OpenAI;

namespace Namra.Benchmarks;

/// <summary>
/// Per-call hot paths of a run: a ten-message conversation with a tool call and its result, written in each
/// provider's wire format; and a tool call's arguments checked against its JSON Schema. The baseline is
/// serializing the same conversation as protobuf, the work any transport does anyway.
/// </summary>
[MemoryDiagnoser]
public class HotPathBenchmarks
{
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private readonly Namra.Hosting.ArgumentValidator _validator = new();
    private ChatRequest _request = null!;
    private StreamGenerateRequest _proto = null!;

    /// <summary>The conversation, for other benchmarks of the same call.</summary>
    internal ChatRequest Request => _request;
    private JsonDocument _arguments = null!;
    private const string Schema = """{"type":"object","properties":{"expression":{"type":"string","minLength":1,"maxLength":1000}},"required":["expression"],"additionalProperties":false}""";

    [GlobalSetup]
    public void Setup()
    {
        var messages = new List<Message>();
        for (var i = 0; i < 4; i++)
        {
            messages.Add(new Message { Role = Role.User, Content = { new ContentBlock { Text = $"Question {i}: what is (17 + 25) * {i}? Please show the computation." } } });
            messages.Add(new Message { Role = Role.Assistant, Content = { new ContentBlock { Text = "I'll compute that." }, new ContentBlock { ToolCall = new ToolCall { Id = $"toolu_{i}", Name = "calculator", ArgumentsJson = $"{{\"expression\":\"(17 + 25) * {i}\"}}" } } } });
        }

        messages.Add(new Message { Role = Role.Tool, Content = { new ContentBlock { ToolResult = new ToolResult { ToolCallId = "toolu_3", Content = "126" } } } });
        messages.Add(new Message { Role = Role.Assistant, Content = { new ContentBlock { Text = "(17 + 25) * 3 = 126." } } });
        var tools = new[] { new ToolDefinition { Name = "calculator", Description = "Evaluates arithmetic.", InputSchemaJson = Schema } };
        var llm = new LlmConfig { Provider = LlmProvider.Anthropic, Model = "claude-sonnet-5-5", MaxTokens = 1024 };
        _request = new ChatRequest(llm, "Use the calculator for every computation.", messages, tools, ToolChoice.Auto);
        _proto = new StreamGenerateRequest { Llm = llm, SystemPrompt = _request.SystemPrompt, Messages = { messages }, Tools = { tools } };
        _arguments = JsonDocument.Parse("{\"expression\":\"(17 + 25) * 2\"}");
        _validator.Validate(Schema, _arguments.RootElement);
    }

    [GlobalCleanup]
    public void Cleanup() => _arguments.Dispose();

    [Benchmark(Baseline = true, Description = "baseline: the conversation as protobuf")]
    public int Protobuf()
    {
        _buffer.ResetWrittenCount();
        Google.Protobuf.MessageExtensions.WriteTo(_proto, _buffer);
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "Anthropic Messages request")]
    public int Anthropic()
    {
        _buffer.ResetWrittenCount();
        AnthropicRequestWriter.Write(_buffer, _request);
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "OpenAI Chat Completions request")]
    public int OpenAi()
    {
        _buffer.ResetWrittenCount();
        OpenAiRequestWriter.Write(_buffer, _request, compatible: false);
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "tool arguments against their JSON Schema")]
    public int ArgumentValidation() => _validator.Validate(Schema, _arguments.RootElement).Count;
}
