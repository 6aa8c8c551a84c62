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
/// an inline definition by its content; tool lists by the definition's content hash (and whether it is trusted).
/// At most <see cref="MaxEntries"/> entries: past that, the least recently used go.
/// </summary>
internal sealed class ResolvedAgents(IOptions<OrchestratorOptions> options, TimeProvider timeProvider) : IDisposable
{
    private const int MaxEntries = 1024;
    private readonly Hosting.BoundedCache _cache = new(MaxEntries, timeProvider);

    public Task<ResolveAgentResponse> ResolveAsync(AgentSource source, Func<Task<ResolveAgentResponse>> resolve)
    {
        var key = source.SourceCase == AgentSource.SourceOneofCase.Reference
            ? "ref:" + source.Reference
            : "inline:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{source.Inline.Format}\n{source.Inline.FileName}\n{source.Inline.Content}")));
        return _cache.GetOrAddAsync(key, options.Value.AgentCacheDuration, resolve);
    }

    public Task<ListToolsResponse> ToolsAsync(AgentRef agent, bool untrusted, Func<Task<ListToolsResponse>> list) =>
        _cache.GetOrAddAsync((untrusted ? "tools-untrusted:" : "tools:") + agent.ContentHash, options.Value.ToolListCacheDuration, list);

    public void Dispose() => _cache.Dispose();
}
