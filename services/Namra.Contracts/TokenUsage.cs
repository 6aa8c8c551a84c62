namespace Namra.Contracts.V1;

/// <summary>What a provider counted for a call or a run.</summary>
public sealed partial class TokenUsage
{
    /// <summary>Every token counted: input, output, and cache writes and reads, as budgets and quotas count them.</summary>
    public long Total => InputTokens + OutputTokens + CacheCreationInputTokens + CacheReadInputTokens;
}
