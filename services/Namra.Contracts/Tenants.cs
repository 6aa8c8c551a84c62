using System.Text.RegularExpressions;

namespace Namra.Contracts;

/// <summary>
/// Tenants separate the runs, sessions and memories of teams sharing one deployment. A tenant is named by the keys
/// (or tokens) of its callers; records made without keys belong to <see cref="Default"/>.
/// </summary>
public static partial class Tenants
{
    /// <summary>The tenant of callers that name none, and of records stored before tenants existed.</summary>
    public const string Default = "default";

    /// <summary>What a tenant's name may be: lower-case letters, digits, <c>.</c>, <c>_</c> and <c>-</c>, 1 to 63 of them, starting with a letter or digit.</summary>
    public const string NameRule = "1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit";

    /// <summary>True when <paramref name="name"/> follows <see cref="NameRule"/>.</summary>
    public static bool IsValidName(string name) => ValidName().IsMatch(name);

    /// <summary>The tenant a request names: <see cref="Default"/> when it names none.</summary>
    public static string OrDefault(string tenant) => tenant.Length == 0 ? Default : tenant;

    /// <summary>
    /// A key of <paramref name="id"/> within <paramref name="tenant"/>, for maps kept in a process: the same id in two
    /// tenants gives two keys (a tenant's name and an id hold no control characters, so the separator keeps them apart).
    /// </summary>
    public static string Scoped(string tenant, string id) => string.Concat(tenant, Separator, id);

    /// <summary>What <see cref="Scoped"/> puts between a tenant and an id.</summary>
    public const string Separator = "\u001f";

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex ValidName();
}
