using System.Runtime.InteropServices;

namespace Namra.ToolExecutor.Tools;

/// <summary>The few Linux calls the tools' sandboxes need that .NET does not expose.</summary>
internal static partial class Native
{
    public const int SigKill = 9;
    private const int PrSetDumpable = 4;

    public static bool IsRoot => OperatingSystem.IsLinux() && GetEffectiveUserId() == 0;

    /// <summary>
    /// Marks this process non-dumpable: its <c>/proc/PID/environ</c>, <c>mem</c> and the like become readable only
    /// with <c>CAP_SYS_PTRACE</c>, so a command run by a tool (same account or not) cannot read the executor's
    /// environment or memory, where API keys live. Core dumps and debuggers attaching are refused as well.
    /// </summary>
    public static bool MakeNonDumpable() => OperatingSystem.IsLinux() && SetProcessOption(PrSetDumpable, 0, 0, 0, 0) == 0;

    /// <summary>Sends SIGKILL to every process of a process group.</summary>
    public static void KillGroup(int processGroup)
    {
        if (OperatingSystem.IsLinux() && processGroup > 1)
        {
            _ = Kill(-processGroup, SigKill);
        }
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int SetProcessOption(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
