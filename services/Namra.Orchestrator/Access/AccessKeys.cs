using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.Contracts;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Access;

/// <summary>
/// The API keys of the public API, by the SHA-256 of the key (keys themselves are never kept): from
/// <c>NAMRA_API_KEYS</c> (comma-separated keys, each an admin of the default tenant) and from
/// <c>Namra:Orchestrator:ApiKeysFile</c>, either a key per line (admins of the default tenant) or, for a <c>.json</c>
/// file, keys with an id, a tenant, roles, the agents they may run and an expiry, and the limits of each tenant
/// (<see cref="TenantLimits"/>). The file is read again when it
/// changes (a Kubernetes Secret mount updated in place), checked at most every two seconds; a file that cannot be read
/// keeps the keys it had.
/// </summary>
internal sealed partial class AccessKeys(IOptions<OrchestratorOptions> options, AuditLog audit, TimeProvider timeProvider, ILogger<AccessKeys> logger)
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(2);
    private readonly Lock _gate = new();
    private Dictionary<string, Entry> _keys = [];
    private Dictionary<string, TenantPolicy> _tenants = [];
    private DateTime _fileTime = DateTime.MinValue;
    private long _checked = long.MinValue;

    /// <summary>One key: who it is, and when it stops working.</summary>
    public sealed record Entry(Principal Principal, DateTimeOffset? Expires);

    /// <summary>
    /// Whether every public call must carry a key: any key is configured, or a keys file is named (one that is missing or
    /// cannot be read admits nobody, never everybody).
    /// </summary>
    public bool Required
    {
        get
        {
            Refresh();
            return Volatile.Read(ref _keys).Count > 0 || options.Value.ApiKeysFile is { Length: > 0 };
        }
    }

    /// <summary>The key presented, if known.</summary>
    public Entry? Find(string presented)
    {
        Refresh();
        return Volatile.Read(ref _keys).GetValueOrDefault(Hash(presented));
    }

    /// <summary>The limits of a tenant: its own, else those of <c>*</c>, else none.</summary>
    public TenantPolicy Policy(string tenant)
    {
        Refresh();
        var tenants = Volatile.Read(ref _tenants);
        return tenants.GetValueOrDefault(tenant) ?? tenants.GetValueOrDefault("*") ?? TenantPolicy.None;
    }

    /// <summary>The hex SHA-256 of a key, as the access file stores it.</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private void Refresh()
    {
        var now = timeProvider.GetTimestamp();
        if (Volatile.Read(ref _checked) != long.MinValue && timeProvider.GetElapsedTime(Volatile.Read(ref _checked), now) < CheckInterval)
        {
            return;
        }

        lock (_gate)
        {
            if (Volatile.Read(ref _checked) != long.MinValue && timeProvider.GetElapsedTime(Volatile.Read(ref _checked), now) < CheckInterval)
            {
                return; // read by the caller that held the lock
            }

            var file = options.Value.ApiKeysFile;
            var fileTime = file is { Length: > 0 } && File.Exists(file) ? File.GetLastWriteTimeUtc(file) : DateTime.MinValue;
            if (fileTime == _fileTime && _keys.Count > 0)
            {
                Volatile.Write(ref _checked, now);
                return;
            }

            try
            {
                var keys = new Dictionary<string, Entry>(StringComparer.Ordinal);
                var tenants = new Dictionary<string, TenantPolicy>(StringComparer.Ordinal);
                if (Environment.GetEnvironmentVariable("NAMRA_API_KEYS") is { Length: > 0 } fromEnvironment)
                {
                    foreach (var key in fromEnvironment.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        keys[Hash(key)] = new Entry(Admin("env"), null);
                    }
                }

                if (file is { Length: > 0 })
                {
                    foreach (var (hash, entry) in Read(file, tenants))
                    {
                        keys[hash] = entry;
                    }
                }

                Volatile.Write(ref _keys, keys);
                Volatile.Write(ref _tenants, tenants);
                _fileTime = fileTime;
                Changed("access.loaded", "OK",
                    $"{file ?? "NAMRA_API_KEYS"}: keys {string.Join(", ", keys.Values.Select(entry => $"{entry.Principal.Id} ({entry.Principal.Tenant}: {string.Join(" ", entry.Principal.Roles)})").Distinct(StringComparer.Ordinal))}; tenants with limits {string.Join(", ", tenants.Keys)}");
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or JsonException or InvalidDataException)
            {
                Unreadable(logger, file ?? "", exception.Message);
                Changed("access.unreadable", "FAILED_PRECONDITION", $"{file}: {exception.Message}; the keys read before it stay");
            }

            // Only now: callers arriving while the file was read wait for it, rather than finding no keys.
            Volatile.Write(ref _checked, now);
        }
    }

    // A change to who may call, in the audit log: made by whoever changed the file (the operator), seen here.
    private void Changed(string action, string outcome, string detail) => audit.Record(new Contracts.V1.AuditEntry
    {
        Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(timeProvider.GetUtcNow()),
        Principal = "operator", Tenant = Tenants.Default, Action = action, Outcome = outcome, Detail = detail.Length > 2000 ? detail[..2000] : detail,
    });

    private static List<(string Hash, Entry Entry)> Read(string file, Dictionary<string, TenantPolicy> tenants) => [.. ReadKeys(file, tenants)];

    private static IEnumerable<(string Hash, Entry Entry)> ReadKeys(string file, Dictionary<string, TenantPolicy> tenants)
    {
        if (!file.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            // A key per line, as before roles: each an admin of the default tenant.
            foreach (var (line, index) in File.ReadAllLines(file).Select((line, index) => (line.Trim(), index)).Where(l => l.Item1.Length > 0 && !l.Item1.StartsWith('#')))
            {
                yield return (Hash(line), new Entry(Admin($"line-{index + 1}"), null));
            }

            yield break;
        }

        var access = JsonSerializer.Deserialize(File.ReadAllText(file), AccessJson.Default.AccessFile) ?? throw new InvalidDataException("The access file is empty.");
        foreach (var (name, limits) in access.Tenants ?? [])
        {
            if (name != "*" && !Tenants.IsValidName(name))
            {
                throw new InvalidDataException($"tenants: '{name}' is not a tenant's name ({Tenants.NameRule}), nor '*'.");
            }

            tenants[name] = TenantPolicy.From(name, limits);
        }

        foreach (var key in access.Keys ?? [])
        {
            if (key.Sha256 is not { Length: 64 } hash || !hash.All(Uri.IsHexDigit))
            {
                throw new InvalidDataException($"Key '{key.Id}': sha256 is the 64 hex digits of the key's SHA-256.");
            }

            var roles = key.Roles ?? [];
            if (roles.FirstOrDefault(role => !Principal.RolePermissions.ContainsKey(role)) is { } unknown)
            {
                throw new InvalidDataException($"Key '{key.Id}': no role '{unknown}'; the roles are {string.Join(", ", Principal.RolePermissions.Keys)}.");
            }

            var tenant = Tenants.OrDefault(key.Tenant ?? "");
            if (!Tenants.IsValidName(tenant))
            {
                throw new InvalidDataException($"Key '{key.Id}': the tenant '{tenant}' is not a tenant's name ({Tenants.NameRule}).");
            }

            var principal = new Principal(key.Id ?? hash[..8], tenant,
                roles.SelectMany(role => Principal.RolePermissions[role]).ToHashSet(), roles, key.Agents ?? []);
            yield return (hash.ToLowerInvariant(), new Entry(principal, key.Expires));
        }
    }

    private static Principal Admin(string id) => Principal.Unrestricted with { Id = id };

    [LoggerMessage(EventId = 6020, Level = LogLevel.Error, Message = "The API keys file {File} could not be read; the keys read before it stay: {Problem}")]
    private static partial void Unreadable(ILogger logger, string file, string problem);

    private sealed record AccessFile(List<KeyEntry>? Keys, Dictionary<string, TenantPolicy.Settings>? Tenants);

    private sealed record KeyEntry(string? Id, string? Sha256, string? Tenant, List<string>? Roles, List<string>? Agents, DateTimeOffset? Expires);

    [JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
    [JsonSerializable(typeof(AccessFile))]
    private sealed partial class AccessJson : JsonSerializerContext;
}
