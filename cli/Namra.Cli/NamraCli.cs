using System.CommandLine;
using Namra.Cli.Commands;

namespace Namra.Cli;

/// <summary>The <c>namra</c> command line.</summary>
internal static class NamraCli
{
    public static RootCommand Create(CliConsole console)
    {
        var root = new RootCommand(AuthoringCommands.Description);
        root.Subcommands.Add(InitCommand.Create(console));
        root.Subcommands.Add(ValidateCommand.Create(console));
        root.Subcommands.Add(RunCommand.Create(console));
        root.Subcommands.Add(RunCommand.CreateChat(console, Console.In));
        root.Subcommands.Add(SchemaCommand.Create(console));
        root.Subcommands.Add(VersionCommand.Create(console));
        return root;
    }

    public static Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken = default) =>
        AuthoringCommands.InvokeAsync(Create(console), args, console, cancellationToken);
}
