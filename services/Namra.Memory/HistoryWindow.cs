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
            var cost = EstimateTokens(messages[first - 1]);
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

    /// <summary>About four characters per token, plus a few for the message's framing.</summary>
    public static long EstimateTokens(Message message)
    {
        long characters = 0;
        foreach (var block in message.Content)
        {
            characters += block.BlockCase switch
            {
                ContentBlock.BlockOneofCase.Text => block.Text.Length,
                ContentBlock.BlockOneofCase.ToolCall => block.ToolCall.Name.Length + block.ToolCall.ArgumentsJson.Length,
                ContentBlock.BlockOneofCase.ToolResult => block.ToolResult.Content.Length,
                ContentBlock.BlockOneofCase.Thinking => block.Thinking.Text.Length,
                ContentBlock.BlockOneofCase.Image => 1600 * 4,
                _ => 0,
            };
        }

        return 4 + ((characters + 3) / 4);
    }
}
