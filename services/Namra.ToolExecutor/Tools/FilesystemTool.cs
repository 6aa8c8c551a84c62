using System.Text;
using System.Text.Json;
using Namra.Contracts.V1;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>builtin.filesystem</c>: read, write, list and search files under the configured <c>root</c>, and nothing
/// outside it: absolute paths, <c>..</c> that climbs out, NUL bytes and symbolic links whose target lies outside
/// are refused. Read-only unless <c>read_only: false</c>; files larger than <c>max_file_bytes</c> are refused.
/// </summary>
internal sealed class FilesystemTool : ITool
{
    private const int MaxListEntries = 1000;
    private const int MaxSearchFiles = 2000;
    private const int MaxSearchMatches = 100;
    private const long DefaultMaxFileBytes = 1024 * 1024;

    private const string Schema = """
        {"type":"object","properties":{"operation":{"enum":["read","write","list","search"],"description":"read a file, write a file, list a folder, or search files for text"},"path":{"type":"string","maxLength":4096,"description":"Path relative to the tool's folder; the folder itself when empty"},"content":{"type":"string","description":"Text to write (write only)"},"query":{"type":"string","minLength":1,"maxLength":1000,"description":"Text to find, ignoring case (search only)"}},"required":["operation"],"additionalProperties":false}
        """;

    public ToolType Type => ToolType.BuiltinFilesystem;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken)
    {
        var readOnly = Settings.From(config).ReadOnly;
        var description = config.Description.Length > 0 ? config.Description
            : $"Reads{(readOnly ? "" : ", writes")}, lists and searches the files of one folder. Paths are relative to that folder.";
        return Task.FromResult<IReadOnlyList<ToolDescription>>([new ToolDescription(config.Name, description, Schema)]);
    }

    public async Task<ToolOutcome> ExecuteAsync(ToolConfig config, string toolName, JsonElement arguments, CancellationToken cancellationToken)
    {
        var settings = Settings.From(config);
        if (!Directory.Exists(settings.Root))
        {
            return ToolOutcome.Error("The tool's folder does not exist on the tool executor.");
        }

        var path = arguments.TryGetProperty("path", out var p) ? p.GetString() ?? "" : "";
        if (Jail.Resolve(settings.Root, path) is not { } target)
        {
            return ToolOutcome.Error($"'{path}' is outside the tool's folder; use a path relative to it, without '..' that leaves it.");
        }

        var operation = arguments.GetProperty("operation").GetString();
        return operation switch
        {
            "read" => await ReadAsync(target, path, settings, cancellationToken).ConfigureAwait(false),
            "write" => await WriteAsync(target, path, arguments, settings, cancellationToken).ConfigureAwait(false),
            "list" => List(target, path, settings.Root),
            _ => await SearchAsync(target, arguments.TryGetProperty("query", out var q) ? q.GetString() ?? "" : "", settings, cancellationToken).ConfigureAwait(false),
        };
    }

    private static async Task<ToolOutcome> ReadAsync(string target, string path, Settings settings, CancellationToken cancellationToken)
    {
        var file = new FileInfo(target);
        if (!file.Exists)
        {
            return ToolOutcome.Error(Directory.Exists(target) ? $"'{path}' is a folder; use list." : $"'{path}' does not exist.");
        }

        if (file.Length > settings.MaxFileBytes)
        {
            return ToolOutcome.Error($"'{path}' is {file.Length:N0} bytes; the limit is {settings.MaxFileBytes:N0}.");
        }

        var bytes = await File.ReadAllBytesAsync(target, cancellationToken).ConfigureAwait(false);
        return Array.IndexOf(bytes, (byte)0) >= 0
            ? ToolOutcome.Error($"'{path}' is a binary file, not text.")
            : new ToolOutcome(Encoding.UTF8.GetString(bytes));
    }

    private static async Task<ToolOutcome> WriteAsync(string target, string path, JsonElement arguments, Settings settings, CancellationToken cancellationToken)
    {
        if (settings.ReadOnly)
        {
            return ToolOutcome.Error("This folder is read-only for the agent.");
        }

        if (!arguments.TryGetProperty("content", out var contentElement) || contentElement.GetString() is not { } content)
        {
            return ToolOutcome.Error("write needs the content to write.");
        }

        var bytes = Encoding.UTF8.GetBytes(content);
        if (bytes.Length > settings.MaxFileBytes)
        {
            return ToolOutcome.Error($"The content is {bytes.Length:N0} bytes; the limit is {settings.MaxFileBytes:N0}.");
        }

        if (path.Length == 0 || Directory.Exists(target))
        {
            return ToolOutcome.Error($"'{path}' is a folder; name a file.");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        await File.WriteAllBytesAsync(target, bytes, cancellationToken).ConfigureAwait(false);
        return new ToolOutcome($"Wrote {bytes.Length:N0} bytes to {path}.");
    }

    private static ToolOutcome List(string target, string path, string root)
    {
        if (!Directory.Exists(target))
        {
            return ToolOutcome.Error(File.Exists(target) ? $"'{path}' is a file; use read." : $"'{path}' does not exist.");
        }

        var entries = new DirectoryInfo(target).EnumerateFileSystemInfos()
            .OrderBy(e => e.Name, StringComparer.Ordinal)
            .Take(MaxListEntries + 1)
            .Select(e => e is DirectoryInfo ? Path.GetRelativePath(root, e.FullName) + "/" : $"{Path.GetRelativePath(root, e.FullName)} ({((FileInfo)e).Length:N0} bytes)")
            .ToList();
        var more = entries.Count > MaxListEntries ? $"\n(more than {MaxListEntries} entries; list a subfolder)" : "";
        return new ToolOutcome(entries.Count == 0 ? "(empty)" : string.Join('\n', entries.Take(MaxListEntries)) + more);
    }

    private static async Task<ToolOutcome> SearchAsync(string target, string query, Settings settings, CancellationToken cancellationToken)
    {
        if (query.Length == 0)
        {
            return ToolOutcome.Error("search needs a query.");
        }

        if (!Directory.Exists(target))
        {
            return ToolOutcome.Error("search looks in a folder; give a folder path, or none for the whole tool folder.");
        }

        var matches = new List<string>();
        var scanned = 0;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        foreach (var file in Directory.EnumerateFiles(target, "*", options))
        {
            if (++scanned > MaxSearchFiles || matches.Count >= MaxSearchMatches)
            {
                break;
            }

            var info = new FileInfo(file);
            if (info.Length > settings.MaxFileBytes)
            {
                continue;
            }

            var lines = await File.ReadAllLinesAsync(file, cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < lines.Length && matches.Count < MaxSearchMatches; i++)
            {
                if (lines[i].Contains(query, StringComparison.OrdinalIgnoreCase) && !lines[i].Contains('\0', StringComparison.Ordinal))
                {
                    matches.Add($"{Path.GetRelativePath(settings.Root, file)}:{i + 1}: {Trim(lines[i])}");
                }
            }
        }

        return new ToolOutcome(matches.Count == 0 ? $"No file contains '{query}'." : string.Join('\n', matches));
    }

    private static string Trim(string line) => line.Length <= 300 ? line.Trim() : string.Concat(line.AsSpan(0, 297), "...");

    private sealed record Settings(string Root, bool ReadOnly, long MaxFileBytes)
    {
        public static Settings From(ToolConfig config)
        {
            var fields = config.Config?.Fields;
            var root = fields?.TryGetValue("root", out var r) == true ? r.StringValue : "";
            var readOnly = fields?.TryGetValue("read_only", out var ro) != true || ro.BoolValue;
            var max = fields?.TryGetValue("max_file_bytes", out var m) == true ? (long)m.NumberValue : DefaultMaxFileBytes;
            return new Settings(Path.GetFullPath(root.Length > 0 ? root : "."), readOnly, max);
        }
    }
}

/// <summary>Keeps paths inside a root folder, following symbolic links to where they really point.</summary>
internal static class Jail
{
    /// <summary>The full path <paramref name="relative"/> names under <paramref name="root"/>, or null when it would leave it.</summary>
    public static string? Resolve(string root, string relative)
    {
        if (relative.Contains('\0', StringComparison.Ordinal) || Path.IsPathRooted(relative))
        {
            return null;
        }

        var realRoot = RealPath(Path.GetFullPath(root));
        var full = Path.GetFullPath(Path.Combine(realRoot, relative));
        if (!Inside(realRoot, full))
        {
            return null;
        }

        // Symbolic links anywhere on the path are followed; the place they lead must be inside too.
        return Inside(realRoot, RealPath(full)) ? full : null;
    }

    private static bool Inside(string root, string path) =>
        path == root || path.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private const int MaxLinkHops = 40;

    // The path with every symbolic link on it resolved, dangling ones included (a write through a dangling link
    // would create its target), like realpath(3); parts that do not exist are kept as written.
    private static string RealPath(string path, int hops = 0)
    {
        var parts = path.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        var current = Path.GetPathRoot(path) ?? "/";
        foreach (var part in parts)
        {
            var next = Path.Combine(current, part);
            if (new FileInfo(next).LinkTarget is { } target)
            {
                if (hops >= MaxLinkHops)
                {
                    throw new IOException("Too many levels of symbolic links.");
                }

                // The target may itself pass through links: resolve it whole, again.
                next = RealPath(Path.GetFullPath(target, current), hops + 1);
            }

            current = next;
        }

        return current;
    }
}
