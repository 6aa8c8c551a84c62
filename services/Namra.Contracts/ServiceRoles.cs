namespace Namra.Contracts;

/// <summary>The names of Namra's services as roles: what <c>--services</c> takes, and how callers name whom they call.</summary>
public static class ServiceRoles
{
    /// <summary><c>namra.v1.ConfigService</c>.</summary>
    public const string Config = "config";

    /// <summary><c>namra.v1.LlmGatewayService</c>.</summary>
    public const string LlmGateway = "llm-gateway";

    /// <summary><c>namra.v1.ToolExecutorService</c>.</summary>
    public const string ToolExecutor = "tool-executor";

    /// <summary><c>namra.v1.MemoryService</c>.</summary>
    public const string Memory = "memory";

    /// <summary><c>namra.v1.AgentService</c>, the public API.</summary>
    public const string Orchestrator = "orchestrator";
}
