using System.CommandLine;
using Namra.Cli.Commands;

namespace Namra.Cli;

/// <summary>The <c>namra</c> command line.</summary>
internal static class NamraCli
{
    public static RootCommand Create(CliConsole console)
    {
        var root = new RootCommand("Namra: config-driven AI agents. Write an agent in YAML, check it, run it.");
        root.Subcommands.Add(InitCommand.Create(console));
        root.Subcommands.Add(ValidateCommand.Create(console));
        root.Subcommands.Add(RunCommand.Create(console));
        root.Subcommands.Add(RunCommand.CreateChat(console, Console.In));
        root.Subcommands.Add(SchemaCommand.Create(console));
        root.Subcommands.Add(VersionCommand.Create(console));
        return root;
    }

    public static Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken = default)
    {
        var parsed = Create(console).Parse(args);
        return parsed.InvokeAsync(new InvocationConfiguration { Output = console.RawOut, Error = console.Error }, cancellationToken);
    }
}
