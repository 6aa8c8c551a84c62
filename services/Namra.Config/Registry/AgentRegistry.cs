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
    /// Makes the folder-loaded definitions equal to <paramref name="loaded"/> (one per file, valid ones only) and
    /// reports what changed. Definitions registered over the API are left alone.
    /// </summary>
    public void SyncFolder(IReadOnlyList<(string Path, AgentLoadResult Result)> loaded)
    {
        lock (_gate)
        {
            var now = timeProvider.GetUtcNow();
            var current = AllUnlocked().Where(a => a.Origin != RegisteredAgent.ApiOrigin).ToDictionary(a => a.Origin, StringComparer.Ordinal);
            var keep = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (path, result) in loaded.OrderBy(l => l.Path, StringComparer.Ordinal))
            {
                if (result is not { Agent: { } agent, Ref: { } agentRef })
                {
                    // Keep the last good version of an invalid file; tell watchers why the new one was refused.
                    if (current.ContainsKey(path))
                    {
                        keep.Add(path);
                    }

                    Publish(new RegistryChange(AgentChangeType.Invalid, null, path, result.Diagnostics));
                    continue;
                }

                var clash = Find(agentRef.Name, agentRef.Version);
                if (clash is not null && clash.Origin != path && (clash.Origin == RegisteredAgent.ApiOrigin || keep.Contains(clash.Origin)))
                {
                    Publish(new RegistryChange(AgentChangeType.Invalid, null, path,
                    [
                        new AgentDiagnostic(DiagnosticSeverity.Error, DiagnosticCodes.DuplicateKey,
                            $"{agentRef.Name}@{agentRef.Version} is already defined by {clash.Origin}.", path, default, "version",
                            "give each file its own name@version"),
                    ]));
                    continue;
                }

                keep.Add(path);
                if (current.TryGetValue(path, out var previous) && previous.Ref.Equals(agentRef))
                {
                    continue;
                }

                var registered = new RegisteredAgent(agent, agentRef, path, now);
                if (previous is not null && (previous.Ref.Name != agentRef.Name || previous.Ref.Version != agentRef.Version))
                {
                    Remove(previous);
                    Publish(new RegistryChange(AgentChangeType.Removed, previous, path, []));
                    previous = null;
                }

                Upsert(registered);
                Publish(new RegistryChange(previous is null ? AgentChangeType.Added : AgentChangeType.Updated, registered, path, result.Diagnostics));
            }

            foreach (var (path, gone) in current)
            {
                if (!keep.Contains(path))
                {
                    Remove(gone);
                    Publish(new RegistryChange(AgentChangeType.Removed, gone, path, []));
                }
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
        var channel = Channel.CreateUnbounded<RegistryChange>(new UnboundedChannelOptions { SingleReader = true });
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

    private void Remove(RegisteredAgent agent)
    {
        var next = Copy();
        if (next.TryGetValue(agent.Ref.Name, out var versions))
        {
            var key = versions.Keys.FirstOrDefault(v => v.Text == agent.Ref.Version);
            if (key is not null)
            {
                versions.Remove(key);
            }

            if (versions.Count == 0)
            {
                next.Remove(agent.Ref.Name);
            }
        }

        Volatile.Write(ref _agents, next);
    }

    private Dictionary<string, SortedList<SemanticVersion, RegisteredAgent>> Copy() =>
        _agents.ToDictionary(p => p.Key, p => new SortedList<SemanticVersion, RegisteredAgent>(p.Value), StringComparer.Ordinal);

    private void Publish(RegistryChange change)
    {
        foreach (var watcher in _watchers)
        {
            watcher.Writer.TryWrite(change);
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
