using System.Text;
using Namra.Config.Validation;

namespace Namra.Config.Parsing;

/// <summary>
/// Expands <c>${VAR}</c> and <c>${VAR:-default}</c> in scalar values (never in keys or structure, so a
/// variable cannot inject fields). <c>$${</c> writes a literal <c>${</c>. As in POSIX shells, <c>:-</c>
/// uses the default when the variable is unset or empty. An unset variable without a default is an error
/// naming it and its place. <c>${secret:NAME}</c> names a secret of the operator's (a secrets folder, the environment),
/// kept as written in the settings resolved where the tool runs and refused anywhere else.
/// </summary>
internal static class Interpolator
{
    private const string SecretPrefix = "secret:";

    public static bool ContainsReference(string text) => text.Contains("${", StringComparison.Ordinal);

    /// <summary>
    /// The expanded text, or null after reporting a problem. With <paramref name="environment"/> null, only the
    /// syntax is checked and the text comes back as written (for values resolved later, where they are used).
    /// </summary>
    public static string? Expand(string text, SourcePosition position, string path, DiagnosticBag diagnostics,
        Func<string, string?>? environment, string unsetHint = "")
    {
        if (!ContainsReference(text))
        {
            return text;
        }

        var result = new StringBuilder(text.Length);
        var ok = true;
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == '$' && i + 2 < text.Length && text[i + 1] == '$' && text[i + 2] == '{')
            {
                result.Append("${");
                i += 3;
                continue;
            }

            if (text[i] != '$' || i + 1 >= text.Length || text[i + 1] != '{')
            {
                result.Append(text[i++]);
                continue;
            }

            var close = text.IndexOf('}', i + 2);
            if (close < 0)
            {
                diagnostics.Error(DiagnosticCodes.BadInterpolation, position, path,
                    "`${` is not closed by `}`.", "write `${NAME}` or `${NAME:-default}`; `$${` for a literal `${`");
                return null;
            }

            var body = text.AsSpan(i + 2, close - i - 2);
            if (body.StartsWith(SecretPrefix, StringComparison.Ordinal))
            {
                // A secret is read only where the tool runs, from the operator's secrets: never into a definition.
                var secret = body[SecretPrefix.Length..].ToString();
                if (environment is not null)
                {
                    diagnostics.Error(DiagnosticCodes.SecretInFile, position, path,
                        $"`${{{body}}}` would copy a secret into the agent's definition, which is shown, stored with every run and sent to the model.",
                        "`${secret:NAME}` is read where the tool runs: in a tool's `headers`, `env` or `connection_string`");
                    ok = false;
                }
                else if (!Namra.Hosting.Secrets.SecretStore.IsName(secret))
                {
                    diagnostics.Error(DiagnosticCodes.BadInterpolation, position, path,
                        $"`${{{body}}}` does not name a secret.", "secret names are letters, digits, `_`, `-` and `.`, as the files of a secrets folder; no default");
                    ok = false;
                }

                i = close + 1;
                continue;
            }

            var separator = body.IndexOf(":-", StringComparison.Ordinal);
            var name = (separator < 0 ? body : body[..separator]).ToString();
            if (!IsVariableName(name))
            {
                diagnostics.Error(DiagnosticCodes.BadInterpolation, position, path,
                    $"`${{{body}}}` does not name a variable.", "variable names are letters, digits and `_`, not starting with a digit");
                ok = false;
            }
            else if (environment is not null)
            {
                var value = environment(name);
                if (!string.IsNullOrEmpty(value) && (LooksSecret(name) || CarriesCredentials(value)))
                {
                    diagnostics.Error(DiagnosticCodes.SecretInFile, position, path,
                        $"`${{{name}}}` would copy a secret into the agent's definition, which is shown, stored with every run and sent to the model.",
                        "secrets belong only in a tool's `headers`, `env` or `connection_string`, which keep `${NAME}` and are resolved where the tool runs; an API key goes in `llm.api_key_env`");
                    ok = false;
                    i = close + 1;
                    continue;
                }

                if (separator >= 0 && string.IsNullOrEmpty(value))
                {
                    value = body[(separator + 2)..].ToString();
                }

                if (value is null)
                {
                    diagnostics.Error(DiagnosticCodes.UnsetVariable, position, path,
                        $"Environment variable `{name}` is not set.", unsetHint.Length > 0 ? unsetHint : $"set it, or give a default: `${{{name}:-value}}`");
                    ok = false;
                }
                else
                {
                    result.Append(value);
                }
            }

            i = close + 1;
        }

        return !ok ? null : environment is null ? text : result.ToString();
    }

    // Names people give secrets: the last part (after the last underscore) ends with one of these words, as in
    // GITHUB_TOKEN, OPENAI_API_KEY, NAMRA_API_KEYS, PGPASSWORD, SENTRY_DSN; MAX_TOKENS and TOKEN_LIMIT pass. TOKENS is
    // left out on purpose: as a plural it counts tokens far more often than it holds them.
    private static readonly string[] SecretWords =
        ["KEY", "KEYS", "TOKEN", "SECRET", "SECRETS", "PASSWORD", "PASSWORDS", "PASSWD", "PWD", "PASSPHRASE", "CREDENTIAL", "CREDENTIALS", "CREDS", "DSN"];

    // Connection strings hold a password as often as not (Host=...;Password=...), whatever their value looks like now.
    private static readonly string[] ConnectionStringNames = ["CONNECTION_STRING", "CONNECTIONSTRING", "CONN_STRING", "CONN_STR", "CONNSTR"];

    internal static bool LooksSecret(string name)
    {
        var upper = name.ToUpperInvariant();
        var last = upper[(upper.LastIndexOf('_') + 1)..];
        return SecretWords.Any(word => last.EndsWith(word, StringComparison.Ordinal))
            || ConnectionStringNames.Any(suffix => upper.EndsWith(suffix, StringComparison.Ordinal));
    }

    /// <summary>
    /// Whether a value is a URL that carries credentials, whatever its variable is called: a user (and password)
    /// before the host, as in <c>DATABASE_URL=postgres://app:pw@db/app</c> or <c>https://TOKEN@github.com</c>, or a
    /// query parameter named as a secret (<c>?api_key=</c>). A URL without them (<c>LLM_BASE_URL</c>) may be read.
    /// </summary>
    internal static bool CarriesCredentials(string value)
    {
        var scheme = value.IndexOf("://", StringComparison.Ordinal);
        if (scheme <= 0)
        {
            return false;
        }

        var rest = value.AsSpan(scheme + 3);
        var authorityEnd = rest.IndexOfAny('/', '?', '#');
        if ((authorityEnd < 0 ? rest : rest[..authorityEnd]).Contains('@'))
        {
            return true;
        }

        var query = value.IndexOf('?', StringComparison.Ordinal);
        return query >= 0 && value[(query + 1)..].Split('#')[0].Split('&', ';')
            .Any(pair => pair.IndexOf('=', StringComparison.Ordinal) is > 0 and var equals && LooksSecret(pair[..equals].Replace('-', '_')));
    }

    private static bool IsVariableName(string name) =>
        name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}
