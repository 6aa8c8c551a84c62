using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// Opens files beneath a root folder without a window between check and use. <see cref="Jail"/> resolves a path's
/// symbolic links and checks that it stays inside; the resolved path is then opened one component at a time from a
/// handle on the root, each with <c>O_NOFOLLOW</c>, so a component swapped for a link meanwhile fails the open
/// instead of leading out. Writes go to a new file beside the target, renamed over it: a hard link to a file
/// outside is replaced, never written through.
/// </summary>
internal static partial class RootedFiles
{
    private const int ReadOnly = 0, WriteOnly = 1, Create = 0x40, Exclusive = 0x80, NoControllingTerminal = 0x100, NonBlocking = 0x800;
    private const int CloseOnExec = 0x80000, PathOnly = 0x200000;

    // x86-64 and the asm-generic architectures (arm64) number these two differently.
    private static readonly bool Generic = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.LoongArch64 or Architecture.RiscV64;
    private static readonly int Directory = Generic ? 0x4000 : 0x10000;
    private static readonly int NoFollow = Generic ? 0x8000 : 0x20000;
    private const int EmptyPath = 0x1000;
    private const int NoEntry = 2, Exists = 17, NotADirectory = 20, TooManyLinks = 40;

    /// <summary>What a file is.</summary>
    public enum Kind { Other, File, Folder }

    /// <summary>A file's type, size and number of hard links, read from its handle.</summary>
    public readonly record struct Status(Kind Kind, long Size, uint Links);

    /// <summary>Opens a folder beneath the root for listing (the handle's <c>/proc/self/fd</c> path reads it).</summary>
    public static SafeFileHandle OpenFolder(string root, string relative) => Walk(root, relative, ReadOnly | Directory, create: false);

    /// <summary>
    /// Opens a file beneath the root for reading. Opened without blocking, so a FIFO or a device does not hang the
    /// call; the caller checks <see cref="StatusOf"/> before reading.
    /// </summary>
    public static SafeFileHandle OpenForReading(string root, string relative) => Walk(root, relative, ReadOnly | NonBlocking | NoControllingTerminal, create: false);

    /// <summary>Writes <paramref name="content"/> as the file <paramref name="relative"/> beneath the root, creating folders on the way.</summary>
    public static void Write(string root, string relative, ReadOnlySpan<byte> content)
    {
        var name = Path.GetFileName(relative);
        using var folder = Walk(root, Path.GetDirectoryName(relative) ?? "", PathOnly | Directory, create: true);
        var temporary = $".{name}.{Guid.NewGuid():N}.namra-tmp";
        var fd = OpenAt((int)folder.DangerousGetHandle(), temporary, WriteOnly | Create | Exclusive | NoFollow | CloseOnExec, 0x1A4 /* 0644 */);
        Check(fd, relative);
        try
        {
            using (var file = new SafeFileHandle(fd, ownsHandle: true))
            {
                RandomAccess.Write(file, content, 0);
                RandomAccess.FlushToDisk(file);
            }

            Check(RenameAt((int)folder.DangerousGetHandle(), temporary, (int)folder.DangerousGetHandle(), name), relative);
        }
        catch
        {
            _ = UnlinkAt((int)folder.DangerousGetHandle(), temporary, 0);
            throw;
        }
    }

    /// <summary>The type, size and link count of an open file.</summary>
    public static Status StatusOf(SafeFileHandle handle)
    {
        Span<byte> buffer = stackalloc byte[256];
        Check(Statx((int)handle.DangerousGetHandle(), "", EmptyPath, 0x1 | 0x4 | 0x200 /* type, nlink, size */, ref MemoryMarshal.GetReference(buffer)), "");
        var mode = MemoryMarshal.Read<ushort>(buffer[28..]) & 0xF000;
        return new Status(mode switch { 0x8000 => Kind.File, 0x4000 => Kind.Folder, _ => Kind.Other },
            MemoryMarshal.Read<long>(buffer[40..]), MemoryMarshal.Read<uint>(buffer[16..]));
    }

    private static SafeFileHandle Walk(string root, string relative, int flags, bool create)
    {
        var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = Open(root, PathOnly | Directory | CloseOnExec);
        Check(current, root);
        for (var i = 0; i < parts.Length; i++)
        {
            if (parts[i] is "." or "..")
            {
                _ = Close(current);
                throw new IOException($"'{relative}' is not a resolved path.");
            }

            var last = i == parts.Length - 1;
            var next = OpenAt(current, parts[i], (last ? flags : PathOnly | Directory) | NoFollow | CloseOnExec, 0);
            if (next < 0 && create && Marshal.GetLastPInvokeError() == NoEntry)
            {
                var made = MakeFolderAt(current, parts[i], 0x1ED /* 0755 */);
                if (made == 0 || Marshal.GetLastPInvokeError() == Exists)
                {
                    next = OpenAt(current, parts[i], (last ? flags : PathOnly | Directory) | NoFollow | CloseOnExec, 0);
                }
            }

            var error = Marshal.GetLastPInvokeError();
            _ = Close(current);
            if (next < 0)
            {
                throw Failure(error, relative);
            }

            current = next;
        }

        return new SafeFileHandle(current, ownsHandle: true);
    }

    private static void Check(int result, string path)
    {
        if (result < 0)
        {
            throw Failure(Marshal.GetLastPInvokeError(), path);
        }
    }

    private static IOException Failure(int error, string path) => error switch
    {
        TooManyLinks or NotADirectory => new PathChangedException(path),
        NoEntry => new FileNotFoundException($"'{path}' does not exist.", path),
        _ => new IOException($"'{path}': {new Win32Exception(error).Message}."),
    };

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(int folder, string name, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MakeFolderAt(int folder, string name, int mode);

    [LibraryImport("libc", EntryPoint = "renameat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt(int fromFolder, string from, int toFolder, string to);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkAt(int folder, string name, int flags);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int folder, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}

/// <summary>A component of a checked path became a symbolic link (or stopped being a folder) before it was opened.</summary>
internal sealed class PathChangedException(string path)
    : IOException($"'{path}' changed while it was being opened (a part of it became a symbolic link); nothing was read or written.");
