using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.ToolExecutor.Tools;

namespace Namra.ToolExecutor.Tests;

/// <summary>
/// A tool's timeout holds whether or not the tool looks at its cancellation token: a call to a tool that blocks
/// without ever checking it ends at its deadline with a timeout result, over a real socket.
/// </summary>
public sealed class ToolTimeoutTests : IAsyncLifetime
{
    // A type no built-in serves, so the stubborn tool is the only one answering for it.
    private const ToolType StubbornType = (ToolType)98;
    private readonly StubbornTool _stubborn = new();
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("tool-executor", configure: builder => builder.Services.AddSingleton<ITool>(_stubborn));
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        _stubborn.Release();
        await _host.DisposeAsync();
    }

    [Fact]
    public async Task ACallToAToolThatIgnoresCancellation_EndsByItsTimeout()
    {
        var stopwatch = Stopwatch.StartNew();
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig { Name = "stubborn", Type = StubbornType, Timeout = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(300)) },
            Call = new ToolCall { Id = "call_1", Name = "stubborn", ArgumentsJson = "{}" },
        }, deadline: DateTime.UtcNow.AddSeconds(30));

        Assert.True(response.Result.IsError);
        Assert.Equal("The tool did not finish within 0.3 s and was stopped.", response.Result.Content);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), $"took {stopwatch.Elapsed}");
        Assert.True(_stubborn.Started.IsSet);
        Assert.False(_stubborn.Finished, "the tool was still blocked when the call was answered");
    }

    /// <summary>Blocks its thread, never looking at the token (as a synchronous system call does), until released.</summary>
    private sealed class StubbornTool : ITool
    {
        private readonly ManualResetEventSlim _released = new();

        public ManualResetEventSlim Started { get; } = new();

        public bool Finished { get; private set; }

        public ToolType Type => StubbornType;

        public void Release() => _released.Set();

        public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<ToolDescription>>([new ToolDescription(config.Name, "Blocks.", """{"type":"object"}""")]);

        public Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken)
        {
            Started.Set();
            _released.Wait(TimeSpan.FromSeconds(60), CancellationToken.None); // the token ignored on purpose
            Finished = true;
            return Task.FromResult(new ToolOutcome("finished"));
        }
    }
}
