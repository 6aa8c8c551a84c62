using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Namra.Contracts.V1;
using Namra.Orchestrator.Options;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// Agents resolved by the config service, and the tool lists of their definitions, kept a short while: under load
/// the same few agents run again and again, and asking twice a second gains nothing. A reference is kept for
/// <see cref="OrchestratorOptions.AgentCacheDuration"/> (an edited agent file reaches new runs after at most that),
/// an inline definition by its content; tool lists by the definition's content hash (and whether it is trusted).
/// At most <see cref="MaxEntries"/> entries: past that, the least recently used go.
/// </summary>
internal sealed class ResolvedAgents(IOptions<OrchestratorOptions> options, TimeProvider timeProvider) : IDisposable
{
    private const int MaxEntries = 1024;
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = MaxEntries, Clock = new Clock(timeProvider) });

    public Task<ResolveAgentResponse> ResolveAsync(AgentSource source, Func<Task<ResolveAgentResponse>> resolve)
    {
        var key = source.SourceCase == AgentSource.SourceOneofCase.Reference
            ? "ref:" + source.Reference
            : "inline:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{source.Inline.Format}\n{source.Inline.FileName}\n{source.Inline.Content}")));
        return GetAsync(key, options.Value.AgentCacheDuration, resolve);
    }

    public Task<ListToolsResponse> ToolsAsync(AgentRef agent, bool untrusted, Func<Task<ListToolsResponse>> list) =>
        GetAsync((untrusted ? "tools-untrusted:" : "tools:") + agent.ContentHash, options.Value.ToolListCacheDuration, list);

    private async Task<T> GetAsync<T>(string key, TimeSpan lifetime, Func<Task<T>> load)
    {
        if (lifetime > TimeSpan.Zero && _cache.TryGetValue(key, out T? known) && known is not null)
        {
            return known;
        }

        var value = await load().ConfigureAwait(false);
        if (lifetime > TimeSpan.Zero)
        {
            _cache.Set(key, value, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = lifetime });
        }

        return value;
    }

    public void Dispose() => _cache.Dispose();

    // The cache's clock is the process's TimeProvider, so tests that move time move it too.
    private sealed class Clock(TimeProvider timeProvider) : Microsoft.Extensions.Internal.ISystemClock
    {
        public DateTimeOffset UtcNow => timeProvider.GetUtcNow();
    }
}
