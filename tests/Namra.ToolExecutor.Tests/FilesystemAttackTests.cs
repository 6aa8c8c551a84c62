using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>
/// The filesystem tool against a folder that changes under it: a symbolic link swapped between the check and the
/// open, hard links to files outside, FIFOs that block a reader.
/// </summary>
public sealed class FilesystemAttackTests : IAsyncLifetime
{
    private readonly string _sandbox = Directory.CreateTempSubdirectory("namra-fs-attack-").FullName;
    private string _root = "";
    private string _outside = "";
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _root = Directory.CreateDirectory(Path.Combine(_sandbox, "root")).FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_sandbox, "outside")).FullName;
        Directory.CreateDirectory(Path.Combine(_root, "inside"));
        await File.WriteAllTextAsync(Path.Combine(_root, "inside", "secret.txt"), "inside text");
        await File.WriteAllTextAsync(Path.Combine(_outside, "secret.txt"), "OUTSIDE SECRET");
        _host = await NamraTestHost.StartAsync("tool-executor");
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_sandbox, recursive: true);
    }

    [Fact]
    public async Task ALinkSwappedDuringReadsAndWrites_NeverLeadsOutside()
    {
        var flip = Path.Combine(_root, "flip");
        File.CreateSymbolicLink(flip, Path.Combine(_root, "inside"));
        using var stop = new CancellationTokenSource();
        var swaps = 0;
        // Between the tool's check and its open, the link points out: rename(2) replaces it atomically, over and over.
        var swapper = Task.Run(() =>
        {
            var temporary = Path.Combine(_root, ".flip-next");
            while (!stop.IsCancellationRequested)
            {
                File.CreateSymbolicLink(temporary, swaps++ % 2 == 0 ? _outside : Path.Combine(_root, "inside"));
                Assert.Equal(0, Rename(temporary, flip));
            }
        });

        var leaked = 0;
        var writes = 0;
        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < 400; i++)
        {
            var read = await Call($"{{\"operation\":\"read\",\"path\":\"flip/secret.txt\"}}", readOnly: false);
            leaked += read.Content.Contains("OUTSIDE", StringComparison.Ordinal) ? 1 : 0;
            var write = await Call($"{{\"operation\":\"write\",\"path\":\"flip/written-{i}.txt\",\"content\":\"x\"}}", readOnly: false);
            writes += write.IsError ? 0 : 1;
        }

        await stop.CancelAsync();
        await swapper;

        Assert.True(swaps > 100, $"the link was swapped {swaps} times only");
        Assert.Equal(0, leaked);
        Assert.Equal(["secret.txt"], Directory.GetFiles(_outside).Select(Path.GetFileName));
        Assert.True(writes > 0, "no write went through while the link pointed inside");
    }

    [Fact]
    public async Task AWriteToAHardLink_ReplacesTheLinkNotTheFileOutside()
    {
        var outsideFile = Path.Combine(_outside, "secret.txt");
        Assert.Equal(0, Link(outsideFile, Path.Combine(_root, "hard.txt")));

        var result = await Call("{\"operation\":\"write\",\"path\":\"hard.txt\",\"content\":\"overwritten\"}", readOnly: false);

        Assert.False(result.IsError, result.Content);
        Assert.Equal("OUTSIDE SECRET", await File.ReadAllTextAsync(outsideFile));
        Assert.Equal("overwritten", await File.ReadAllTextAsync(Path.Combine(_root, "hard.txt")));
    }

    [Fact]
    public async Task AFifo_IsNotRead_AndDoesNotHoldASearch()
    {
        Assert.Equal(0, MakeFifo(Path.Combine(_root, "inside", "pipe"), 0x1B6));

        var read = await Call("{\"operation\":\"read\",\"path\":\"inside/pipe\"}", timeout: TimeSpan.FromSeconds(10));
        var search = await Call("{\"operation\":\"search\",\"query\":\"inside\"}", timeout: TimeSpan.FromSeconds(10));

        Assert.True(read.IsError);
        Assert.Contains("not a regular file", read.Content, StringComparison.Ordinal);
        Assert.False(search.IsError, search.Content);
        Assert.Contains("inside/secret.txt:1: inside text", search.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Writes_StopAtTheFoldersLimit()
    {
        var content = new string('x', 400);
        var results = new List<ToolResult>();
        for (var i = 0; i < 5; i++)
        {
            results.Add(await Call($"{{\"operation\":\"write\",\"path\":\"fill-{i}.txt\",\"content\":\"{content}\"}}", readOnly: false, maxFolderBytes: 1000));
        }

        var replaced = await Call($"{{\"operation\":\"write\",\"path\":\"fill-0.txt\",\"content\":\"{content}\"}}", readOnly: false, maxFolderBytes: 1000);

        // The folder starts with inside/secret.txt (11 bytes): two files of 400 fit, the third would pass 1,000.
        Assert.Equal([false, false, true, true, true], results.Select(r => r.IsError));
        Assert.Contains("would pass its limit of 1,000 (max_folder_bytes)", results[2].Content, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_root, "fill-2.txt")));
        Assert.False(replaced.IsError, replaced.Content); // replacing a file counts its new size, not both
    }

    [Fact]
    public async Task ALoopOfLinks_GetsAClearError()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "loop-a"), Path.Combine(_root, "loop-b"));
        File.CreateSymbolicLink(Path.Combine(_root, "loop-b"), Path.Combine(_root, "loop-a"));

        var result = await Call("{\"operation\":\"read\",\"path\":\"loop-a\"}");

        Assert.True(result.IsError);
        Assert.Contains("Too many levels of symbolic links", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AVeryLongPath_GetsAClearError()
    {
        var result = await Call($"{{\"operation\":\"read\",\"path\":\"{string.Join('/', Enumerable.Repeat(new string('a', 255), 16))}\"}}");

        Assert.True(result.IsError);
        Assert.Matches(@"^The path is too long: [\d,]+ bytes with the tool's folder, and a path may have at most 4,095\.$", result.Content);
    }

    [Fact]
    public async Task ANameLongerThanTheSystemAllows_GetsAClearError()
    {
        var result = await Call($"{{\"operation\":\"write\",\"path\":\"{new string('a', 300)}.txt\",\"content\":\"x\"}}", readOnly: false);

        Assert.True(result.IsError);
        Assert.Equal("The path is too long: a name in it has 304 bytes, and a file or folder name may have at most 255.", result.Content);
    }

    [Fact]
    public async Task ParallelWritesThatTogetherPassTheFoldersLimit_StopAtIt()
    {
        // Each write fits alone; measured at once, all of them would. The folder starts with 11 bytes, and empty files
        // that make each measuring take a while, as a real folder does.
        AddEmptyFiles("many", 3_000);
        var content = new string('x', 100);
        var writes = Enumerable.Range(0, 40).Select(i =>
            Call($"{{\"operation\":\"write\",\"path\":\"parallel-{i}.txt\",\"content\":\"{content}\"}}", readOnly: false, maxFolderBytes: 1000));

        var results = await Task.WhenAll(writes);

        Assert.Equal(9, results.Count(r => !r.IsError));
        Assert.All(results.Where(r => r.IsError), r => Assert.Contains("would pass its limit of 1,000", r.Content, StringComparison.Ordinal));
        Assert.True(FolderBytes() <= 1000, $"the folder holds {FolderBytes():N0} bytes");
    }

    [Fact]
    public async Task AWriteWhoseMeasuringOutlastsItsTimeout_EndsByIt_AndWritesNothing()
    {
        // The quota walk is synchronous work that used to finish whatever the deadline: the write landed after it.
        AddEmptyFiles("many", 20_000);

        var stopwatch = Stopwatch.StartNew();
        var result = await Call("{\"operation\":\"write\",\"path\":\"late.txt\",\"content\":\"too late\"}", readOnly: false, timeout: TimeSpan.FromMilliseconds(1));

        Assert.True(result.IsError, result.Content);
        Assert.Equal("The tool did not finish within 0.001 s and was stopped.", result.Content);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(5), $"took {stopwatch.Elapsed}");
        Assert.False(File.Exists(Path.Combine(_root, "late.txt")));
    }

    private void AddEmptyFiles(string folder, int count)
    {
        var path = Directory.CreateDirectory(Path.Combine(_root, folder)).FullName;
        for (var i = 0; i < count; i++)
        {
            File.Create(Path.Combine(path, i.ToString(System.Globalization.CultureInfo.InvariantCulture))).Dispose();
        }
    }

    private long FolderBytes() => new DirectoryInfo(_root).EnumerateFiles("*", SearchOption.AllDirectories).Sum(file => file.Length);

    private async Task<ToolResult> Call(string arguments, bool readOnly = true, TimeSpan? timeout = null, long maxFolderBytes = 64 * 1024 * 1024)
    {
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig
            {
                Name = "files",
                Type = ToolType.BuiltinFilesystem,
                Timeout = Duration.FromTimeSpan(timeout ?? TimeSpan.FromSeconds(30)),
                Filesystem = new FilesystemToolSettings { Root = _root, ReadOnly = readOnly, MaxFolderBytes = maxFolderBytes },
            },
            Call = new ToolCall { Id = "call_1", Name = "files", ArgumentsJson = arguments },
        });
        return response.Result;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int Link([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string target, [System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string linkPath);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "rename", SetLastError = true)]
    private static extern int Rename([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string from, [System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string to);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MakeFifo([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int mode);
}
