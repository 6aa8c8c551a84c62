using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Testing;
using Namra.Testing.Providers;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// <c>Namra:Orchestrator:MaxRunEvents</c> bounds a run's events, whether a caller reads them (ExecuteStream) or they
/// are only counted (Execute): past the cap the run stops, failed with RESOURCE_EXHAUSTED, and its last event still comes.
/// </summary>
public sealed class RunEventCapTests : IAsyncLifetime
{
    private FakeProviderServer _anthropic = null!;
    private NamraTestHost _host = null!;
    private AgentService.AgentServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        (_anthropic, _host) = await RunLoopTests.StartAsync(new Dictionary<string, string?> { ["Namra:Orchestrator:MaxRunEvents"] = "100" });
        _client = new AgentService.AgentServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _anthropic.DisposeAsync();
    }

    [Fact]
    public async Task AStreamedRun_PastTheCap_StopsFailed_AndItsLastEventSaysWhy()
    {
        // Started, iteration, then an answer in 150 pieces: the 101st event is one too many.
        _anthropic.Enqueue(AnthropicWire.TextTurn(60, 150, [.. Enumerable.Range(0, 150).Select(i => $"{i} ")]));

        using var call = _client.ExecuteStream(new ExecuteStreamRequest { Agent = Inline(), Input = "Count to 150." });
        var events = new List<RunEvent>();
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            events.Add(item.Event);
        }

        Assert.Equal(101, events.Count);
        var failed = events[^1].RunFailed;
        Assert.Equal(RunStatus.Failed, failed.Status);
        Assert.Equal((int)StatusCode.ResourceExhausted, failed.Error.Code);
        Assert.Contains("Namra:Orchestrator:MaxRunEvents", failed.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AUnaryRun_PastTheCap_StopsFailed_ThoughNobodyReadsItsEvents()
    {
        // Started, iteration, usage, then a call and a result per tool call: 60 calls make 123 events.
        _anthropic.Enqueue(
            RunLoopTests.ToolTurn([.. Enumerable.Range(0, 60).Select(i => ($"t{i}", "calculator", $"{{\"expression\":\"{i} + 1\"}}"))]),
            AnthropicWire.TextTurn(60, 5, "Done."));

        var run = (await _client.ExecuteAsync(new ExecuteRequest { Agent = Inline(), Input = "Add one to each of 0..59." })).Run;

        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal((int)StatusCode.ResourceExhausted, run.Error.Code);
        Assert.Contains("Namra:Orchestrator:MaxRunEvents", run.Error.Message, StringComparison.Ordinal);
        Assert.Single(_anthropic.Requests);
    }

    private static AgentSource Inline() => new() { Inline = new InlineAgent { Content = RunLoopTests.Agent(), Format = AgentFormat.Yaml } };
}
