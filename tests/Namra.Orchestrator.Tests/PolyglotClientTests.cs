using System.Diagnostics;
using System.Text.Json;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>A client in another language: Node.js with @grpc/grpc-js, generated from <c>protos/</c> (examples/clients/node).</summary>
public sealed class PolyglotClientTests
{
    [Fact]
    public async Task ANodeClient_RunsAnAgentAndReadsItsStream()
    {
        RepositoryPaths.NpmFile("examples/clients/node", "@grpc/grpc-js/package.json");
        await using var host = await NamraTestHost.StartAsync("all");
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(RepositoryPaths.Combine("examples", "clients", "node", "run.js"));
        start.ArgumentList.Add(host.Channel.Target);
        start.ArgumentList.Add(RepositoryPaths.Combine("examples", "agents", "calculator.yaml"));
        start.ArgumentList.Add("What is (17 + 25) * 2?");

        using var node = Process.Start(start)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var error = node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(node.ExitCode == 0, await error);
        var events = (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.Equal("run_started", events[0].GetProperty("event").GetString());
        Assert.Contains(events, e => e.GetProperty("event").GetString() == "tool_result" && e.GetProperty("tool_result").GetProperty("content").GetString() == "84");
        Assert.Equal("(17 + 25) * 2 = 84.", events[^1].GetProperty("run_completed").GetProperty("answer").GetString());
    }
}
