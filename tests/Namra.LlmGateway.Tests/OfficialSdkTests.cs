using System.Diagnostics;
using System.Text.Json;
using Namra.Testing.Providers;

namespace Namra.LlmGateway.Tests;

/// <summary>
/// The official Anthropic and OpenAI SDKs (npm, in <c>tests/sdk-check</c>) read the local provider servers' streams
/// as they read the real APIs: the check that the fakes the gateway is tested against are faithful.
/// </summary>
public sealed class OfficialSdkTests : IAsyncLifetime
{
    private FakeProviderServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await FakeProviderServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task AnthropicSdk_ParsesTheLocalMessagesStream()
    {
        _server.Enqueue(new SseReply([
            AnthropicWire.MessageStart(inputTokens: 472, cacheRead: 100),
            AnthropicWire.Ping(),
            .. AnthropicWire.TextBlock(0, "I'll compute ", "that."),
            .. AnthropicWire.ToolUseBlock(1, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "calculator", "", "{\"expr", "ession\": \"(17 + 25", ") * 2\"}"),
            AnthropicWire.MessageDelta("tool_use", 89),
            AnthropicWire.MessageStop()]));

        using var result = await RunAsync("anthropic", _server.BaseUrl.ToString());
        var root = result.RootElement;

        Assert.Equal(["I'll compute ", "that."], root.GetProperty("deltas").EnumerateArray().Select(d => d.GetString()));
        var content = root.GetProperty("content");
        Assert.Equal("I'll compute that.", content[0].GetProperty("text").GetString());
        Assert.Equal("(17 + 25) * 2", content[1].GetProperty("input").GetProperty("expression").GetString());
        Assert.Equal("tool_use", root.GetProperty("stop_reason").GetString());
        Assert.Equal((472, 89, 100), (root.GetProperty("usage").GetProperty("input_tokens").GetInt32(),
            root.GetProperty("usage").GetProperty("output_tokens").GetInt32(), root.GetProperty("usage").GetProperty("cache_read_input_tokens").GetInt32()));
        var request = Assert.Single(_server.Requests);
        // The SDK authenticates with x-api-key or, in newer releases, a bearer token; either way it reaches /v1/messages.
        Assert.Equal("/v1/messages", request.Path);
        Assert.True(request.Headers.GetValueOrDefault("x-api-key") == "sk-ant-sdk-check"
            || request.Headers.GetValueOrDefault("authorization") == "Bearer sk-ant-sdk-check");
        Assert.True(request.Headers.ContainsKey("anthropic-version"));
    }

    [Fact]
    public async Task OpenAiSdk_ParsesTheLocalChatCompletionsStream()
    {
        _server.Enqueue(new SseReply([
            OpenAiWire.Role(),
            OpenAiWire.ToolCallStart(0, "call_A", "get_weather"),
            OpenAiWire.ToolCallArguments(0, "{\"loc"),
            OpenAiWire.ToolCallStart(1, "call_B", "get_time"),
            OpenAiWire.ToolCallArguments(0, "ation\":\"Paris\"}"),
            OpenAiWire.ToolCallArguments(1, "{}"),
            OpenAiWire.Finish("tool_calls"),
            OpenAiWire.Usage(50, 30, cachedTokens: 20),
            OpenAiWire.Done()]));

        using var result = await RunAsync("openai", new Uri(_server.BaseUrl, "/v1").ToString());
        var root = result.RootElement;

        var calls = root.GetProperty("calls").EnumerateArray().Select(c => (c.GetProperty("id").GetString(), c.GetProperty("name").GetString(), c.GetProperty("arguments").GetString())).ToList();
        Assert.Equal([("call_A", "get_weather", "{\"location\":\"Paris\"}"), ("call_B", "get_time", "{}")], calls);
        Assert.Equal("tool_calls", root.GetProperty("finish").GetString());
        Assert.Equal(20, root.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal("/v1/chat/completions", Assert.Single(_server.Requests).Path);
    }

    private static async Task<JsonDocument> RunAsync(string provider, string baseUrl)
    {
        var folder = Path.Combine(RepositoryRoot(), "tests", "sdk-check");
        if (!Directory.Exists(Path.Combine(folder, "node_modules")))
        {
            throw new InvalidOperationException($"The SDK check needs its npm packages: npm ci --prefix {folder} (.ci/run does it).");
        }

        var start = new ProcessStartInfo("node", ["check.mjs", provider, baseUrl])
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"node check.mjs {provider} failed: {await error}");
        return JsonDocument.Parse(await output);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Namra.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Namra.sln not found above " + AppContext.BaseDirectory);
    }
}
