using System.Threading.Channels;
using Namra.Config.Validation;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;

namespace Namra.Config.Registry;

/// <summary>One definition in the registry.</summary>
internal sealed record RegisteredAgent(AgentDefinition Agent, AgentRef Ref, string Origin, DateTimeOffset UpdateTime)
{
    public const string ApiOrigin = "api";

    public SemanticVersion Version { get; } = SemanticVersion.TryParse(Ref.Version)
        ?? throw new ArgumentException($"'{Ref.Version}' is not a semantic version.", nameof(Ref));
}

/// <summary>A change to the registry, as <c>WatchAgents</c> streams it.</summary>
internal sealed record RegistryChange(AgentChangeType Type, RegisteredAgent? Agent, string Origin, IReadOnlyList<AgentDiagnostic> Diagnostics);

/// <summary>
/// The <c>name@version</c> registry: definitions registered over the API or loaded from the agents folder.
/// Reads are lock-free snapshots; writes are serialised and published to watchers in order.
/// </summary>
internal sealed class AgentRegistry(TimeProvider timeProvider)
{
    /// <summary>Changes a watcher may fall behind by before its stream is ended.</summary>
    public const int WatcherCapacity = 1024;

    private readonly Lock _gate = new();
    private readonly List<Channel<RegistryChange>> _watchers = [];
    private Dictionary<string, SortedList<SemanticVersion, RegisteredAgent>> _agents = new(StringComparer.Ordinal);

    public int Count => Volatile.Read(ref _agents).Values.Sum(versions => versions.Count);

    /// <summary>Registers a definition from the API. Same content again: not created. Other content under the same version: ALREADY_EXISTS.</summary>
    public (RegisteredAgent Agent, bool Created) Register(AgentDefinition agent, AgentRef agentRef)
    {
        lock (_gate)
        {
            if (Find(agentRef.Name, agentRef.Version) is { } existing)
            {
                if (existing.Ref.ContentHash == agentRef.ContentHash)
                {
                    return (existing, false);
                }

                throw new AlreadyExistsException("namra.v1.AgentDefinition", $"{agentRef.Name}@{agentRef.Version}",
                    $"Agent {agentRef.Name}@{agentRef.Version} is already registered with other content ({existing.Ref.ContentHash}); "
                    + "publish the change under a new version.");
            }

            var registered = new RegisteredAgent(agent, agentRef, RegisteredAgent.ApiOrigin, timeProvider.GetUtcNow());
            Upsert(registered);
            Publish(new RegistryChange(AgentChangeType.Added, registered, registered.Origin, []));
            return (registered, true);
        }
    }

    /// <summary>
    /// Makes the folder-loaded definitions equal to <paramref name="loaded"/> (one result per file) and reports
    /// what changed, by file. An invalid file keeps its last good version; of two files with one
    /// <c>name@version</c>, the first by path wins. Definitions registered over the API are left alone.
    /// </summary>
    public void SyncFolder(IReadOnlyList<(string Path, AgentLoadResult Result)> loaded)
    {
        lock (_gate)
        {
            var now = timeProvider.GetUtcNow();
            var all = AllUnlocked().ToList();
            var current = all.Where(a => a.Origin != RegisteredAgent.ApiOrigin).ToDictionary(a => a.Origin, StringComparer.Ordinal);
            var taken = all.Where(a => a.Origin == RegisteredAgent.ApiOrigin).ToDictionary(Key, a => a.Origin, StringComparer.Ordinal);
            var desired = new Dictionary<string, RegisteredAgent>(StringComparer.Ordinal);
            var changes = new List<RegistryChange>();

            foreach (var (path, result) in loaded.OrderBy(l => l.Path, StringComparer.Ordinal))
            {
                RegisteredAgent candidate;
                if (result is { Agent: { } agent, Ref: { } agentRef })
                {
                    candidate = current.TryGetValue(path, out var same) && same.Ref.Equals(agentRef) ? same : new RegisteredAgent(agent, agentRef, path, now);
                }
                else
                {
                    changes.Add(new RegistryChange(AgentChangeType.Invalid, null, path, result.Diagnostics));
                    if (!current.TryGetValue(path, out var lastGood))
                    {
                        continue;
                    }

                    candidate = lastGood;
                }

                if (taken.TryGetValue(Key(candidate), out var owner))
                {
                    changes.Add(new RegistryChange(AgentChangeType.Invalid, null, path,
                    [
                        new AgentDiagnostic(DiagnosticSeverity.Error, DiagnosticCodes.DuplicateKey,
                            $"{Key(candidate)} is already defined by {owner}.", path, default, "version", "give each file its own name@version"),
                    ]));
                    continue;
                }

                taken[Key(candidate)] = path;
                desired[path] = candidate;
            }

            foreach (var (path, previous) in current)
            {
                if (!desired.TryGetValue(path, out var next) || Key(next) != Key(previous))
                {
                    changes.Add(new RegistryChange(AgentChangeType.Removed, previous, path, []));
                }
            }

            foreach (var (path, next) in desired)
            {
                if (!current.TryGetValue(path, out var previous) || Key(previous) != Key(next))
                {
                    changes.Add(new RegistryChange(AgentChangeType.Added, next, path, Warnings(loaded, path)));
                }
                else if (!ReferenceEquals(previous, next))
                {
                    changes.Add(new RegistryChange(AgentChangeType.Updated, next, path, Warnings(loaded, path)));
                }
            }

            Replace(all.Where(a => a.Origin == RegisteredAgent.ApiOrigin).Concat(desired.Values));

            // Removals first, so a definition that moved to another file is never seen twice.
            foreach (var change in changes.OrderBy(c => c.Type == AgentChangeType.Removed ? 0 : 1))
            {
                Publish(change);
            }
        }
    }

    /// <summary>Resolves <c>name@version</c>, or <c>name</c> for the latest release (the latest pre-release when there is no release).</summary>
    public RegisteredAgent Get(string reference)
    {
        var (name, version) = ParseReference(reference);
        var agents = Volatile.Read(ref _agents);
        if (!agents.TryGetValue(name, out var versions) || versions.Count == 0)
        {
            var known = agents.Keys.ToList();
            var suggestion = Suggestions.Closest(name, known);
            throw new NotFoundException("namra.v1.AgentDefinition", reference,
                $"No agent named '{name}' is registered.{(suggestion is null ? "" : $" Did you mean '{suggestion}'?")}");
        }

        if (version is null)
        {
            return versions.Values.LastOrDefault(a => !a.Version.IsPreRelease) ?? versions.Values[^1];
        }

        return versions.Values.FirstOrDefault(a => a.Ref.Version == version)
            ?? throw new NotFoundException("namra.v1.AgentDefinition", reference,
                $"Agent '{name}' has no version {version}; registered versions: {string.Join(", ", versions.Keys)}.");
    }

    /// <summary>Every definition, ordered by name then version.</summary>
    public IReadOnlyList<RegisteredAgent> All() => AllUnlocked().ToList();

    public ChannelReader<RegistryChange> Subscribe(out IDisposable subscription)
    {
        var channel = Channel.CreateBounded<RegistryChange>(new BoundedChannelOptions(WatcherCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        lock (_gate)
        {
            _watchers.Add(channel);
        }

        subscription = new Unsubscriber(this, channel);
        return channel.Reader;
    }

    /// <summary>Splits <c>name@version</c>; an invalid reference is the caller's error.</summary>
    public static (string Name, string? Version) ParseReference(string reference)
    {
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        var (name, version) = at < 0 ? (reference, null) : (reference[..at], reference[(at + 1)..]);
        if (!System.Text.RegularExpressions.Regex.IsMatch(name, AgentSchema.NamePattern))
        {
            throw new InvalidArgumentException("reference", $"'{reference}' is not an agent reference; write name@version (such as support_agent@1.2.0) or a name.");
        }

        if (version is not null && SemanticVersion.TryParse(version) is null)
        {
            throw new InvalidArgumentException("reference", $"'{version}' in '{reference}' is not a semantic version (such as 1.2.0).");
        }

        return (name, version);
    }

    private static string Key(RegisteredAgent agent) => $"{agent.Ref.Name}@{agent.Ref.Version}";

    private static IReadOnlyList<AgentDiagnostic> Warnings(IReadOnlyList<(string Path, AgentLoadResult Result)> loaded, string path) =>
        loaded.FirstOrDefault(l => l.Path == path).Result?.Diagnostics ?? [];

    private void Replace(IEnumerable<RegisteredAgent> agents)
    {
        var next = new Dictionary<string, SortedList<SemanticVersion, RegisteredAgent>>(StringComparer.Ordinal);
        foreach (var agent in agents)
        {
            if (!next.TryGetValue(agent.Ref.Name, out var versions))
            {
                versions = new SortedList<SemanticVersion, RegisteredAgent>();
                next[agent.Ref.Name] = versions;
            }

            versions.Add(agent.Version, agent);
        }

        Volatile.Write(ref _agents, next);
    }

    private IEnumerable<RegisteredAgent> AllUnlocked() =>
        Volatile.Read(ref _agents).OrderBy(p => p.Key, StringComparer.Ordinal).SelectMany(p => p.Value.Values);

    private RegisteredAgent? Find(string name, string version) =>
        _agents.TryGetValue(name, out var versions) ? versions.Values.FirstOrDefault(a => a.Ref.Version == version) : null;

    // Copy-on-write, so readers never see a half-made change and never lock.
    private void Upsert(RegisteredAgent agent)
    {
        var next = Copy();
        if (!next.TryGetValue(agent.Ref.Name, out var versions))
        {
            versions = new SortedList<SemanticVersion, RegisteredAgent>();
            next[agent.Ref.Name] = versions;
        }

        var existing = versions.Keys.FirstOrDefault(v => v.Text == agent.Ref.Version);
        if (existing is not null)
        {
            versions.Remove(existing);
        }

        versions.Add(agent.Version, agent);
        Volatile.Write(ref _agents, next);
    }

    private Dictionary<string, SortedList<SemanticVersion, RegisteredAgent>> Copy() =>
        _agents.ToDictionary(p => p.Key, p => new SortedList<SemanticVersion, RegisteredAgent>(p.Value), StringComparer.Ordinal);

    private void Publish(RegistryChange change)
    {
        foreach (var watcher in _watchers)
        {
            // A watcher this far behind would hold changes without bound; end its stream instead, and it
            // starts again from a snapshot.
            if (!watcher.Writer.TryWrite(change))
            {
                watcher.Writer.TryComplete(new WatcherOverflowException(WatcherCapacity));
            }
        }
    }

    private sealed class Unsubscriber(AgentRegistry registry, Channel<RegistryChange> channel) : IDisposable
    {
        public void Dispose()
        {
            lock (registry._gate)
            {
                registry._watchers.Remove(channel);
            }

            channel.Writer.TryComplete();
        }
    }
}

/// <summary>A watcher fell too far behind the registry's changes.</summary>
internal sealed class WatcherOverflowException(int capacity)
    : NamraException(Grpc.Core.StatusCode.Aborted,
        $"This watch fell more than {capacity} changes behind and was ended; watch again with send_initial to resynchronise.");
