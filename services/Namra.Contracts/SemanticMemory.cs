namespace Namra.Contracts;

/// <summary>How runs use semantic memory (<c>memory.semantic</c>): the built-in tool that stores facts, and whose memories a run sees.</summary>
public static class SemanticMemory
{
    /// <summary>The tool the model stores a fact with, offered when semantic memory is on.</summary>
    public const string RememberTool = "remember";

    /// <summary>Every conversation of the agent shares its memories (the default scope).</summary>
    public const string AgentScope = "agent";

    /// <summary>Each conversation (session) has memories of its own.</summary>
    public const string SessionScope = "session";

    /// <summary>Most tokens of recalled memories put into a model turn's context, when the agent sets none.</summary>
    public const int DefaultMaxRecallTokens = 1000;

    /// <summary>
    /// The memory namespace of a run: the agent's (<c>agent:NAME</c>), or in the session scope the session's
    /// (<c>session:ID</c>; a run without a session has its own, <c>run:ID</c>).
    /// </summary>
    public static string Namespace(string scope, string agentName, string sessionId, string runId) => scope == SessionScope
        ? sessionId.Length > 0 ? "session:" + sessionId : "run:" + runId
        : "agent:" + agentName;
}
