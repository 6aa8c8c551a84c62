using Namra.Config.Parsing;
using Namra.Config.Validation;
using Namra.Contracts.V1;

namespace Namra.Config.Registry;

/// <summary>
/// The agents an agent calls as tools (<c>type: agent</c>) and hands conversations to (<c>handoffs</c>), checked against
/// the registry: each one must be there, and following the calls from agent to agent must never lead back to an agent
/// already on the way (handoffs may: a conversation can go back).
/// </summary>
internal static class AgentTeams
{
    /// <summary>Errors for the agent's calls of agents: those missing, and a cycle with its path.</summary>
    public static IReadOnlyList<AgentDiagnostic> Check(AgentDefinition agent, AgentRef self, Func<string, RegisteredAgent?> find, string file)
    {
        var problems = new List<AgentDiagnostic>();
        var path = new List<string> { Label(self) };
        var acyclic = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < agent.Tools.Count; i++)
        {
            if (agent.Tools[i] is not { Type: ToolType.Agent, Agent: { } settings })
            {
                continue;
            }

            var field = $"tools[{i}].config.agent";
            if (find(settings.Agent) is not { } child)
            {
                problems.Add(Error(DiagnosticCodes.UnknownAgent, file, field,
                    $"The tool `{agent.Tools[i].Name}` calls the agent `{settings.Agent}`, which is not registered.",
                    "add its file to the agents folder (for `namra run`, the folder of this file), or correct the reference"));
                continue;
            }

            if (Cycle(child, path, acyclic, find) is { } cycle)
            {
                problems.Add(Error(DiagnosticCodes.AgentCycle, file, field,
                    $"The agents call each other in a cycle: {string.Join(" → ", cycle)}.",
                    "an agent may not call, directly or through others, an agent that is already calling it"));
            }
        }

        for (var i = 0; i < agent.Handoffs.Count; i++)
        {
            if (find(agent.Handoffs[i]) is not { } target)
            {
                problems.Add(Error(DiagnosticCodes.UnknownAgent, file, $"handoffs[{i}]",
                    $"The conversation may be handed to the agent `{agent.Handoffs[i]}`, which is not registered.",
                    "add its file to the agents folder (for `namra run`, the folder of this file), or correct the reference"));
            }
            else if (agent.HandoffHistory != "user_messages" && RefusesToolHistory(target.Agent))
            {
                // The conversation handed over holds tool calls (the handoff's own, at least); Anthropic's API refuses a
                // conversation with tool calls from a request that offers no tools.
                problems.Add(Error(DiagnosticCodes.HandoffTarget, file, $"handoffs[{i}]",
                    $"The agent `{agent.Handoffs[i]}` has no tools, and its model ({target.Agent.Llm.Model}, anthropic) refuses a conversation holding tool calls, as one handed over does.",
                    "give that agent a tool, or set `handoff_history: user_messages` here so it sees only what the user said"));
            }
        }

        return problems;
    }

    // The path back to an agent already on it, following child's calls depth first; null when there is none.
    // Agents found to lead to no cycle are not followed again (a team shaped as a diamond is walked once).
    private static List<string>? Cycle(RegisteredAgent child, List<string> path, HashSet<string> acyclic, Func<string, RegisteredAgent?> find)
    {
        var label = Label(child.Ref);
        if (path.Contains(label, StringComparer.Ordinal))
        {
            return [.. path.SkipWhile(step => step != label), label];
        }

        if (acyclic.Contains(label))
        {
            return null;
        }

        path.Add(label);
        try
        {
            foreach (var tool in child.Agent.Tools)
            {
                if (tool is { Type: ToolType.Agent, Agent: { } settings } && find(settings.Agent) is { } next && Cycle(next, path, acyclic, find) is { } cycle)
                {
                    return cycle;
                }
            }

            acyclic.Add(label);
            return null;
        }
        finally
        {
            path.RemoveAt(path.Count - 1);
        }
    }

    // An agent whose model takes no conversation with tool calls: Anthropic's, when the agent offers no tools at all.
    private static bool RefusesToolHistory(AgentDefinition agent) =>
        agent.Llm?.Provider == LlmProvider.Anthropic && agent.Tools.Count == 0 && agent.Handoffs.Count == 0 && agent.Memory?.Semantic?.Enabled != true;

    private static string Label(AgentRef agent) => $"{agent.Name}@{agent.Version}";

    private static AgentDiagnostic Error(string code, string file, string field, string message, string hint) =>
        new(DiagnosticSeverity.Error, code, message, file, SourcePosition.Document, field, hint);
}
