using System.Diagnostics;
using System.Runtime.InteropServices;
using Namra.Testing;

namespace Namra.Cli.NativeTests;

/// <summary><c>dotnet publish</c> of a project of this repository for this machine, as an operator runs it.</summary>
internal static class Publish
{
    // The fixtures of different classes start together, and two publishes for one runtime share the intermediate
    // folders of the projects they both build (protobuf code generated into obj/ among them): one at a time.
    private static readonly SemaphoreSlim OneAtATime = new(1, 1);

    /// <summary>Publishes <paramref name="project"/> (relative to the repository) into <paramref name="folder"/>; fails unless <paramref name="executable"/> results.</summary>
    public static async Task RunAsync(string project, string folder, string executable, params string[] properties)
    {
        await OneAtATime.WaitAsync();
        try
        {
            await RunAloneAsync(project, folder, executable, properties);
        }
        finally
        {
            OneAtATime.Release();
        }
    }

    private static async Task RunAloneAsync(string project, string folder, string executable, string[] properties)
    {
        var start = new ProcessStartInfo("dotnet",
            ["publish", Path.Combine(RepositoryPaths.Root, project), "-c", "Release", "-r", RuntimeInformation.RuntimeIdentifier, .. properties, "-o", folder, "-nologo"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };

        // The test host's MSBuild settings are not the publish's.
        foreach (var name in new[] { "MSBUILD_EXE_PATH", "MSBuildExtensionsPath", "MSBuildSDKsPath" })
        {
            start.Environment.Remove(name);
        }

        using var publish = Process.Start(start)!;
        var output = publish.StandardOutput.ReadToEndAsync();
        var error = publish.StandardError.ReadToEndAsync();
        await publish.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(10));
        if (publish.ExitCode != 0 || !File.Exists(executable))
        {
            throw new InvalidOperationException($"Publishing {project} failed ({publish.ExitCode}):\n{await output}\n{await error}");
        }
    }
}
