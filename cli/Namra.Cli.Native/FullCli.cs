using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Namra.Cli;

/// <summary>
/// The full CLI (<c>lib/namra</c> beside this executable: the runtime, the embedded services, <c>run</c> and
/// <c>chat</c>). On Linux and macOS this process becomes it (<c>execv</c>): same process id, terminal, signals and
/// exit code, nothing left waiting in between. On Windows it is started as a child and waited for.
/// </summary>
internal static partial class FullCli
{
    /// <summary>Exit code when the full CLI is missing (as a shell says for a command not found).</summary>
    public const int NotFound = 127;

    /// <summary>Exit code when it is there but could not be started.</summary>
    public const int NotStarted = 126;

    public static string Location { get; } = Path.Combine(AppContext.BaseDirectory, "lib", OperatingSystem.IsWindows() ? "namra.exe" : "namra");

    public static int Run(string[] args)
    {
        if (!File.Exists(Location))
        {
            Console.Error.WriteLine($"namra: this command needs the full CLI at {Location}, which is missing; publish cli/Namra.Cli.Native again (it installs both).");
            return NotFound;
        }

        if (OperatingSystem.IsWindows())
        {
            using var child = Process.Start(new ProcessStartInfo(Location, args) { UseShellExecute = false })!;
            child.WaitForExit();
            return child.ExitCode;
        }

        Exec(Location, args);

        // execv returns only when it failed.
        Console.Error.WriteLine($"namra: cannot start {Location}: {Marshal.GetLastPInvokeErrorMessage()}");
        return NotStarted;
    }

    private static void Exec(string path, string[] args)
    {
        // argv: the program, the arguments, and a null pointer at the end.
        var argv = new IntPtr[args.Length + 2];
        try
        {
            argv[0] = Marshal.StringToCoTaskMemUTF8(path);
            for (var i = 0; i < args.Length; i++)
            {
                argv[i + 1] = Marshal.StringToCoTaskMemUTF8(args[i]);
            }

            Console.Out.Flush();
            Console.Error.Flush();
            _ = Execv(argv[0], argv);
        }
        finally
        {
            foreach (var pointer in argv)
            {
                Marshal.FreeCoTaskMem(pointer);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true)]
    private static partial int Execv(IntPtr path, IntPtr[] argv);
}
