using Namra.Config;
using Namra.Config.Validation;
using Spectre.Console;

namespace Namra.Cli.Output;

/// <summary>
/// Prints diagnostics as compilers do: <c>file:line:col: error CODE: message</c>, the source line with a caret
/// under the problem, and the hint. Colors come from the console, which has none when piped.
/// </summary>
internal sealed class DiagnosticPrinter(IAnsiConsole console)
{
    public void Print(string file, AgentLoadResult result)
    {
        var lines = result.Source.Split('\n');
        foreach (var diagnostic in result.Diagnostics)
        {
            var (color, label) = diagnostic.Severity == DiagnosticSeverity.Error ? ("red", "error") : ("yellow", "warning");
            var place = diagnostic.Position.Line > 0 ? $"{file}:{diagnostic.Position.Line}:{diagnostic.Position.Column}" : file;
            console.MarkupLine($"[bold]{Markup.Escape(place)}:[/] [bold {color}]{label}[/] [dim]{diagnostic.Code}[/]: {Markup.Escape(diagnostic.Message)}");
            if (diagnostic.Position.Line > 0 && diagnostic.Position.Line <= lines.Length)
            {
                var line = lines[diagnostic.Position.Line - 1].TrimEnd('\r');
                var gutter = diagnostic.Position.Line.ToString(System.Globalization.CultureInfo.InvariantCulture);
                var pad = new string(' ', gutter.Length);
                var column = Math.Clamp(diagnostic.Position.Column, 1, line.Length + 1);
                var caret = new string('^', TokenLength(line, column - 1));
                console.MarkupLine($"[blue]{gutter} |[/] {Markup.Escape(line)}");
                console.MarkupLine($"[blue]{pad} |[/] {Indent(line, column - 1)}[bold {color}]{caret}[/]");
            }

            if (diagnostic.Hint.Length > 0)
            {
                console.MarkupLine($"  [bold cyan]= hint:[/] {Markup.Escape(diagnostic.Hint)}");
            }
        }

        var errors = result.Diagnostics.Count(d => d.Severity == DiagnosticSeverity.Error);
        var warnings = result.Diagnostics.Count - errors;
        if (result is { IsValid: true, Ref: { } agentRef })
        {
            var note = warnings > 0 ? $" with {Plural(warnings, "warning")}" : "";
            console.MarkupLine($"[bold]{Markup.Escape(file)}:[/] [green]valid[/]{note} ({Markup.Escape(agentRef.Name)}@{Markup.Escape(agentRef.Version)}, {Markup.Escape(agentRef.ContentHash[..19])})");
        }
        else
        {
            console.MarkupLine($"[bold]{Markup.Escape(file)}:[/] [red]{Plural(errors, "error")}[/]{(warnings > 0 ? $", {Plural(warnings, "warning")}" : "")}");
        }
    }

    public void PrintTotal(IReadOnlyList<AgentLoadResult> results)
    {
        var invalid = results.Count(r => !r.IsValid);
        console.MarkupLine(invalid == 0
            ? $"[green]{Plural(results.Count, "file")} valid[/]"
            : $"[red]{invalid} of {Plural(results.Count, "file")} invalid[/]");
    }

    // Underline the word at the column: a key, a value, up to a delimiter.
    private static int TokenLength(string line, int start)
    {
        if (start >= line.Length)
        {
            return 1;
        }

        var quote = line[start] is '"' or '\'' ? line[start] : (char?)null;
        var end = start + 1;
        while (end < line.Length)
        {
            var c = line[end];
            if (quote is { } q ? c == q : char.IsWhiteSpace(c) || c is ':' or ',' or '}' or ']' or '=' or '#')
            {
                end += quote is null ? 0 : 1;
                break;
            }

            end++;
        }

        return Math.Max(1, Math.Min(end, line.Length) - start);
    }

    // Tabs stay tabs, so the caret lines up whatever the terminal's tab width.
    private static string Indent(string line, int count) =>
        string.Concat(line.Take(Math.Min(count, line.Length)).Select(c => c == '\t' ? '\t' : ' '));

    private static string Plural(int count, string noun) => count == 1 ? $"1 {noun}" : $"{count} {noun}s";
}
