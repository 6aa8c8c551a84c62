using System.Security.Claims;
using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Namra.Contracts.V1;
using Namra.Hosting.Trust;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// With a service key, a tool executor in its own process runs tools only for Namra's orchestrator: a call without a
/// token, with one signed by another key, or from a role that does not call it is refused; health stays open.
/// </summary>
public sealed class ServiceTrustTests : IDisposable
{
    private const string Agent = """
        name: calc_agent
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - tool_calls: [ { name: calculator, arguments: { expression: "40 + 2" } } ]
            - text: "42."
        tools:
          - { name: calculator, type: builtin.calculator }
        """;

    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly string _keyFile = Path.Combine(Path.GetTempPath(), $"namra-service-key-{Guid.NewGuid():N}");

    public ServiceTrustTests() => File.WriteAllText(_keyFile, "# the deployment's service key\n" + Convert.ToBase64String(_key) + "\n");

    public void Dispose() => File.Delete(_keyFile);

    [Fact]
    public async Task AToolExecutorWithAServiceKey_RunsToolsOnlyForTheOrchestrator()
    {
        using var executor = ServerProcess.Start("tool-executor", out var address, new Dictionary<string, string> { ["Namra__Services__KeyFile"] = _keyFile });
        await using var host = await NamraTestHost.StartAsync("config,llm-gateway,memory,orchestrator", new Dictionary<string, string?>
        {
            ["Namra:Services:ToolExecutor"] = address,
            ["Namra:Services:KeyFile"] = _keyFile,
        });
        using var direct = GrpcChannel.ForAddress(address);
        var tools = new ToolExecutorService.ToolExecutorServiceClient(direct);
        var call = new ExecuteToolRequest { Tool = new ToolConfig { Name = "calculator", Type = ToolType.BuiltinCalculator, Calculator = new CalculatorToolSettings() }, Call = new ToolCall { Id = "c1", Name = "calculator", ArgumentsJson = "{\"expression\": \"1+1\"}" } };

        var run = (await new AgentService.AgentServiceClient(host.Channel).ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Agent), Input = "40 + 2?" })).Run;
        var anonymous = await Assert.ThrowsAsync<RpcException>(() => tools.ExecuteToolAsync(call).ResponseAsync);
        var forged = await Assert.ThrowsAsync<RpcException>(() => tools.ExecuteToolAsync(call, Token(RandomNumberGenerator.GetBytes(32), "orchestrator", "tool-executor")).ResponseAsync);
        var elsewhere = await Assert.ThrowsAsync<RpcException>(() => tools.ExecuteToolAsync(call, Token(_key, "orchestrator", "memory")).ResponseAsync);
        var memory = await Assert.ThrowsAsync<RpcException>(() => tools.ExecuteToolAsync(call, Token(_key, "memory", "tool-executor")).ResponseAsync);
        var expired = await Assert.ThrowsAsync<RpcException>(() => tools.ExecuteToolAsync(call, Token(_key, "orchestrator", "tool-executor", DateTime.UtcNow.AddMinutes(-5))).ResponseAsync);
        var signed = await tools.ExecuteToolAsync(call, Token(_key, "orchestrator", "tool-executor"));
        var health = await new Health.HealthClient(direct).CheckAsync(new HealthCheckRequest());

        Assert.Equal((RunStatus.Completed, "42."), (run.Status, run.Answer));
        Assert.Equal(
            [StatusCode.Unauthenticated, StatusCode.Unauthenticated, StatusCode.Unauthenticated, StatusCode.PermissionDenied, StatusCode.Unauthenticated],
            new[] { anonymous, forged, elsewhere, memory, expired }.Select(e => e.StatusCode));
        Assert.Contains("answers only Namra's services", anonymous.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("called by orchestrator, not by memory", memory.Status.Detail, StringComparison.Ordinal);
        Assert.Equal("2", signed.Result.Content);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    private static Metadata Token(byte[] key, string caller, string audience, DateTime? expires = null)
    {
        var until = expires ?? DateTime.UtcNow.AddMinutes(5);
        var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "namra", Audience = audience, Subject = new ClaimsIdentity([new Claim("sub", caller)]),
            IssuedAt = until.AddMinutes(-10), NotBefore = until.AddMinutes(-10), Expires = until,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key), SecurityAlgorithms.HmacSha256),
        });
        return new Metadata { { ServiceTrust.Header, token } };
    }
}
