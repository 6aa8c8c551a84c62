using Namra.Contracts.V1;

namespace Namra.LlmGateway.Providers;

/// <summary>
/// Estimates tokens without a provider's tokenizer: about four characters a token for English text and code,
/// plus a few tokens of framing per message and tool, which is how providers' own estimates behave.
/// </summary>
internal static class TokenEstimator
{
    private const int CharactersPerToken = 4;
    private const int PerMessageOverhead = 4;
    private const int PerToolOverhead = 8;

    public static long Estimate(string text) => (text.Length + CharactersPerToken - 1) / CharactersPerToken;

    public static long EstimateInput(string systemPrompt, IEnumerable<Message> messages, IEnumerable<ToolDefinition> tools)
    {
        var total = Estimate(systemPrompt);
        foreach (var message in messages)
        {
            total += PerMessageOverhead;
            foreach (var block in message.Content)
            {
                total += block.BlockCase switch
                {
                    ContentBlock.BlockOneofCase.Text => Estimate(block.Text),
                    ContentBlock.BlockOneofCase.ToolCall => Estimate(block.ToolCall.Name) + Estimate(block.ToolCall.ArgumentsJson),
                    ContentBlock.BlockOneofCase.ToolResult => Estimate(block.ToolResult.Content),
                    ContentBlock.BlockOneofCase.Thinking => Estimate(block.Thinking.Text),
                    _ => 0,
                };
            }
        }

        foreach (var tool in tools)
        {
            total += PerToolOverhead + Estimate(tool.Name) + Estimate(tool.Description) + Estimate(tool.InputSchemaJson);
        }

        return total;
    }
}
