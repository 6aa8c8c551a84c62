using Namra.Contracts.V1;
using Namra.Testing;

namespace Namra.ToolExecutor.Tests;

/// <summary>The filesystem tool over gRPC, and the ways out of its folder that must stay shut.</summary>
public sealed class FilesystemToolTests : IAsyncLifetime
{
    private readonly string _sandbox = Directory.CreateTempSubdirectory("namra-fs-").FullName;
    private readonly string _outside = Directory.CreateTempSubdirectory("namra-outside-").FullName;
    private string _root = "";
    private NamraTestHost _host = null!;
    private ToolExecutorService.ToolExecutorServiceClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _root = Directory.CreateDirectory(Path.Combine(_sandbox, "root")).FullName;
        await File.WriteAllTextAsync(Path.Combine(_root, "notes.txt"), "first line\nThe Answer is 42\n");
        Directory.CreateDirectory(Path.Combine(_root, "docs"));
        await File.WriteAllTextAsync(Path.Combine(_root, "docs", "readme.md"), "# Readme\nanswer: see notes\n");
        await File.WriteAllTextAsync(Path.Combine(_outside, "secret.txt"), "TOP SECRET");
        await File.WriteAllBytesAsync(Path.Combine(_root, "image.bin"), [1, 0, 2]);
        File.CreateSymbolicLink(Path.Combine(_root, "escape"), _outside);
        File.CreateSymbolicLink(Path.Combine(_root, "escape-file"), Path.Combine(_outside, "secret.txt"));
        File.CreateSymbolicLink(Path.Combine(_root, "dangling"), Path.Combine(_outside, "created-through-link.txt"));
        File.CreateSymbolicLink(Path.Combine(_root, "inside-link"), Path.Combine(_root, "docs"));
        _host = await NamraTestHost.StartAsync("tool-executor");
        _client = new ToolExecutorService.ToolExecutorServiceClient(_host.Channel);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_sandbox, recursive: true);
        Directory.Delete(_outside, recursive: true);
    }

    [Fact]
    public async Task Read_List_Search_WorkInsideTheFolder()
    {
        var read = await Call("{\"operation\":\"read\",\"path\":\"notes.txt\"}");
        var list = await Call("{\"operation\":\"list\",\"path\":\"docs\"}");
        var search = await Call("{\"operation\":\"search\",\"query\":\"ANSWER\"}");
        var throughInsideLink = await Call("{\"operation\":\"read\",\"path\":\"inside-link/readme.md\"}");

        Assert.Equal("first line\nThe Answer is 42\n", read.Content);
        Assert.Equal($"docs/readme.md ({new FileInfo(Path.Combine(_root, "docs", "readme.md")).Length} bytes)", list.Content);
        Assert.Contains("notes.txt:2: The Answer is 42", search.Content, StringComparison.Ordinal);
        Assert.Contains("docs/readme.md:2: answer: see notes", search.Content, StringComparison.Ordinal);
        Assert.False(throughInsideLink.IsError, throughInsideLink.Content);
    }

    [Theory]
    [InlineData("../outside.txt")]
    [InlineData("docs/../../etc/passwd")]
    [InlineData("/etc/passwd")]
    [InlineData("escape/secret.txt")]
    [InlineData("escape-file")]
    [InlineData("notes.txt\u0000.png")]
    public async Task Paths_ThatLeaveTheFolder_AreRefused(string path)
    {
        var result = await Call($"{{\"operation\":\"read\",\"path\":{System.Text.Json.JsonSerializer.Serialize(path)}}}");

        Assert.True(result.IsError);
        Assert.Contains("outside the tool's folder", result.Content, StringComparison.Ordinal);
        Assert.DoesNotContain("TOP SECRET", result.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Write_IsRefusedWhenReadOnly_AndNothingIsWritten()
    {
        var result = await Call("{\"operation\":\"write\",\"path\":\"new.txt\",\"content\":\"x\"}");

        Assert.True(result.IsError);
        Assert.False(File.Exists(Path.Combine(_root, "new.txt")));
    }

    [Fact]
    public async Task Write_WhenWritable_CreatesTheFile_ButNeverThroughALinkOut()
    {
        var written = await Call("{\"operation\":\"write\",\"path\":\"out/new.txt\",\"content\":\"hello\"}", readOnly: false);
        var throughDangling = await Call("{\"operation\":\"write\",\"path\":\"dangling\",\"content\":\"pwned\"}", readOnly: false);

        Assert.False(written.IsError, written.Content);
        Assert.Equal("hello", await File.ReadAllTextAsync(Path.Combine(_root, "out", "new.txt")));
        Assert.True(throughDangling.IsError);
        Assert.False(File.Exists(Path.Combine(_outside, "created-through-link.txt")));
    }

    [Fact]
    public async Task Read_RefusesBinaryAndOversizedFiles()
    {
        var binary = await Call("{\"operation\":\"read\",\"path\":\"image.bin\"}");
        var large = await Call("{\"operation\":\"read\",\"path\":\"notes.txt\"}", maxFileBytes: 10);

        Assert.Contains("binary", binary.Content, StringComparison.Ordinal);
        Assert.Contains("the limit is 10", large.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AResumedRead_RunsAgain_AResumedWrite_DoesNotAndSaysItsOutcomeIsUnknown()
    {
        var read = await Call("{\"operation\":\"read\",\"path\":\"notes.txt\"}", resumed: true);
        var write = await Call("{\"operation\":\"write\",\"path\":\"again.txt\",\"content\":\"twice?\"}", readOnly: false, resumed: true);

        Assert.Contains("The Answer is 42", read.Content, StringComparison.Ordinal);
        Assert.True(write.IsError);
        Assert.Contains("outcome is unknown", write.Content, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_root, "again.txt")));
    }

    private async Task<ToolResult> Call(string arguments, bool readOnly = true, int maxFileBytes = 1_048_576, bool resumed = false)
    {
        var response = await _client.ExecuteToolAsync(new ExecuteToolRequest
        {
            Tool = new ToolConfig
            {
                Name = "files",
                Type = ToolType.BuiltinFilesystem,
                Filesystem = new FilesystemToolSettings { Root = _root, ReadOnly = readOnly, MaxFileBytes = maxFileBytes },
            },
            Call = new ToolCall { Id = "call_1", Name = "files", ArgumentsJson = arguments },
            Resumed = resumed,
        });
        return response.Result;
    }
}
