using Namra.Contracts.V1;

namespace Namra.Contracts;

/// <summary>
/// Estimates tokens without a provider's tokenizer: about four characters a token for English text and code,
/// plus a few tokens of framing per message and tool, which is how providers' own estimates behave. One rule for
/// every service that needs a figure before the provider gives one: the gateway's <c>CountTokens</c>, the
/// orchestrator's budget reservations, the memory service's history windows.
/// </summary>
public static class TokenEstimator
{
    private const int CharactersPerToken = 4;
    private const int PerMessageOverhead = 4;
    private const int PerToolOverhead = 8;
    private const int PerImage = 1600;

    /// <summary>Tokens of a text.</summary>
    public static long Estimate(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return (text.Length + CharactersPerToken - 1) / CharactersPerToken;
    }

    /// <summary>Tokens of one message, its framing included.</summary>
    public static long Estimate(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        long total = PerMessageOverhead;
        foreach (var block in message.Content)
        {
            total += block.BlockCase switch
            {
                ContentBlock.BlockOneofCase.Text => Estimate(block.Text),
                ContentBlock.BlockOneofCase.ToolCall => Estimate(block.ToolCall.Name) + Estimate(block.ToolCall.ArgumentsJson),
                ContentBlock.BlockOneofCase.ToolResult => Estimate(block.ToolResult.Content),
                ContentBlock.BlockOneofCase.Thinking => Estimate(block.Thinking.Text),
                ContentBlock.BlockOneofCase.Image => PerImage,
                _ => 0,
            };
        }

        return total;
    }

    /// <summary>Tokens of a model call's input: the system prompt, the messages and the tool definitions.</summary>
    public static long EstimateInput(string systemPrompt, IEnumerable<Message> messages, IEnumerable<ToolDefinition> tools)
    {
        ArgumentNullException.ThrowIfNull(systemPrompt);
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(tools);
        var total = Estimate(systemPrompt);
        foreach (var message in messages)
        {
            total += Estimate(message);
        }

        foreach (var tool in tools)
        {
            total += PerToolOverhead + Estimate(tool.Name) + Estimate(tool.Description) + Estimate(tool.InputSchemaJson);
        }

        return total;
    }
}
