using System.Net;
using System.Security.Cryptography;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.Orchestrator.Tests;

/// <summary>
/// OIDC bearer tokens from a local issuer that serves its own discovery document and JWKS: a valid token's claims give
/// the caller's tenant and roles; an expired token, one for another audience and one signed by a key the issuer does not
/// publish are each UNAUTHENTICATED, saying why, over gRPC and REST.
/// </summary>
public sealed class BearerTokenTests : IAsyncLifetime
{
    private const string Audience = "namra-api";
    private const string Calculator = InlineAgents.ScriptedAnswer;

    private readonly RSA _signing = RSA.Create(2048);
    private readonly RSA _stranger = RSA.Create(2048);
    private LocalWebServer _issuer = null!;
    private string _issuerUrl = null!;
    private NamraTestHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        _issuer = await LocalWebServer.StartAsync(issuer =>
        {
            issuer.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, string> { ["issuer"] = _issuerUrl, ["jwks_uri"] = $"{_issuerUrl}/jwks" }));
            issuer.MapGet("/jwks", () =>
            {
                var key = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(_signing.ExportParameters(false)) { KeyId = "signing-1" });
                return Results.Json(new { keys = new[] { new { kty = "RSA", use = "sig", alg = "RS256", kid = key.Kid, n = key.N, e = key.E } } });
            });
        });
        _issuerUrl = _issuer.BaseUrl.ToString().TrimEnd('/');
        _host = await NamraTestHost.StartAsync("all", new Dictionary<string, string?>
        {
            ["Namra:Orchestrator:Jwt:Authority"] = _issuerUrl,
            ["Namra:Orchestrator:Jwt:Audience"] = Audience,
            ["Namra:Orchestrator:Jwt:RequireHttpsMetadata"] = "false",
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _issuer.DisposeAsync();
        _signing.Dispose();
        _stranger.Dispose();
    }

    [Fact]
    public async Task AValidToken_GivesTheCallerTheTenantAndRolesOfItsClaims()
    {
        var client = new AgentService.AgentServiceClient(_host.Channel);
        var token = Token(roles: ["runner"]);

        var run = (await client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Calculator), Input = "1+1" }, Bearer(token))).Run;
        var read = await client.GetRunAsync(new GetRunRequest { RunId = run.RunId }, Bearer(token));
        var otherTenant = await Assert.ThrowsAsync<RpcException>(() => client.GetRunAsync(new GetRunRequest { RunId = run.RunId }, Bearer(Token(roles: ["viewer"], tenant: "globex"))).ResponseAsync);
        var viewer = await Assert.ThrowsAsync<RpcException>(() => client.ExecuteAsync(new ExecuteRequest { Agent = InlineAgents.Yaml(Calculator), Input = "1+1" }, Bearer(Token(roles: ["viewer"]))).ResponseAsync);
        using var rest = new HttpRequestMessage(HttpMethod.Get, "/v1/runs") { Headers = { { "authorization", $"Bearer {token}" } } };
        using var restAnswer = await _host.Http.SendAsync(rest);
        var none = await Assert.ThrowsAsync<RpcException>(() => client.ListRunsAsync(new ListRunsRequest()).ResponseAsync);

        Assert.Equal((RunStatus.Completed, "acme"), (run.Status, run.Tenant));
        Assert.Equal(run.RunId, read.Run.RunId);
        Assert.Equal(StatusCode.NotFound, otherTenant.StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, viewer.StatusCode);
        Assert.Contains("'token:alice' lacks the permission execute", viewer.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, restAnswer.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, none.StatusCode);
        Assert.Contains("bearer token from " + _issuerUrl, none.Status.Detail, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "expired", "expired at" },
        { "audience", "not for the audience namra-api" },
        { "unknown key", "signed with a key" },
        { "issuer", "was not issued by" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task AnInvalidToken_IsUnauthenticated_SayingWhy(string flaw, string said)
    {
        var token = flaw switch
        {
            "expired" => Token(roles: ["runner"], expires: DateTime.UtcNow.AddMinutes(-10)),
            "audience" => Token(roles: ["runner"], audience: "another-api"),
            "unknown key" => Token(roles: ["runner"], key: new RsaSecurityKey(_stranger) { KeyId = "stranger" }),
            _ => Token(roles: ["runner"], issuer: "https://elsewhere.example"),
        };

        var refused = await Assert.ThrowsAsync<RpcException>(() => new AgentService.AgentServiceClient(_host.Channel).ListRunsAsync(new ListRunsRequest(), Bearer(token)).ResponseAsync);
        using var rest = new HttpRequestMessage(HttpMethod.Get, "/v1/runs") { Headers = { { "authorization", $"Bearer {token}" } } };
        using var restAnswer = await _host.Http.SendAsync(rest);

        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        Assert.Contains(said, refused.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(token, refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, restAnswer.StatusCode);
    }

    private string Token(string[] roles, string tenant = "acme", string audience = Audience, string? issuer = null, DateTime? expires = null, SecurityKey? key = null)
    {
        var expiry = expires ?? DateTime.UtcNow.AddMinutes(10);
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer ?? _issuerUrl,
            Audience = audience,
            IssuedAt = expiry.AddMinutes(-20),
            NotBefore = expiry.AddMinutes(-20),
            Expires = expiry,
            Claims = new Dictionary<string, object> { ["sub"] = "alice", ["tenant"] = tenant, ["roles"] = roles },
            SigningCredentials = new SigningCredentials(key ?? new RsaSecurityKey(_signing) { KeyId = "signing-1" }, SecurityAlgorithms.RsaSha256),
        });
    }

    private static Metadata Bearer(string token) => new() { { "authorization", $"Bearer {token}" } };
}
