using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Namra.ToolExecutor.Options;

namespace Namra.ToolExecutor.Tools.Shell;

/// <summary>
/// Where a shell tool's command runs. On Linux, in layers, each with the tools util-linux ships everywhere:
/// <list type="bullet">
/// <item>a private PID namespace with its own <c>/proc</c> (<c>unshare</c>), when the system allows one: the
/// executor and every other process are invisible, and when the command ends, or is killed, every process it
/// left behind ends with it;</item>
/// <item>otherwise its own process group (<c>setsid</c>), killed whole when the command ends or times out;</item>
/// <item>when the executor runs as root, another account (<see cref="ToolExecutorOptions.ShellUser"/>) with no
/// capabilities, and always no new privileges through set-user-id programs (<c>setpriv</c>).</item>
/// </list>
/// The executor itself is non-dumpable (<see cref="Native.MakeNonDumpable"/>), so even a command of the same
/// account cannot read its environment or memory.
/// </summary>
internal sealed class CommandSandbox(IOptions<ToolExecutorOptions> options, ILogger<CommandSandbox> logger)
{
    private readonly Lazy<Layers> _layers = new(() => Probe(options.Value, logger));

    /// <summary>Whether commands get a PID namespace of their own (else a process group).</summary>
    public bool HasPidNamespace => _layers.Value.PidNamespace;

    /// <summary>The start information that runs <paramref name="executable"/> inside the sandbox.</summary>
    public ProcessStartInfo StartInfo(string executable, IEnumerable<string> arguments)
    {
        var layers = _layers.Value;
        var start = new ProcessStartInfo(layers.Prefix.Count > 0 ? layers.Prefix[0] : executable);
        foreach (var argument in layers.Prefix.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        if (layers.Prefix.Count > 0)
        {
            start.ArgumentList.Add(executable);
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return start;
    }

    /// <summary>
    /// Ends the command and everything it started: the namespace goes with its first process (unshare's child dies
    /// with unshare), a process group is killed whole.
    /// </summary>
    public void KillAll(Process process)
    {
        if (!_layers.Value.PidNamespace)
        {
            Native.KillGroup(process.Id);
        }

        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // it had exited already
        }
    }

    private sealed record Layers(IReadOnlyList<string> Prefix, bool PidNamespace);

    private static Layers Probe(ToolExecutorOptions settings, ILogger logger)
    {
        if (!OperatingSystem.IsLinux())
        {
            return new Layers([], false);
        }

        var privileges = new List<string> { Find("setpriv") ?? "setpriv" };
        if (Native.IsRoot && settings.ShellUser.Length > 0)
        {
            var (uid, gid) = Account(settings.ShellUser)
                ?? throw new InvalidOperationException($"The account {settings.ShellUser} (Namra:ToolExecutor:ShellUser) does not exist here.");
            privileges.AddRange([$"--reuid={uid}", $"--regid={gid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]);
        }

        privileges.Add("--no-new-privs");
        privileges.Add("--");
        if (Find("setpriv") is null)
        {
            Log.ShellSandboxMissing(logger, "setpriv");
            privileges.Clear();
            if (Native.IsRoot)
            {
                throw new InvalidOperationException("setpriv (util-linux) is needed to run shell tools as another account than root.");
            }
        }

        if (settings.ShellIsolation == ShellIsolation.Auto && Find("unshare") is { } unshare)
        {
            string[] pidNamespace = [unshare, "--pid", "--fork", "--kill-child", "--mount-proc", "--ipc", "--"];
            if (Works([.. pidNamespace, .. privileges, "/bin/true"]))
            {
                return new Layers([.. pidNamespace, .. privileges], true);
            }
        }

        Log.ShellWithoutPidNamespace(logger);
        var setsid = Find("setsid") ?? throw new InvalidOperationException("setsid (util-linux) is needed to run shell tools.");
        return new Layers([setsid, .. privileges], false);
    }

    private static bool Works(string[] command)
    {
        try
        {
            var start = new ProcessStartInfo(command[0]) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var argument in command.Skip(1))
            {
                start.ArgumentList.Add(argument);
            }

            using var process = Process.Start(start)!;
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }

            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static readonly string[] SystemFolders = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

    private static string? Find(string program) => SystemFolders.Select(dir => Path.Combine(dir, program)).FirstOrDefault(File.Exists);

    private static (string Uid, string Gid)? Account(string name)
    {
        if (name.All(char.IsAsciiDigit))
        {
            return (name, name);
        }

        foreach (var line in File.ReadLines("/etc/passwd"))
        {
            var fields = line.Split(':');
            if (fields.Length >= 4 && fields[0] == name)
            {
                return (fields[2], fields[3]);
            }
        }

        return null;
    }
}
