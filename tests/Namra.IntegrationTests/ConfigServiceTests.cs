using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;
using Namra.Testing;

namespace Namra.IntegrationTests;

/// <summary>The config service from a generated client, over HTTP/2 on a real loopback socket.</summary>
public sealed class ConfigServiceTests : IAsyncLifetime
{
    private const string ValidAgent = """
        name: support_agent
        version: 1.2.0
        llm:
          provider: anthropic
          model: claude-sonnet-4-5-20250929
          temperature: 0.5
        tools:
          - name: calculator
            type: builtin.calculator
        """;

    private NamraTestHost _host = null!;
    private ConfigService.ConfigServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _host = await NamraTestHost.StartAsync("config");
        _client = new ConfigService.ConfigServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task ValidateAgentDefinition_WhenValid_ReturnsDefinitionWithDefaultsAndHash()
    {
        var response = await _client.ValidateAgentDefinitionAsync(new ValidateAgentDefinitionRequest { Agent = Inline(ValidAgent, "agent.yaml") });

        Assert.True(response.Valid);
        Assert.Empty(response.Diagnostics);
        Assert.Equal(LlmProvider.Anthropic, response.Agent.Llm.Provider);
        Assert.Equal(4096, response.Agent.Llm.MaxTokens);
        Assert.Equal(10, response.Agent.Execution.MaxIterations);
        Assert.Equal("support_agent", response.Ref.Name);
        Assert.StartsWith("sha256:", response.Ref.ContentHash, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ValidateAgentDefinition_WhenInvalid_ReportsEveryProblemWithPlace()
    {
        var response = await _client.ValidateAgentDefinitionAsync(new ValidateAgentDefinitionRequest
        {
            Agent = Inline(ValidAgent.Replace("temperature: 0.5", "temprature: 0.5", StringComparison.Ordinal)
                .Replace("provider: anthropic", "provider: antropic", StringComparison.Ordinal), "agent.yaml"),
        });

        Assert.False(response.Valid);
        Assert.Null(response.Agent);
        Assert.Collection(response.Diagnostics,
            d => Assert.Equal(("NAMRA0105", 4, 13, "llm.provider", "did you mean `anthropic`?"), (d.Code, d.Line, d.Column, d.FieldPath, d.Hint)),
            d => Assert.Equal(("NAMRA0101", 6, 3, "llm.temprature", "did you mean `temperature`?"), (d.Code, d.Line, d.Column, d.FieldPath, d.Hint)));
        Assert.All(response.Diagnostics, d => Assert.Equal("agent.yaml", d.File));
    }

    [Fact]
    public async Task ResolveAgent_WhenInlineIsInvalid_FailsWithInvalidArgumentAndBadRequestDetails()
    {
        var call = _client.ResolveAgentAsync(new ResolveAgentRequest
        {
            Source = new AgentSource { Inline = Inline(ValidAgent.Replace("1.2.0", "1.2", StringComparison.Ordinal), "agent.yaml") },
        });

        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        var violation = Assert.Single(Assert.Single(RpcDetails.Of<Google.Rpc.BadRequest>(error)).FieldViolations);
        Assert.Equal("source.inline.content:version", violation.Field);
        Assert.StartsWith("agent.yaml:2:10: error NAMRA0106:", violation.Description, StringComparison.Ordinal);
        var diagnostic = Assert.Single(RpcDetails.Of<Diagnostic>(error));
        Assert.Equal((2, 10, "version"), (diagnostic.Line, diagnostic.Column, diagnostic.FieldPath));
        Assert.DoesNotContain("   at ", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResolveAgent_WhenReferenceIsUnknown_FailsWithNotFoundAndSuggestion()
    {
        await _client.RegisterAgentAsync(new RegisterAgentRequest { Agent = Inline(ValidAgent, "agent.yaml") });

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            _client.ResolveAgentAsync(new ResolveAgentRequest { Source = new AgentSource { Reference = "suport_agent" } }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Contains("Did you mean 'support_agent'?", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("suport_agent", Assert.Single(RpcDetails.Of<Google.Rpc.ResourceInfo>(error)).ResourceName);
    }

    [Theory]
    [InlineData("Support Agent")]
    [InlineData("support_agent@1.2")]
    [InlineData("")]
    public async Task GetAgent_WhenReferenceIsMalformed_FailsWithInvalidArgument(string reference)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _client.GetAgentAsync(new GetAgentRequest { Reference = reference }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("reference", Assert.Single(Assert.Single(RpcDetails.Of<Google.Rpc.BadRequest>(error)).FieldViolations).Field);
    }

    [Fact]
    public async Task RegisterAgent_ThenResolveByNameAndVersion_ReturnsTheLatestRelease()
    {
        foreach (var version in new[] { "1.2.0", "1.10.0", "2.0.0-beta.1", "1.9.3" })
        {
            var registered = await _client.RegisterAgentAsync(new RegisterAgentRequest { Agent = Inline(ValidAgent.Replace("1.2.0", version, StringComparison.Ordinal), "a.yaml") });
            Assert.True(registered.Created);
        }

        var latest = await _client.ResolveAgentAsync(new ResolveAgentRequest { Source = new AgentSource { Reference = "support_agent" } });
        var exact = await _client.ResolveAgentAsync(new ResolveAgentRequest { Source = new AgentSource { Reference = "support_agent@2.0.0-beta.1" } });

        Assert.Equal("1.10.0", latest.Ref.Version);
        Assert.Equal("2.0.0-beta.1", exact.Agent.Version);
    }

    [Fact]
    public async Task RegisterAgent_WhenSameVersionHasOtherContent_FailsWithAlreadyExists()
    {
        var first = await _client.RegisterAgentAsync(new RegisterAgentRequest { Agent = Inline(ValidAgent, "a.yaml") });
        var again = await _client.RegisterAgentAsync(new RegisterAgentRequest { Agent = Inline(ValidAgent, "a.yaml") });

        var error = await Assert.ThrowsAsync<RpcException>(() => _client.RegisterAgentAsync(new RegisterAgentRequest
        {
            Agent = Inline(ValidAgent.Replace("0.5", "0.6", StringComparison.Ordinal), "a.yaml"),
        }).ResponseAsync);

        Assert.True(first.Created);
        Assert.False(again.Created);
        Assert.Equal(first.Ref.ContentHash, again.Ref.ContentHash);
        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);
    }

    [Fact]
    public async Task ListAgents_PagesThroughEveryVersionInOrder()
    {
        foreach (var version in new[] { "1.0.0", "1.1.0", "1.2.0" })
        {
            await _client.RegisterAgentAsync(new RegisterAgentRequest { Agent = Inline(ValidAgent.Replace("1.2.0", version, StringComparison.Ordinal), "a.yaml") });
        }

        var first = await _client.ListAgentsAsync(new ListAgentsRequest { PageSize = 2 });
        var second = await _client.ListAgentsAsync(new ListAgentsRequest { PageSize = 2, PageToken = first.NextPageToken });
        var forged = await Assert.ThrowsAsync<RpcException>(() => _client.ListAgentsAsync(new ListAgentsRequest { PageToken = "bogus" }).ResponseAsync);

        Assert.Equal(["1.0.0", "1.1.0"], first.Agents.Select(a => a.Ref.Version));
        Assert.Equal(["1.2.0"], second.Agents.Select(a => a.Ref.Version));
        Assert.Equal("", second.NextPageToken);
        Assert.Equal(StatusCode.InvalidArgument, forged.StatusCode);
    }

    [Fact]
    public async Task WatchAgents_StreamsRegistrationsAsTheyHappen()
    {
        using var watch = _client.WatchAgents(new WatchAgentsRequest());
        await watch.ResponseHeadersAsync;
        var next = watch.ResponseStream.MoveNext(CancellationToken.None);

        await _client.RegisterAgentAsync(new RegisterAgentRequest { Agent = Inline(ValidAgent, "a.yaml") });

        Assert.True(await next.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(AgentChangeType.Added, watch.ResponseStream.Current.Type);
        Assert.Equal("support_agent", watch.ResponseStream.Current.Agent.Ref.Name);
        Assert.Equal("api", watch.ResponseStream.Current.Agent.Origin);
    }

    [Fact]
    public async Task ValidateAgentDefinition_WhenContentIsEmpty_FailsWithInvalidArgumentNamingTheField()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() =>
            _client.ValidateAgentDefinitionAsync(new ValidateAgentDefinitionRequest { Agent = new InlineAgent() }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("agent.content", Assert.Single(Assert.Single(RpcDetails.Of<Google.Rpc.BadRequest>(error)).FieldViolations).Field);
    }

    private static InlineAgent Inline(string content, string fileName) => new() { Content = content, FileName = fileName };
}

/// <summary>What callers of the config service must not be able to do.</summary>
public sealed class ConfigServiceSecurityTests
{
    [Fact]
    public async Task InlineDefinition_CannotReadTheServicesEnvironment()
    {
        Environment.SetEnvironmentVariable("NAMRA_TEST_SERVICE_SECRET", "s3cr3t-value");
        await using var host = await NamraTestHost.StartAsync("config");

        var response = await new ConfigService.ConfigServiceClient(host.Channel).ValidateAgentDefinitionAsync(new ValidateAgentDefinitionRequest
        {
            Agent = new InlineAgent { Content = "name: demo\nversion: 1.0.0\ndescription: ${NAMRA_TEST_SERVICE_SECRET}\nllm: { provider: openai, model: m }\n" },
        });

        Assert.False(response.Valid);
        var error = Assert.Single(response.Diagnostics);
        Assert.Equal("NAMRA0010", error.Code);
        Assert.Contains("Namra:Config:InlineVariables", error.Hint, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t-value", response.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task InlineDefinition_ReadsTheVariablesTheOperatorAllows()
    {
        Environment.SetEnvironmentVariable("NAMRA_TEST_MODEL", "gpt-4.1");
        await using var host = await NamraTestHost.StartAsync("config", new Dictionary<string, string?> { ["Namra:Config:InlineVariables:0"] = "NAMRA_TEST_*" });

        var response = await new ConfigService.ConfigServiceClient(host.Channel).ValidateAgentDefinitionAsync(new ValidateAgentDefinitionRequest
        {
            Agent = new InlineAgent { Content = "name: demo\nversion: 1.0.0\nllm: { provider: openai, model: \"${NAMRA_TEST_MODEL}\" }\n" },
        });

        Assert.True(response.Valid);
        Assert.Equal("gpt-4.1", response.Agent.Llm.Model);
    }

    [Fact]
    public async Task ResolveAgent_WhenDefinitionHasThousandsOfErrors_StillAnswersInvalidArgumentWithBoundedDetails()
    {
        await using var host = await NamraTestHost.StartAsync("config");
        var content = "name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\n"
            + string.Concat(Enumerable.Range(0, 3000).Select(i => $"field_{i}_{new string('x', 200)}: 1\n"));

        var error = await Assert.ThrowsAsync<RpcException>(() => new ConfigService.ConfigServiceClient(host.Channel)
            .ResolveAgentAsync(new ResolveAgentRequest { Source = new AgentSource { Inline = new InlineAgent { Content = content } } }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        var violations = Assert.Single(RpcDetails.Of<Google.Rpc.BadRequest>(error)).FieldViolations;
        Assert.InRange(violations.Count, 2, 26);
        Assert.Contains("more errors not listed", violations[^1].Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetAgent_WhenContentHashDiffers_FailsWithFailedPrecondition()
    {
        await using var host = await NamraTestHost.StartAsync("config");
        var client = new ConfigService.ConfigServiceClient(host.Channel);
        var registered = await client.RegisterAgentAsync(new RegisterAgentRequest
        {
            Agent = new InlineAgent { Content = "name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\n" },
        });

        var same = await client.GetAgentAsync(new GetAgentRequest { Reference = "demo@1.0.0", ContentHash = registered.Ref.ContentHash });
        var error = await Assert.ThrowsAsync<RpcException>(() =>
            client.GetAgentAsync(new GetAgentRequest { Reference = "demo@1.0.0", ContentHash = "sha256:00" }).ResponseAsync);

        Assert.Equal(registered.Ref, same.Ref);
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }
}
