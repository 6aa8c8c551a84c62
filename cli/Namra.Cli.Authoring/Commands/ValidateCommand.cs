using System.CommandLine;
using Namra.Cli.Output;
using Namra.Config;

namespace Namra.Cli.Commands;

internal static class ValidateCommand
{
    public const int Valid = 0;
    public const int Invalid = 1;

    public static Command Create(CliConsole console)
    {
        var files = new Argument<string[]>("files") { Description = "Agent files (.yaml, .yml, .toml) to check.", Arity = ArgumentArity.OneOrMore };
        var format = new Option<string>("--format", "-f") { Description = "Output format: text for people, json for tools.", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json");
        var command = new Command("validate", "Check agent files and report every problem, as a compiler does. Exit code 0 when all are valid, 1 otherwise.")
        {
            files,
            format,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var loader = new AgentLoader();
            var results = new List<(string File, AgentLoadResult Result)>();
            foreach (var file in parse.GetRequiredValue(files))
            {
                var path = Path.IsPathRooted(file) ? file : Path.Combine(console.WorkingDirectory, file);
                var result = await loader.LoadFileAsync(path, cancellationToken).ConfigureAwait(false);

                // Diagnostics name the file as the user wrote it, so editors and terminals can link to it.
                results.Add((file, result with { Diagnostics = [.. result.Diagnostics.Select(d => d with { File = file })] }));
            }

            if (parse.GetValue(format) == "json")
            {
                JsonReport.Write(console.RawOut, results);
            }
            else
            {
                var printer = new DiagnosticPrinter(console.Out);
                foreach (var (file, result) in results)
                {
                    printer.Print(file, result);
                }

                if (results.Count > 1)
                {
                    printer.PrintTotal(results.Select(r => r.Result).ToList());
                }
            }

            return results.TrueForAll(r => r.Result.IsValid) ? Valid : Invalid;
        });
        return command;
    }
}
