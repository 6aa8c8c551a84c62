using Spectre.Console;

namespace Namra.Cli;

/// <summary>Where the CLI writes: a Spectre console for people (colored only on a terminal) and raw writers for machines.</summary>
internal sealed record CliConsole(IAnsiConsole Out, TextWriter RawOut, TextWriter Error, string WorkingDirectory, bool Interactive = false)
{
    /// <summary>
    /// Color only when standard output is a terminal, <c>NO_COLOR</c> is unset (no-color.org) and <c>TERM</c> is
    /// not <c>dumb</c>; piped output is plain text that tools can parse.
    /// </summary>
    public static CliConsole FromEnvironment()
    {
        var color = !Console.IsOutputRedirected
            && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"))
            && Environment.GetEnvironmentVariable("TERM") != "dumb";
        return Create(Console.Out, Console.Error, color, Environment.CurrentDirectory) with { Interactive = color };
    }

    public static CliConsole Create(TextWriter output, TextWriter error, bool color, string workingDirectory)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = color ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = color ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });

        // Diagnostics are lines for people and tools alike: never wrap them at the console's width.
        console.Profile.Width = 100_000;
        return new CliConsole(console, output, error, workingDirectory);
    }
}
