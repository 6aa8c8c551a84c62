using System.Text;

namespace Namra.ToolExecutor.Tools;

/// <summary>Resolves <c>${VAR}</c> and <c>${VAR:-default}</c> kept in secret-bearing tool settings, at the moment of use.</summary>
internal static class VariableReferences
{
    public static string Expand(string text, Func<string, string?> environment)
    {
        if (!text.Contains("${", StringComparison.Ordinal))
        {
            return text;
        }

        var result = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length;)
        {
            if (text[i] == '$' && i + 2 < text.Length && text[i + 1] == '$' && text[i + 2] == '{')
            {
                result.Append("${");
                i += 3;
            }
            else if (text[i] == '$' && i + 1 < text.Length && text[i + 1] == '{' && text.IndexOf('}', i + 2) is var close and > 0)
            {
                var body = text[(i + 2)..close];
                var separator = body.IndexOf(":-", StringComparison.Ordinal);
                var value = environment(separator < 0 ? body : body[..separator]);
                result.Append(string.IsNullOrEmpty(value) && separator >= 0 ? body[(separator + 2)..] : value ?? "");
                i = close + 1;
            }
            else
            {
                result.Append(text[i++]);
            }
        }

        return result.ToString();
    }
}
