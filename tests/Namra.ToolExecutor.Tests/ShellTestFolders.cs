namespace Namra.ToolExecutor.Tests;

/// <summary>Working directories for shell commands, which run as another account when the tests run as root.</summary>
internal static class ShellTestFolders
{
    public static string Create()
    {
        var folder = Directory.CreateTempSubdirectory("namra-shell-").FullName;
        if (OperatingSystem.IsWindows())
        {
            return folder;
        }

        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return folder;
    }
}
