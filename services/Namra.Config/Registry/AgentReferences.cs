using Microsoft.Extensions.Options;
using Namra.Config.Options;
using Namra.Config.Validation;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;

namespace Namra.Config.Registry;

/// <summary>
/// Finds agents by reference: in the registry, else (once) among the agent files of
/// <see cref="ConfigServiceOptions.ReferencePath"/>, whose valid files are registered. Checks the agents an agent calls.
/// </summary>
internal sealed class AgentReferences(AgentRegistry registry, AgentLoader loader, IOptions<ConfigServiceOptions> options)
{
    private static readonly string[] Extensions = [".yaml", ".yml", ".toml"];
    private readonly Lazy<int> _scanned = new(() => Scan(registry, loader, options.Value.ReferencePath));

    /// <summary>The agent <paramref name="reference"/> names; <c>NOT_FOUND</c> when neither the registry nor the folder has it.</summary>
    public RegisteredAgent Get(string reference)
    {
        try
        {
            return registry.Get(reference);
        }
        catch (NotFoundException) when (options.Value.ReferencePath.Length > 0 && !_scanned.IsValueCreated)
        {
            _ = _scanned.Value;
            return registry.Get(reference);
        }
    }

    /// <summary>The agent <paramref name="reference"/> names; null when there is none (or the reference is not one).</summary>
    public RegisteredAgent? Find(string reference)
    {
        try
        {
            return Get(reference);
        }
        catch (NamraException)
        {
            return null;
        }
    }

    /// <summary>Errors for the agents <paramref name="agent"/> calls as tools: missing ones, and a cycle.</summary>
    public IReadOnlyList<AgentDiagnostic> CheckTeam(AgentDefinition agent, AgentRef self, string file) =>
        agent.Tools.Any(t => t.Type == ToolType.Agent) || agent.Handoffs.Count > 0 ? AgentTeams.Check(agent, self, Find, file) : [];

    // The folder's valid agent files, registered; files that are not agents (or too large) are passed over.
    private static int Scan(AgentRegistry registry, AgentLoader loader, string folder)
    {
        var registered = 0;
        foreach (var file in Directory.EnumerateFiles(folder).Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase)).Order(StringComparer.Ordinal))
        {
            try
            {
                if (new FileInfo(file).Length <= loader.Limits.MaxDocumentBytes
                    && loader.Load(File.ReadAllText(file), Path.GetFileName(file)) is { Agent: { } agent, Ref: { } agentRef })
                {
                    registry.Register(agent, agentRef);
                    registered++;
                }
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or NamraException)
            {
            }
        }

        return registered;
    }
}
