using System.Security.Claims;
using Grpc.Core;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using Namra.Contracts;
using Namra.Hosting.Errors;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Access;

/// <summary>
/// Turns an OIDC/JWT bearer token into a principal, validated by ASP.NET Core's JwtBearer handler against the issuer's
/// published keys (fetched and refreshed by it), the audience and the token's lifetime. A token that does not validate is
/// <c>UNAUTHENTICATED</c> saying why (expired, another audience, a key the issuer does not publish); an issuer that cannot
/// be reached is <c>UNAVAILABLE</c>. The token itself is never logged or echoed.
/// </summary>
internal sealed class BearerTokens(IOptions<OrchestratorOptions> options)
{
    /// <summary>Whether a presented credential is a JWT rather than an API key: three base64url parts.</summary>
    public static bool LooksLikeToken(string presented) => presented.Count(c => c == '.') == 2 && presented.StartsWith("eyJ", StringComparison.Ordinal);

    public async Task<Principal> AuthenticateAsync(ServerCallContext context)
    {
        var jwt = options.Value.Jwt;
        var result = await context.GetHttpContext().AuthenticateAsync(JwtBearerDefaults.AuthenticationScheme).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw result.Failure switch
            {
                SecurityTokenExpiredException expired => Refused($"it expired at {expired.Expires:u}"),
                SecurityTokenNotYetValidException early => Refused($"it is not valid before {early.NotBefore:u}"),
                SecurityTokenInvalidAudienceException => Refused($"it is not for the audience {jwt.Audience}"),
                SecurityTokenInvalidIssuerException => Refused($"it was not issued by {jwt.Authority}"),
                SecurityTokenSignatureKeyNotFoundException => Refused($"it is signed with a key {jwt.Authority} does not publish"),
                SecurityTokenInvalidSignatureException => Refused("its signature does not verify"),
                SecurityTokenException => Refused("it does not validate"),
                null => Refused("it could not be read"),
                var other => new NamraException(StatusCode.Unavailable, $"Bearer tokens cannot be checked: the keys of {jwt.Authority} could not be fetched ({other.GetType().Name})."),
            };
        }

        var claims = result.Principal!;
        var tenant = claims.FindFirst(jwt.TenantClaim)?.Value ?? Tenants.Default;
        if (!Tenants.IsValidName(tenant))
        {
            throw Refused($"its {jwt.TenantClaim} claim is not a tenant's name ({Tenants.NameRule})");
        }

        var roles = Values(claims, jwt.RolesClaim).Where(Principal.RolePermissions.ContainsKey).Distinct(StringComparer.Ordinal).ToList();
        var subject = claims.FindFirst("sub")?.Value ?? claims.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? "token";
        return new Principal($"token:{subject}", tenant, roles.SelectMany(role => Principal.RolePermissions[role]).ToHashSet(), roles, [.. Values(claims, jwt.AgentsClaim)]);
    }

    // A claim given as a JSON array arrives as one claim per value; a string may hold several names, separated by spaces.
    private static IEnumerable<string> Values(ClaimsPrincipal claims, string type) =>
        claims.FindAll(type).SelectMany(claim => claim.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static NamraException Refused(string why) => new(StatusCode.Unauthenticated, $"The bearer token is not valid: {why}.");
}
