using System.Text;
using System.Text.Json;
using Namra.Contracts.V1;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>builtin.filesystem</c>: read, write, list and search files under the configured <c>root</c>, and nothing
/// outside it: absolute paths, <c>..</c> that climbs out, NUL bytes and symbolic links whose target lies outside
/// are refused, and files are opened through <see cref="RootedFiles"/>, so a link swapped in after the check leads
/// nowhere. Only regular files are read: a FIFO or a device is opened without blocking, seen not to be a file, and
/// never read. Read-only unless <c>read_only: false</c>; files larger than <c>max_file_bytes</c> are refused, and
/// writes that would take the folder past <c>max_folder_bytes</c>.
/// </summary>
internal sealed class FilesystemTool : ITool
{
    private const int MaxListEntries = 1000;
    private const int MaxSearchFiles = 2000;
    private const int MaxSearchMatches = 100;
    private const long DefaultMaxFileBytes = 1024 * 1024;
    private const long DefaultMaxFolderBytes = 64 * 1024 * 1024;
    private const int MaxQuotaEntries = 100_000;

    // Linux's PATH_MAX (4,096 bytes with the closing NUL) for a whole path, the tool's folder included; NAME_MAX for each name.
    private const int MaxPathBytes = 4095;
    private const int MaxNameBytes = 255;

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

    public bool IsAlwaysIdempotent(ToolConfig config) => Settings.From(config).ReadOnly;

    public bool IsIdempotent(ToolConfig config, JsonElement arguments) =>
        arguments.TryGetProperty("operation", out var operation) && operation.GetString() is "read" or "list" or "search";

    public Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken) =>
        Task.FromResult(Execute(config, arguments, cancellationToken));

    private static ToolOutcome Execute(ToolConfig config, JsonElement arguments, CancellationToken cancellationToken)
    {
        var settings = Settings.From(config);
        if (!Directory.Exists(settings.Root))
        {
            return ToolOutcome.Error("The tool's folder does not exist on the tool executor.");
        }

        var path = arguments.TryGetProperty("path", out var p) ? p.GetString() ?? "" : "";
        if (LengthProblem(settings.Root, path) is { } tooLong)
        {
            return ToolOutcome.Error(tooLong);
        }

        try
        {
            // Resolving links can fail too (a loop of links, a name too long): said as the system says it, below.
            if (Jail.Resolve(settings.Root, path) is not { } place)
            {
                return ToolOutcome.Error($"'{path}' is outside the tool's folder; use a path relative to it, without '..' that leaves it.");
            }

            return arguments.GetProperty("operation").GetString() switch
            {
                "read" => Read(place, path, settings, cancellationToken),
                "write" => Write(place, path, arguments, settings, cancellationToken),
                "list" => List(place, path, cancellationToken),
                _ => Search(place, arguments.TryGetProperty("query", out var q) ? q.GetString() ?? "" : "", settings, cancellationToken),
            };
        }
        catch (FileNotFoundException)
        {
            return ToolOutcome.Error($"'{path}' does not exist.");
        }
        catch (IOException exception)
        {
            // A path that changed under the tool, a full disk, a name too long: said as the system says it.
            return ToolOutcome.Error(exception.Message);
        }
        catch (UnauthorizedAccessException)
        {
            return ToolOutcome.Error($"The tool executor may not access '{path}'.");
        }
    }

    // The system's limits, said before the system refuses with a bare "File name too long".
    private static string? LengthProblem(string root, string path)
    {
        var longestName = path.Split('/').Max(name => Encoding.UTF8.GetByteCount(name));
        if (longestName > MaxNameBytes)
        {
            return $"The path is too long: a name in it has {longestName:N0} bytes, and a file or folder name may have at most {MaxNameBytes:N0}.";
        }

        var whole = Encoding.UTF8.GetByteCount(Path.Join(root, path));
        return whole > MaxPathBytes
            ? $"The path is too long: {whole:N0} bytes with the tool's folder, and a path may have at most {MaxPathBytes:N0}."
            : null;
    }

    private static ToolOutcome Read(Jail.Place place, string path, Settings settings, CancellationToken cancellationToken)
    {
        using var file = RootedFiles.OpenForReading(place.RealRoot, place.Real);
        var status = RootedFiles.StatusOf(file);
        if (status.Kind != RootedFiles.Kind.File)
        {
            return ToolOutcome.Error(status.Kind == RootedFiles.Kind.Folder ? $"'{path}' is a folder; use list."
                : $"'{path}' is not a regular file (a FIFO, a socket or a device), which this tool does not read.");
        }

        if (status.Size > settings.MaxFileBytes)
        {
            return ToolOutcome.Error($"'{path}' is {status.Size:N0} bytes; the limit is {settings.MaxFileBytes:N0}.");
        }

        var bytes = ReadBounded(file, settings.MaxFileBytes, cancellationToken);
        return bytes is null ? ToolOutcome.Error($"'{path}' grew past the limit of {settings.MaxFileBytes:N0} bytes while it was read.")
            : Array.IndexOf(bytes, (byte)0) >= 0 ? ToolOutcome.Error($"'{path}' is a binary file, not text.")
            : new ToolOutcome(Encoding.UTF8.GetString(bytes));
    }

    // At most max bytes, whatever the size said before: null when the file holds more.
    private static byte[]? ReadBounded(Microsoft.Win32.SafeHandles.SafeFileHandle file, long max, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int read;
        while ((read = RandomAccess.Read(file, chunk, buffer.Length)) > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (buffer.Length + read > max)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static ToolOutcome Write(Jail.Place place, string path, JsonElement arguments, Settings settings, CancellationToken cancellationToken)
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

        if (path.Length == 0 || Directory.Exists(place.Full))
        {
            return ToolOutcome.Error($"'{path}' is a folder; name a file.");
        }

        // Measuring then writing is one step per folder: parallel writes that each fit alone would together pass the limit.
        var writing = WritesTo.GetOrAdd(place.RealRoot, static _ => new SemaphoreSlim(1, 1));
        writing.Wait(cancellationToken);
        try
        {
            var replaced = File.Exists(place.Full) ? new FileInfo(place.Full).Length : 0;
            if (FolderBytes(place.RealRoot, cancellationToken) is not { } used)
            {
                return ToolOutcome.Error($"The folder holds more than {MaxQuotaEntries:N0} entries, too many to measure against its limit; nothing was written.");
            }

            if (used - replaced + bytes.Length > settings.MaxFolderBytes)
            {
                return ToolOutcome.Error($"The folder holds {used:N0} bytes; writing {bytes.Length:N0} more would pass its limit of {settings.MaxFolderBytes:N0} (max_folder_bytes). Nothing was written.");
            }

            cancellationToken.ThrowIfCancellationRequested();
            RootedFiles.Write(place.RealRoot, place.Real, bytes);
            return new ToolOutcome($"Wrote {bytes.Length:N0} bytes to {path}.");
        }
        finally
        {
            writing.Release();
        }
    }

    // One gate per tool folder, for the life of the process: the folders are the operator's (a handful), never the model's.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> WritesTo = new(StringComparer.Ordinal);

    // Listed through the folder's open handle, so the names are the opened folder's even if its path changes.
    private static ToolOutcome List(Jail.Place place, string path, CancellationToken cancellationToken)
    {
        using var folder = OpenFolderOrNull(place);
        if (folder is null)
        {
            return ToolOutcome.Error($"'{path}' is a file; use read.");
        }

        var entries = new DirectoryInfo(Opened(folder)).EnumerateFileSystemInfos()
            .Select(entry =>
            {
                // A folder of millions of entries is read whole to be sorted: the call's deadline stops the reading.
                cancellationToken.ThrowIfCancellationRequested();
                return entry;
            })
            .OrderBy(e => e.Name, StringComparer.Ordinal)
            .Take(MaxListEntries + 1)
            .Select(e => e is DirectoryInfo ? Path.Join(place.Relative, e.Name) + "/" : $"{Path.Join(place.Relative, e.Name)} ({((FileInfo)e).Length:N0} bytes)")
            .ToList();
        var more = entries.Count > MaxListEntries ? $"\n(more than {MaxListEntries} entries; list a subfolder)" : "";
        return new ToolOutcome(entries.Count == 0 ? "(empty)" : string.Join('\n', entries.Take(MaxListEntries)) + more);
    }

    private static ToolOutcome Search(Jail.Place place, string query, Settings settings, CancellationToken cancellationToken)
    {
        if (query.Length == 0)
        {
            return ToolOutcome.Error("search needs a query.");
        }

        using var folder = OpenFolderOrNull(place);
        if (folder is null)
        {
            return ToolOutcome.Error("search looks in a folder; give a folder path, or none for the whole tool folder.");
        }

        var opened = Opened(folder);
        var matches = new List<string>();
        var scanned = 0;
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        foreach (var found in Directory.EnumerateFiles(opened, "*", options))
        {
            if (++scanned > MaxSearchFiles || matches.Count >= MaxSearchMatches)
            {
                break;
            }

            cancellationToken.ThrowIfCancellationRequested();
            var inside = Path.GetRelativePath(opened, found);
            byte[]? bytes;
            try
            {
                // Each file is opened from the root again, refusing links: the enumeration only suggests names.
                using var file = RootedFiles.OpenForReading(place.RealRoot, Path.Join(place.Real, inside));
                var status = RootedFiles.StatusOf(file);
                bytes = status.Kind == RootedFiles.Kind.File && status.Size <= settings.MaxFileBytes ? ReadBounded(file, settings.MaxFileBytes, cancellationToken) : null;
            }
            catch (IOException)
            {
                continue; // gone, or changed into a link, since it was listed
            }

            if (bytes is null || Array.IndexOf(bytes, (byte)0) >= 0)
            {
                continue;
            }

            var lines = Encoding.UTF8.GetString(bytes).Split('\n');
            for (var i = 0; i < lines.Length && matches.Count < MaxSearchMatches; i++)
            {
                if (lines[i].Contains(query, StringComparison.OrdinalIgnoreCase))
                {
                    matches.Add($"{Path.Join(place.Relative, inside)}:{i + 1}: {Trim(lines[i].TrimEnd('\r'))}");
                }
            }
        }

        return new ToolOutcome(matches.Count == 0 ? $"No file contains '{query}'." : string.Join('\n', matches));
    }

    private static Microsoft.Win32.SafeHandles.SafeFileHandle? OpenFolderOrNull(Jail.Place place)
    {
        try
        {
            return RootedFiles.OpenFolder(place.RealRoot, place.Real);
        }
        catch (PathChangedException) when (!Directory.Exists(place.Full))
        {
            return null; // a file, not a folder
        }
    }

    // The open folder as a path: the kernel's link to the handle itself, whatever happens to the names leading to it.
    private static string Opened(Microsoft.Win32.SafeHandles.SafeFileHandle folder) => $"/proc/self/fd/{folder.DangerousGetHandle()}";

    // The bytes of every file under the root, links not followed; null past MaxQuotaEntries entries. The walk can be
    // long (a deep tree, a slow disk): it stops at the call's deadline rather than writing after the call has ended.
    private static long? FolderBytes(string root, CancellationToken cancellationToken)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        long total = 0;
        var entries = 0;
        foreach (var file in new DirectoryInfo(root).EnumerateFiles("*", options))
        {
            if (++entries > MaxQuotaEntries)
            {
                return null;
            }

            cancellationToken.ThrowIfCancellationRequested();
            total += file.Length;
        }

        return total;
    }

    private static string Trim(string line) => line.Length <= 300 ? line.Trim() : string.Concat(line.AsSpan(0, 297), "...");

    private sealed record Settings(string Root, bool ReadOnly, long MaxFileBytes, long MaxFolderBytes)
    {
        public static Settings From(ToolConfig config)
        {
            var files = config.Filesystem ?? new FilesystemToolSettings();
            return new Settings(
                Path.GetFullPath(files.Root.Length > 0 ? files.Root : "."),
                !files.HasReadOnly || files.ReadOnly,
                files.MaxFileBytes > 0 ? files.MaxFileBytes : DefaultMaxFileBytes,
                files.MaxFolderBytes > 0 ? files.MaxFolderBytes : DefaultMaxFolderBytes);
        }
    }
}

/// <summary>Keeps paths inside a root folder, following symbolic links to where they really point.</summary>
internal static class Jail
{
    /// <summary>Where a path leads: as written (full and relative to the root) and with its links resolved (relative to the real root).</summary>
    public sealed record Place(string Full, string Relative, string RealRoot, string Real);

    /// <summary>Where <paramref name="relative"/> leads under <paramref name="root"/>, or null when it would leave it.</summary>
    public static Place? Resolve(string root, string relative)
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

        // Symbolic links anywhere on the path are followed; the place they lead must be inside too. The file is then
        // opened at that place by RootedFiles, which refuses links, so a link made after this check leads nowhere.
        var real = RealPath(full);
        return Inside(realRoot, real)
            ? new Place(full, Path.GetRelativePath(realRoot, full) is "." ? "" : Path.GetRelativePath(realRoot, full), realRoot,
                Path.GetRelativePath(realRoot, real) is "." ? "" : Path.GetRelativePath(realRoot, real))
            : null;
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
