using Namra.Contracts.V1;

namespace Namra.Memory;

/// <summary>The newest messages of a history that fit a token budget, never starting with an orphaned tool result.</summary>
internal static class HistoryWindow
{
    /// <summary>The newest messages whose estimated tokens fit <paramref name="maxTokens"/> (all when 0), oldest first.</summary>
    public static List<Message> Fit(IReadOnlyList<Message> messages, int maxTokens)
    {
        var first = messages.Count;
        var used = 0L;
        while (first > 0)
        {
            var cost = Contracts.TokenEstimator.Estimate(messages[first - 1]);
            if (maxTokens > 0 && used + cost > maxTokens)
            {
                break;
            }

            used += cost;
            first--;
        }

        // A window that begins with tool results has lost the calls they answer; providers refuse that.
        while (first < messages.Count && messages[first].Content.Any(b => b.BlockCase == ContentBlock.BlockOneofCase.ToolResult))
        {
            first++;
        }

        return [.. messages.Skip(first)];
    }
}
