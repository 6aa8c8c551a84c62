using System.Text;
using Microsoft.Extensions.Configuration;

namespace Namra.Hosting.Secrets;

/// <summary>
/// Secrets by name, for <c>${secret:NAME}</c> in a tool's secret-bearing settings (headers, <c>env</c>,
/// <c>connection_string</c>) and for provider keys: from the folder the operator names (<c>Namra:Secrets:Folder</c>, a
/// file per secret named as the secret, as a Kubernetes Secret is mounted), read at each use so that a rotated secret is
/// used at once; else from the environment variable of that name. Values are never logged; a file past 64 KiB, or a
/// name that is not a plain file name, is no secret.
/// </summary>
public sealed class SecretStore
{
    private const int MaxBytes = 64 * 1024;
    private const string Prefix = "secret:";
    private readonly string? _folder;
    private readonly Func<string, string?> _environment;

    /// <summary>Secrets from the configured folder, then the environment.</summary>
    public SecretStore(IConfiguration configuration)
        : this(configuration?["Namra:Secrets:Folder"], Environment.GetEnvironmentVariable)
    {
    }

    /// <summary>Secrets from <paramref name="folder"/> (none when null), then <paramref name="environment"/>.</summary>
    public SecretStore(string? folder, Func<string, string?> environment)
    {
        _folder = folder is { Length: > 0 } ? Path.GetFullPath(folder) : null;
        _environment = environment;
    }

    /// <summary>Only the environment: for code that runs without a host's configuration.</summary>
    public static SecretStore EnvironmentOnly { get; } = new(null, Environment.GetEnvironmentVariable);

    /// <summary>The secret named <paramref name="name"/>, or null when neither the folder nor the environment has it.</summary>
    public string? Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!IsName(name))
        {
            return null;
        }

        if (_folder is not null)
        {
            var file = new FileInfo(Path.Combine(_folder, name));
            if (file.Exists && file.Length <= MaxBytes && (file.Attributes & FileAttributes.Directory) == 0)
            {
                return File.ReadAllText(file.FullName, Encoding.UTF8).TrimEnd('\r', '\n');
            }
        }

        return _environment(name);
    }

    /// <summary>What a <c>${...}</c> reference reads: <c>secret:NAME</c> from the store, any other name from the environment.</summary>
    public string? Resolve(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return reference.StartsWith(Prefix, StringComparison.Ordinal) ? Get(reference[Prefix.Length..]) : _environment(reference);
    }

    /// <summary>Letters, digits, <c>_</c>, <c>-</c> and <c>.</c>, not starting with <c>.</c>: a file name and a variable name alike.</summary>
    public static bool IsName(string name) =>
        name.Length is > 0 and <= 255 && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.');
}
