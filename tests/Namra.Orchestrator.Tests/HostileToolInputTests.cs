using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// Inputs that used to kill <c>namra-server</c> from a tool (a stack overflow cannot be caught: the process ends),
/// sent as an inline agent over the public API to a real server process: the run ends, the tool results are
/// errors or text, and the server keeps serving.
/// </summary>
public sealed class HostileToolInputTests : IAsyncLifetime
{
    private LocalWebServer _web = null!;
    private Uri _page = null!;

    public async ValueTask InitializeAsync()
    {
        _web = await LocalWebServer.StartAsync(web => web.MapGet("/nested", () => Results.Content(string.Concat(Enumerable.Repeat("<b>", 50_000)) + "the bottom", "text/html")));
        _page = new Uri(_web.BaseUrl, "/nested");
    }

    public async ValueTask DisposeAsync() => await _web.DisposeAsync();

    [Fact]
    public async Task AServerProcess_SurvivesThePagesAndExpressionsThatKilledIt()
    {
        // The operator trusts inline agents here only so that the http tool may reach this test's page on loopback.
        using var server = ServerProcess.Start("all", new Dictionary<string, string> { ["Namra__Orchestrator__TrustInlineAgents"] = "true" });
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var client = new AgentService.AgentServiceClient(channel);
        var minusChain = new string('-', 70_000) + "1";
        var plusChain = string.Join("+", Enumerable.Repeat("1", 30_000));
        var agent = $$"""
            name: hostile_inputs
            version: 1.0.0
            llm:
              provider: scripted
              model: scripted
              script:
                - tool_calls:
                    - { name: calculator, arguments: { expression: "{{minusChain}}" } }
                    - { name: calculator, arguments: { expression: "{{plusChain}}" } }
                    - { name: web, arguments: { url: "{{_page}}" } }
                - text: "Still here."
            tools:
              - name: calculator
                type: builtin.calculator
                config: { max_expression_length: 100000 }
              - name: web
                type: builtin.http
                timeout: 20s
                config: { allow_private_networks: true }
            execution: { timeout: 60s }
            """;

        var results = new List<ToolResult>();
        using (var stream = client.ExecuteStream(new ExecuteStreamRequest { Agent = InlineAgents.Yaml(agent), Input = "Go." }))
        {
            await foreach (var response in stream.ResponseStream.ReadAllAsync())
            {
                if (response.Event.ToolResult is { } result)
                {
                    results.Add(result);
                }
            }
        }

        var after = (await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(agent.Replace(minusChain, "1", StringComparison.Ordinal)), Input = "Again." })).Run;

        // The turn's calls run in parallel: their results come as each ends.
        Assert.Equal(3, results.Count);
        Assert.Contains(results, r => r.Content == "1");
        Assert.Contains(results, r => r.Content == "30000");
        Assert.Contains(results, r => r.Content.Contains("the bottom", StringComparison.Ordinal));
        Assert.All(results, r => Assert.False(r.IsError, r.Content));
        Assert.Equal((RunStatus.Completed, "Still here."), (after.Status, after.Answer));
    }

}
