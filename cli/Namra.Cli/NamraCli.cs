using System.CommandLine;
using Namra.Cli.Commands;

namespace Namra.Cli;

/// <summary>The <c>namra</c> command line.</summary>
internal static class NamraCli
{
    /// <summary>The commands; <c>chat</c> reads its lines, and <c>run</c> its approvals, from <paramref name="input"/> (standard input when null).</summary>
    public static RootCommand Create(CliConsole console, TextReader? input = null)
    {
        var root = new RootCommand(AuthoringCommands.Description);
        root.Subcommands.Add(InitCommand.Create(console));
        root.Subcommands.Add(ValidateCommand.Create(console));
        root.Subcommands.Add(RunCommand.Create(console, input ?? Console.In));
        root.Subcommands.Add(RunCommand.CreateChat(console, input ?? Console.In));
        root.Subcommands.Add(RunsCommand.Create(console));
        root.Subcommands.Add(AuditCommand.Create(console));
        root.Subcommands.Add(SchemaCommand.Create(console));
        root.Subcommands.Add(VersionCommand.Create(console));
        return root;
    }

    public static Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken = default) =>
        AuthoringCommands.InvokeAsync(Create(console), args, console, cancellationToken);

    /// <summary>As <see cref="RunAsync(string[], CliConsole, CancellationToken)"/>, <c>chat</c> reading <paramref name="input"/>.</summary>
    public static Task<int> RunAsync(string[] args, CliConsole console, TextReader input, CancellationToken cancellationToken = default) =>
        AuthoringCommands.InvokeAsync(Create(console, input), args, console, cancellationToken);
}
