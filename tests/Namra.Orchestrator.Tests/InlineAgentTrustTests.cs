using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Namra.Contracts.V1;
using Namra.Hosting.Clients;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// An agent definition sent inline over the network is the caller's, and carries its tools' authority: unless the
/// operator sets <c>Namra:Orchestrator:TrustInlineAgents</c>, it may compute and call public hosts, nothing that runs
/// programs, reads files, reaches inward or sends the tool executor's variables. Calls from the process itself
/// (<c>namra run</c>) are not limited.
/// </summary>
public sealed class InlineAgentTrustTests
{
    private const string ShellAgent = """
        name: shell_runner
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - tool_calls:
                - name: shell
                  arguments: { command: echo, args: [hello] }
            - text: "It said hello."
        tools:
          - name: shell
            type: builtin.shell
            config: { allowed_commands: [echo] }
        """;

    [Fact]
    public async Task OverTheNetwork_AnInlineAgentThatRunsPrograms_IsRefusedBeforeItStarts()
    {
        await using var host = await NamraTestHost.StartAsync("all");
        var client = new AgentService.AgentServiceClient(host.Channel);

        var refused = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(ShellAgent), Input = "Say hello." }).ResponseAsync);
        var runs = await client.ListRunsAsync(new ListRunsRequest { AgentName = "shell_runner" });

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("tool 'shell' (builtin.shell)", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("Namra:Orchestrator:TrustInlineAgents", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(runs.Runs); // no run was started
    }

    [Fact]
    public async Task OverTheNetwork_AnInlineAgentMayComputeAndCallPublicHosts_ButNotPrivateNetworksNorSendTheExecutorsVariables()
    {
        await using var host = await NamraTestHost.StartAsync("all");
        var client = new AgentService.AgentServiceClient(host.Channel);
        const string Tools = """
            name: web_reader
            version: 1.0.0
            llm: { provider: scripted, model: scripted, script: [ { text: "Nothing to fetch." } ] }
            tools:
              - name: calculator
                type: builtin.calculator
              - name: web
                type: builtin.http
                config: { allowed_hosts: [example.com] }
            """;

        var run = (await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Tools), Input = "Hello." })).Run;
        var inward = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest
        {
            Agent = InlineAgents.Yaml(Tools.Replace("allowed_hosts: [example.com]", "allowed_hosts: [example.com], allow_private_networks: true", StringComparison.Ordinal)),
            Input = "Hello.",
        }).ResponseAsync);

        var leaking = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest
        {
            Agent = InlineAgents.Yaml(Tools.Replace("allowed_hosts: [example.com]", "allowed_hosts: [example.com], headers: { x-key: \"${ANTHROPIC_API_KEY}\" }", StringComparison.Ordinal)),
            Input = "Hello.",
        }).ResponseAsync);

        Assert.Equal((RunStatus.Completed, "Nothing to fetch."), (run.Status, run.Answer));
        Assert.Equal(StatusCode.PermissionDenied, inward.StatusCode);
        Assert.Contains("tool 'web' (builtin.http)", inward.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.PermissionDenied, leaking.StatusCode);
    }

    [Fact]
    public async Task WhenTheOperatorTrustsInlineAgents_OrTheCallComesFromTheProcess_ItRuns()
    {
        await using var trusting = await NamraTestHost.StartAsync("all", new Dictionary<string, string?> { ["Namra:Orchestrator:TrustInlineAgents"] = "true" });
        await using var host = await NamraTestHost.StartAsync("all");
        var inProcess = new AgentService.AgentServiceClient(host.Services.GetRequiredService<NamraServiceChannels>().For("orchestrator"));

        var trusted = (await new AgentService.AgentServiceClient(trusting.Channel).ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(ShellAgent), Input = "Say hello." })).Run;
        var embedded = (await inProcess.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(ShellAgent), Input = "Say hello." })).Run;

        Assert.Equal((RunStatus.Completed, "It said hello.", 1), (trusted.Status, trusted.Answer, trusted.EventsSummary.ToolCalls));
        Assert.Equal((RunStatus.Completed, "It said hello.", 1), (embedded.Status, embedded.Answer, embedded.EventsSummary.ToolCalls));
    }
}
