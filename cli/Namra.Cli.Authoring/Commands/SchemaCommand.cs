using System.CommandLine;
using Namra.Config.Validation;
using Spectre.Console;

namespace Namra.Cli.Commands;

internal static class SchemaCommand
{
    public static Command Create(CliConsole console)
    {
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write the schema to this file instead of standard output." };
        var command = new Command("schema", "Print the JSON Schema of agent files, for editors (yaml-language-server, VS Code, JetBrains).") { output };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var schema = AgentJsonSchema.Generate();
            if (parse.GetValue(output) is { } file)
            {
                await File.WriteAllTextAsync(file.FullName, schema, cancellationToken).ConfigureAwait(false);
                console.Out.MarkupLineInterpolated($"[green]wrote[/] {file.FullName}");
            }
            else
            {
                await console.RawOut.WriteAsync(schema).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }
}
