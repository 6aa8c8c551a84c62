namespace Namra.Orchestrator.Tests;

/// <summary>
/// Where <c>namra-server</c> is started from costs it nothing: it reads its settings once, at start, and watches no
/// folder under its working directory (a configuration watch there took one inotify watch per folder, and 55 ms of a
/// start from a source tree of 3,400 folders; a home directory can exhaust the system's watches).
/// </summary>
public sealed class ServerWorkingDirectoryTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("namra-cwd-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void AServerStartedInAFolderOfManyFolders_WatchesNoneOfThem()
    {
        for (var i = 0; i < 300; i++)
        {
            Directory.CreateDirectory(Path.Combine(_folder, $"project-{i}", "src"));
        }

        using var server = ServerProcess.Start("memory", workingDirectory: _folder);

        var watches = InotifyWatches(server.ProcessId);
        Assert.True(watches < 20, $"namra-server holds {watches} inotify watches in a folder of 600 folders");
    }

    // Every inotify instance of the process lists one "inotify wd:" line per watch in its fdinfo.
    private static int InotifyWatches(int pid) =>
        Directory.GetFiles($"/proc/{pid}/fdinfo").Sum(fd =>
        {
            try
            {
                return File.ReadLines(fd).Count(line => line.StartsWith("inotify wd:", StringComparison.Ordinal));
            }
            catch (IOException)
            {
                return 0; // closed while read
            }
        });
}
