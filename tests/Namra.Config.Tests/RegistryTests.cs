using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Namra.Config.Options;
using Namra.Config.Registry;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;

namespace Namra.Config.Tests;

public sealed class SemanticVersionTests
{
    [Fact]
    public void CompareTo_OrdersBySemVerPrecedence()
    {
        // The precedence example of semver.org, shuffled.
        string[] expected = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "2.0.0"];
        var shuffled = expected.Reverse().Select(v => SemanticVersion.TryParse(v)!).ToList();

        shuffled.Sort();

        Assert.Equal(expected, shuffled.Select(v => v.Text));
    }

    [Theory]
    [InlineData("1.0")]
    [InlineData("01.0.0")]
    [InlineData("1.0.0-")]
    [InlineData("v1.0.0")]
    public void TryParse_WhenNotSemVer_ReturnsNull(string text) => Assert.Null(SemanticVersion.TryParse(text));
}

public sealed class AgentRegistryTests
{
    private readonly AgentRegistry _registry = new(new FakeTimeProvider());

    [Fact]
    public void Get_WhenOnlyPreReleasesExist_ReturnsTheLatestPreRelease()
    {
        Register("demo", "1.0.0-alpha");
        Register("demo", "1.0.0-beta");

        Assert.Equal("1.0.0-beta", _registry.Get("demo").Ref.Version);
    }

    [Fact]
    public void Get_WhenVersionIsMissing_ListsTheRegisteredOnes()
    {
        Register("demo", "1.0.0");
        Register("demo", "1.1.0");

        var error = Assert.Throws<NotFoundException>(() => _registry.Get("demo@3.0.0"));

        Assert.Equal("Agent 'demo' has no version 3.0.0; registered versions: 1.0.0, 1.1.0.", error.Message);
    }

    [Fact]
    public void Register_WhenSameContentAgain_IsIdempotentAndPublishesOnce()
    {
        var changes = _registry.Subscribe(out var subscription);
        using var unsubscribe = subscription;

        var first = Register("demo", "1.0.0");
        var second = Register("demo", "1.0.0");

        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.True(changes.TryRead(out var change));
        Assert.Equal(AgentChangeType.Added, change.Type);
        Assert.False(changes.TryRead(out _));
    }

    private (RegisteredAgent Agent, bool Created) Register(string name, string version)
    {
        var result = TestFiles.Loader().Load($"name: {name}\nversion: {version}\nllm:\n  provider: openai\n  model: m\n", "a.yaml");
        return _registry.Register(result.Agent!, result.Ref!);
    }
}

public sealed class DebouncerTests
{
    [Fact]
    public async Task WaitAsync_ReturnsOnlyAfterTheQuietPeriodFollowingTheLastSignal()
    {
        var time = new FakeTimeProvider();
        using var debouncer = new Debouncer(TimeSpan.FromMilliseconds(500), time);

        debouncer.Signal();
        var wait = debouncer.WaitAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMilliseconds(300));
        debouncer.Signal();
        time.Advance(TimeSpan.FromMilliseconds(300));
        Assert.False(wait.IsCompleted);

        time.Advance(TimeSpan.FromMilliseconds(200));
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task WaitAsync_AfterABurst_WakesOnce()
    {
        var time = new FakeTimeProvider();
        using var debouncer = new Debouncer(TimeSpan.FromMilliseconds(100), time);
        for (var i = 0; i < 50; i++)
        {
            debouncer.Signal();
        }

        time.Advance(TimeSpan.FromMilliseconds(100));
        await debouncer.WaitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        var second = debouncer.WaitAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.False(second.IsCompleted);
    }
}

/// <summary>The agents folder on a real file system, watched with inotify.</summary>
public sealed class AgentFolderWatcherTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("namra-agents-").FullName;
    private readonly AgentRegistry _registry = new(TimeProvider.System);
    private AgentFolderWatcher _watcher = null!;

    public async ValueTask InitializeAsync()
    {
        await File.WriteAllTextAsync(Path.Combine(_folder, "first.yaml"), Agent("first", "1.0.0", "m1"));
        await File.WriteAllTextAsync(Path.Combine(_folder, "broken.yaml"), "name: broken\nversion: 1.0\n");
        await File.WriteAllTextAsync(Path.Combine(_folder, "notes.txt"), "not an agent");
        _watcher = new AgentFolderWatcher(_registry, new AgentLoader(),
            Microsoft.Extensions.Options.Options.Create(new ConfigServiceOptions { AgentsPath = _folder, ReloadDebounce = TimeSpan.FromMilliseconds(50) }),
            TimeProvider.System, NullLogger<AgentFolderWatcher>.Instance);
        await _watcher.StartAsync(CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        await _watcher.StopAsync(CancellationToken.None);
        _watcher.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void Start_LoadsTheValidFilesBeforeServing()
    {
        var agent = Assert.Single(_registry.All());
        Assert.Equal(("first", "1.0.0"), (agent.Ref.Name, agent.Ref.Version));
        Assert.Equal(Path.Combine(_folder, "first.yaml"), agent.Origin);
    }

    [Fact]
    public async Task FileChanges_AreReloadedAndStreamedInOrder()
    {
        var changes = _registry.Subscribe(out var subscription);
        using var unsubscribe = subscription;
        var first = Path.Combine(_folder, "first.yaml");

        await File.WriteAllTextAsync(Path.Combine(_folder, "second.toml"), "name = \"second\"\nversion = \"2.0.0\"\n[llm]\nprovider = \"openai\"\nmodel = \"m\"\n");
        var added = await NextAsync(changes, c => c.Type == AgentChangeType.Added);
        Assert.Equal("second", added.Agent!.Ref.Name);

        await File.WriteAllTextAsync(first, Agent("first", "1.0.0", "m2"));
        var updated = await NextAsync(changes, c => c.Type == AgentChangeType.Updated);
        Assert.Equal("m2", updated.Agent!.Agent.Llm.Model);

        await File.WriteAllTextAsync(first, Agent("first", "1.0.0", "m3") + "temprature: 3\n");
        // A reload may catch the file half-written (empty, so NAMRA0102) before the write ends: the file as written is what counts.
        var invalid = await NextAsync(changes, c => c.Type == AgentChangeType.Invalid && c.Origin == first && c.Diagnostics.Any(d => d.Code == "NAMRA0101"));
        Assert.Equal("NAMRA0101", Assert.Single(invalid.Diagnostics).Code);
        Assert.Equal("m2", _registry.Get("first").Agent.Llm.Model); // the last good version keeps serving

        File.Delete(first);
        var removed = await NextAsync(changes, c => c.Type == AgentChangeType.Removed);
        Assert.Equal("first", removed.Agent!.Ref.Name);
        Assert.Throws<NotFoundException>(() => _registry.Get("first"));
    }

    private static async Task<RegistryChange> NextAsync(System.Threading.Channels.ChannelReader<RegistryChange> changes, Func<RegistryChange, bool> match)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var change = await changes.ReadAsync(timeout.Token);
            if (match(change))
            {
                return change;
            }
        }
    }

    private static string Agent(string name, string version, string model) =>
        $"name: {name}\nversion: {version}\nllm:\n  provider: openai\n  model: {model}\n";
}

/// <summary>Folder synchronisation by file: renames, duplicates across files, and what API registrations keep.</summary>
public sealed class FolderSyncTests
{
    private readonly AgentRegistry _registry = new(new FakeTimeProvider());

    [Fact]
    public void SyncFolder_WhenAFileIsRenamed_KeepsTheAgentAndReportsRemovedThenAdded()
    {
        _registry.SyncFolder([("/agents/a.yaml", Load("demo", "1.0.0"))]);
        var changes = _registry.Subscribe(out var subscription);
        using var unsubscribe = subscription;

        _registry.SyncFolder([("/agents/c.yaml", Load("demo", "1.0.0"))]);

        Assert.Equal("/agents/c.yaml", _registry.Get("demo@1.0.0").Origin);
        Assert.True(changes.TryRead(out var removed));
        Assert.True(changes.TryRead(out var added));
        Assert.Equal((AgentChangeType.Removed, "/agents/a.yaml"), (removed.Type, removed.Origin));
        Assert.Equal((AgentChangeType.Added, "/agents/c.yaml"), (added.Type, added.Origin));
    }

    [Fact]
    public void SyncFolder_WhenTwoFilesDefineOneVersion_TheFirstByPathWinsAndTheOtherIsInvalid()
    {
        var changes = _registry.Subscribe(out var subscription);
        using var unsubscribe = subscription;

        _registry.SyncFolder([("/agents/b.yaml", Load("demo", "1.0.0", "m2")), ("/agents/a.yaml", Load("demo", "1.0.0", "m1"))]);

        Assert.Equal("m1", _registry.Get("demo@1.0.0").Agent.Llm.Model);
        var all = new List<RegistryChange>();
        while (changes.TryRead(out var change))
        {
            all.Add(change);
        }

        var invalid = Assert.Single(all, c => c.Type == AgentChangeType.Invalid);
        Assert.Equal("/agents/b.yaml", invalid.Origin);
        Assert.Contains("/agents/a.yaml", Assert.Single(invalid.Diagnostics).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SyncFolder_LeavesApiRegistrationsAlone()
    {
        var api = Load("api_agent", "1.0.0");
        _registry.Register(api.Agent!, api.Ref!);

        _registry.SyncFolder([("/agents/a.yaml", Load("demo", "1.0.0"))]);
        _registry.SyncFolder([]);

        Assert.Equal("api", _registry.Get("api_agent").Origin);
        Assert.Throws<NotFoundException>(() => _registry.Get("demo"));
    }

    private static AgentLoadResult Load(string name, string version, string model = "m") =>
        TestFiles.Loader().Load($"name: {name}\nversion: {version}\nllm:\n  provider: openai\n  model: {model}\n", "a.yaml");
}
