using System.Collections.Concurrent;
using System.Security.Claims;
using Microsoft.Extensions.Configuration;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Namra.Hosting.Roles;

namespace Namra.Hosting.Trust;

/// <summary>
/// How Namra's services know each other: with a service key configured (<c>Namra:Services:KeyFile</c>, a file such as a
/// Kubernetes Secret mount, or <c>NAMRA_SERVICE_KEY</c>), every call between processes carries a short-lived token signed
/// with it (HS256), naming the calling roles and the service called; a service refuses calls without one. A key file may
/// hold several keys, one per line: the first signs, all verify, so a key can be replaced without stopping anything. Keys
/// are at least 32 bytes, written in base64; they are never logged.
/// </summary>
public sealed class ServiceTrust
{
    /// <summary>The metadata a token travels in.</summary>
    public const string Header = "x-namra-service-token";

    private const string Issuer = "namra";
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    private readonly SymmetricSecurityKey[] _keys;
    private readonly string _caller;
    private readonly TimeProvider _timeProvider;
    private readonly JsonWebTokenHandler _handler = new();
    private readonly ConcurrentDictionary<string, (string Token, DateTimeOffset Renew)> _issued = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string Caller, string Audience, DateTimeOffset Expires)> _accepted = new(StringComparer.Ordinal);

    /// <summary>Reads the keys; none configured turns the checks off.</summary>
    public ServiceTrust(IConfiguration configuration, NamraRoles roles, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(roles);
        _timeProvider = timeProvider;
        _caller = string.Join(' ', roles.Enabled);
        var file = configuration["Namra:Services:KeyFile"];
        var lines = file is { Length: > 0 } ? File.ReadAllLines(file) : [Environment.GetEnvironmentVariable("NAMRA_SERVICE_KEY") ?? ""];
        _keys = [.. lines.Select(line => line.Trim()).Where(line => line.Length > 0 && !line.StartsWith('#')).Select((line, index) => Key(line, index, file))];
        if (file is { Length: > 0 } && _keys.Length == 0)
        {
            throw new InvalidOperationException($"Namra:Services:KeyFile: {file} holds no key.");
        }
    }

    /// <summary>Whether calls between services are signed and checked.</summary>
    public bool Enabled => _keys.Length > 0;

    /// <summary>A token for calling <paramref name="audience"/>, reused until a minute before it expires.</summary>
    public string TokenFor(string audience)
    {
        var now = _timeProvider.GetUtcNow();
        if (_issued.TryGetValue(audience, out var issued) && issued.Renew > now)
        {
            return issued.Token;
        }

        var token = _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = audience,
            Subject = new ClaimsIdentity([new Claim("sub", _caller)]),
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime.AddMinutes(-1),
            Expires = (now + Lifetime).UtcDateTime,
            SigningCredentials = new SigningCredentials(_keys[0], SecurityAlgorithms.HmacSha256),
        });
        _issued[audience] = (token, now + Lifetime - TimeSpan.FromMinutes(1));
        return token;
    }

    /// <summary>The roles of the caller a token names, when it is signed with one of the keys, for <paramref name="audience"/>, and unexpired; null otherwise.</summary>
    public async Task<string?> CallerAsync(string token, string audience)
    {
        var now = _timeProvider.GetUtcNow();
        if (_accepted.TryGetValue(token, out var known))
        {
            return known.Audience == audience && known.Expires > now ? known.Caller : null;
        }

        var result = await _handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = audience,
            IssuerSigningKeys = _keys,
            ClockSkew = TimeSpan.FromSeconds(30),
            ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
            LifetimeValidator = (notBefore, expires, _, _) => notBefore <= now.UtcDateTime.AddSeconds(30) && expires > now.UtcDateTime,
        }).ConfigureAwait(false);
        if (!result.IsValid || result.ClaimsIdentity.FindFirst("sub")?.Value is not { } caller)
        {
            return null;
        }

        // A replica keeps using a token for minutes: checked once, remembered until it expires (a bounded few).
        if (_accepted.Count > 10_000)
        {
            foreach (var stale in _accepted.Where(pair => pair.Value.Expires <= now).Select(pair => pair.Key).ToList())
            {
                _accepted.TryRemove(stale, out _);
            }
        }

        if (_accepted.Count <= 10_000)
        {
            _accepted[token] = (caller, audience, result.SecurityToken.ValidTo);
        }

        return caller;
    }

    private static SymmetricSecurityKey Key(string text, int index, string? file)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            throw new InvalidOperationException($"The service key {index + 1} of {file ?? "NAMRA_SERVICE_KEY"} is not base64 (make one with `openssl rand -base64 32`).");
        }

        return bytes.Length >= 32
            ? new SymmetricSecurityKey(bytes) { KeyId = $"key-{index + 1}" }
            : throw new InvalidOperationException($"The service key {index + 1} of {file ?? "NAMRA_SERVICE_KEY"} has {bytes.Length} bytes; it needs at least 32 (`openssl rand -base64 32`).");
    }
}
