using Namra.Contracts.V1;

namespace Namra.Contracts;

/// <summary>The tools through which a model hands the conversation to another agent (an agent's <c>handoffs</c>).</summary>
public static class Handoffs
{
    /// <summary>The prefix of a handoff tool's name.</summary>
    public const string Prefix = "transfer_to_";

    /// <summary>
    /// The tool that hands the conversation to the agent <paramref name="reference"/> names (<c>billing@1.0.0</c> gives
    /// <c>transfer_to_billing</c>), within the 64 characters providers allow a tool's name.
    /// </summary>
    public static string ToolName(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        var name = Prefix + (at < 0 ? reference : reference[..at]);
        return name.Length <= 64 ? name : name[..64];
    }

    /// <summary>Whether the assistant message at <paramref name="index"/> handed the conversation over: it called a handoff tool, and the result was no error.</summary>
    public static bool HandedOver(IReadOnlyList<Message> messages, int index)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages[index].Role != Role.Assistant || index + 1 >= messages.Count)
        {
            return false;
        }

        var calls = messages[index].Content.Where(b => b.ToolCall?.Name.StartsWith(Prefix, StringComparison.Ordinal) == true).Select(b => b.ToolCall.Id).ToList();
        return calls.Count > 0 && messages[index + 1].Content.Any(b => b.ToolResult is { IsError: false } result && calls.Contains(result.ToolCallId));
    }
}
