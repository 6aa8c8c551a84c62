using System.Text;
using Namra.Contracts;
using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>
/// The results of one turn's tool calls go back to the model as one message, and the session keeps that message: together
/// they must fit the message limit every memory service keeps (<see cref="MessageLimits.MaxMessageBytes"/>), so what the
/// model reads is what the session saves. Over it, the largest results are cut first, each to a fair share, saying so.
/// </summary>
internal static class ToolResultFit
{
    /// <summary>Room for the message's envelope: its id, role, the results' call ids and framing.</summary>
    private const int Envelope = 16 * 1024;

    /// <summary>The message of a turn's results, in the order of its calls, within the limit.</summary>
    public static ContentBlock[] Blocks(IEnumerable<ToolResult> results, int maxBytes = MessageLimits.MaxMessageBytes - Envelope)
    {
        var fitted = results.Select(r => r.Clone()).ToList();
        var sizes = fitted.Select(r => Encoding.UTF8.GetByteCount(r.Content)).ToList();
        if (sizes.Sum(s => (long)s) > maxBytes)
        {
            // Smallest first: each keeps what it has while that is within an equal share of what is left.
            var left = maxBytes;
            var order = Enumerable.Range(0, fitted.Count).OrderBy(i => sizes[i]).ToList();
            for (var n = 0; n < order.Count; n++)
            {
                var i = order[n];
                var share = left / (order.Count - n);
                if (sizes[i] > share)
                {
                    fitted[i].Content = Cut(fitted[i].Content, sizes[i], share, maxBytes);
                }

                left -= Math.Min(sizes[i], share);
            }
        }

        return [.. fitted.Select(r => new ContentBlock { ToolResult = r })];
    }

    private static string Cut(string content, int size, int share, int maxBytes)
    {
        var note = $"\n[cut to fit: this turn's tool results together exceed the {maxBytes:N0} bytes one conversation message holds; this one had {size:N0}]";
        var budget = Math.Max(0, share - Encoding.UTF8.GetByteCount(note));
        var kept = 0;
        var bytes = 0;
        while (kept < content.Length)
        {
            var step = char.IsHighSurrogate(content[kept]) && kept + 1 < content.Length ? 2 : 1;
            var next = Encoding.UTF8.GetByteCount(content.AsSpan(kept, step));
            if (bytes + next > budget)
            {
                break;
            }

            bytes += next;
            kept += step;
        }

        return string.Concat(content.AsSpan(0, kept), note);
    }
}
