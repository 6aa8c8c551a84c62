namespace Namra.Contracts;

/// <summary>
/// What an agent's <c>execution</c> settings are when its file does not say: the config service fills them in, and the
/// orchestrator assumes the same for a definition that reaches it without them.
/// </summary>
public static class ExecutionDefaults
{
    /// <summary><c>execution.max_iterations</c>.</summary>
    public const int MaxIterations = 10;

    /// <summary><c>execution.timeout</c>, in seconds.</summary>
    public const int TimeoutSeconds = 60;

    /// <summary><c>execution.max_repeated_tool_calls</c>.</summary>
    public const int MaxRepeatedToolCalls = 3;

    /// <summary><c>execution.max_parallel_tool_calls</c>.</summary>
    public const int MaxParallelToolCalls = 8;

    /// <summary><c>execution.timeout</c>.</summary>
    public static TimeSpan Timeout => TimeSpan.FromSeconds(TimeoutSeconds);
}
