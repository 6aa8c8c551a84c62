namespace Namra.Testing;

/// <summary>Places in the repository the tests read: examples, schemas, and the npm packages CI installs.</summary>
public static class RepositoryPaths
{
    /// <summary>The folder holding <c>Namra.sln</c>.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>A path under the repository root.</summary>
    public static string Combine(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>
    /// An npm package's file installed by <c>.ci/run</c> (<c>npm ci --prefix FOLDER</c>); fails with the command to run
    /// when it is missing, so a test never passes for want of its server.
    /// </summary>
    public static string NpmFile(string folder, string file)
    {
        var path = Combine(folder, "node_modules", file);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: run `npm ci --prefix {folder}`.");
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Namra.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Namra.sln not found above " + AppContext.BaseDirectory);
    }
}
