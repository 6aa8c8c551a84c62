using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Agents resolved by the config service, and the tool lists of their definitions, kept a short while: under load
/// the same few agents run again and again, and asking twice a second gains nothing. A reference is kept for
/// <see cref="OrchestratorOptions.AgentCacheDuration"/> (an edited agent file reaches new runs after at most that),
/// an inline definition by its content; tool lists by the definition's content hash.
/// </summary>
internal sealed class ResolvedAgents(IOptions<OrchestratorOptions> options, TimeProvider timeProvider)
{
    private const int MaxEntries = 1024;
    private readonly ConcurrentDictionary<string, (long At, ResolveAgentResponse Agent)> _agents = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (long At, ListToolsResponse Tools)> _tools = new(StringComparer.Ordinal);

    public async Task<ResolveAgentResponse> ResolveAsync(AgentSource source, Func<Task<ResolveAgentResponse>> resolve)
    {
        var key = source.SourceCase == AgentSource.SourceOneofCase.Reference
            ? "ref:" + source.Reference
            : "inline:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{source.Inline.Format}\n{source.Inline.FileName}\n{source.Inline.Content}")));
        return await GetAsync(_agents, key, options.Value.AgentCacheDuration, resolve).ConfigureAwait(false);
    }

    public Task<ListToolsResponse> ToolsAsync(AgentRef agent, bool untrusted, Func<Task<ListToolsResponse>> list) =>
        GetAsync(_tools, untrusted ? "untrusted:" + agent.ContentHash : agent.ContentHash, options.Value.ToolListCacheDuration, list);

    private async Task<T> GetAsync<T>(ConcurrentDictionary<string, (long At, T Value)> cache, string key, TimeSpan lifetime, Func<Task<T>> load)
    {
        if (lifetime > TimeSpan.Zero && cache.TryGetValue(key, out var entry) && timeProvider.GetElapsedTime(entry.At) < lifetime)
        {
            return entry.Value;
        }

        var value = await load().ConfigureAwait(false);
        if (lifetime > TimeSpan.Zero)
        {
            if (cache.Count >= MaxEntries)
            {
                cache.Clear();
            }

            cache[key] = (timeProvider.GetTimestamp(), value);
        }

        return value;
    }
}
