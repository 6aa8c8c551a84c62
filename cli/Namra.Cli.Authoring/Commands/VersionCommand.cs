using System.CommandLine;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Namra.Cli.Commands;

internal static class VersionCommand
{
    public static Command Create(CliConsole console)
    {
        var command = new Command("version", "Print the version of namra and the .NET runtime.");
        command.SetAction(_ =>
        {
            console.RawOut.WriteLine($"namra {Version}");
            console.RawOut.WriteLine($"runtime {RuntimeInformation.FrameworkDescription} {RuntimeInformation.RuntimeIdentifier}");
            return 0;
        });
        return command;
    }

    public static string Version =>
        typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(VersionCommand).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
