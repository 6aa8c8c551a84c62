using System.CommandLine;
using Namra.Cli.Commands;

namespace Namra.Cli;

/// <summary>
/// The commands that work on agent files alone, with no Namra service started: <c>init</c>, <c>validate</c>,
/// <c>schema</c> and <c>version</c>. The full CLI has them beside <c>run</c> and <c>chat</c>; the native launcher
/// serves them itself, in a few milliseconds, and hands every other command line to the full CLI.
/// </summary>
internal static class AuthoringCommands
{
    /// <summary>The names of the commands, as typed first on the command line.</summary>
    public static readonly IReadOnlySet<string> Names = new HashSet<string>(StringComparer.Ordinal) { "init", "validate", "schema", "version" };

    /// <summary>A root with only these commands, for the native launcher.</summary>
    public static RootCommand CreateRoot(CliConsole console) => new(Description)
    {
        InitCommand.Create(console),
        ValidateCommand.Create(console),
        SchemaCommand.Create(console),
        VersionCommand.Create(console),
    };

    /// <summary>Parses and runs a command line with the console's writers.</summary>
    public static Task<int> InvokeAsync(RootCommand root, string[] args, CliConsole console, CancellationToken cancellationToken = default) =>
        root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = console.RawOut, Error = console.Error }, cancellationToken);

    /// <summary>What <c>namra --help</c> says first.</summary>
    public const string Description = "Namra: config-driven AI agents. Write an agent in YAML, check it, run it.";
}
