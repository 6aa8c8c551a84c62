using System.Text;
using Namra.Contracts.V1;

namespace Namra.Orchestrator.Loop;

/// <summary>One run as the loop works on it: its request, record and journal, the conversation the model sees, its tools and guards.</summary>
internal sealed class RunContext(RunRequest request, RunState state, RunJournal journal, DateTime deadline)
{
    public RunRequest Request => request;

    public RunState State => state;

    public RunJournal Journal => journal;

    /// <summary>When the run must have ended (its creation plus <c>execution.timeout</c>), on whichever replica.</summary>
    public DateTime Deadline => deadline;

    /// <summary>What the model is sent: the session's history, then this run's messages.</summary>
    public List<Message> Messages { get; } = [];

    /// <summary>The agent's tools, and which entry serves each.</summary>
    public List<ToolDefinition> Tools { get; } = [];

    public Dictionary<string, ToolConfig> Entries { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether every call of the named tool may run twice with the effect of once (see <see cref="ToolDefinition.Idempotent"/>).</summary>
    public bool Idempotent(string tool) => Tools.Find(t => t.Name == tool) is { Idempotent: true };

    public RunBudget Budget { get; } = new(request.Agent.Execution?.Budget);

    /// <summary>Who calls the tool executor, and whether it trusts the definition's tools.</summary>
    public ToolCallContext ToolContext => new() { RunId = request.RunId, AgentName = Agent.Name, Untrusted = request.Untrusted };

    /// <summary>The agent answering now: the one asked, or the one the conversation was handed to (its model, prompt and tools).</summary>
    public AgentDefinition Agent { get; set; } = request.Agent;

    /// <summary>The name, version and content hash of <see cref="Agent"/>.</summary>
    public AgentRef AgentRef { get; set; } = request.Ref;

    /// <summary>The tools that hand the conversation to another agent, by name, with the agent each goes to.</summary>
    public Dictionary<string, ResolveAgentResponse> Handoffs { get; } = new(StringComparer.Ordinal);

    /// <summary>The handoff the current turn asked for, made once its calls are done; the first one asked wins.</summary>
    public (ResolveAgentResponse Target, ToolCall Call, string Reason)? PendingHandoff { get; set; }

    /// <summary>How many times the conversation was handed over in this run.</summary>
    public int HandoffCount { get; set; }

    /// <summary>What the agent answering sees of the conversation before its handoff: <c>all</c>, or <c>user_messages</c>.</summary>
    public string HandoffHistory { get; set; } = "all";

    /// <summary>
    /// The conversation as the model answering now is sent it: all of it; or, when the conversation was handed to it
    /// with <c>user_messages</c>, what the user said before the handoff (no turns or tool calls of the agents before),
    /// then everything since.
    /// </summary>
    public IEnumerable<Message> ModelMessages
    {
        get
        {
            if (HandoffHistory != "user_messages")
            {
                return Messages;
            }

            var at = Messages.Count - 1;
            while (at >= 0 && !Contracts.Handoffs.HandedOver(Messages, at))
            {
                at--;
            }

            if (at < 0)
            {
                return Messages;
            }

            // The handoff's own turn is followed by its results: both stay out with the turns before.
            return Messages.Take(at).Where(m => m.Role == Role.User && m.Content.Any(b => b.BlockCase == ContentBlock.BlockOneofCase.Text)).Concat(Messages.Skip(at + 2));
        }
    }

    /// <summary>The memories recalled for the current model turn, as the system prompt's last part; empty when none.</summary>
    public string Recalled { get; set; } = "";

    /// <summary>What the model is told first this turn: the agent's system prompt, then any recalled memories.</summary>
    public string SystemPrompt => Agent.SystemPrompt + Recalled;

    public RepeatGuard Repeats { get; } = new();

    /// <summary>The turn to run next.</summary>
    public int NextIteration { get; set; } = 1;

    /// <summary>A resumed run's last turn: its tool calls, the results journaled, and the calls that were in flight.</summary>
    public (List<ToolCall> Calls, Dictionary<string, ToolResult> Done, HashSet<string> InFlight)? Unfinished { get; set; }

    /// <summary>Calls of a resumed run's last turn that run with arguments their approver set instead of the model's.</summary>
    public HashSet<string> Edited { get; } = new(StringComparer.Ordinal);

    /// <summary>Calls of a resumed run's last turn still waiting for a decision: they do not run.</summary>
    public HashSet<string> Pending { get; } = new(StringComparer.Ordinal);

    /// <summary>The results of a resumed run's denied calls, to journal before it goes on.</summary>
    public List<ToolResult> Denied { get; } = [];

    /// <summary>The results of the current turn's tool calls so far, by call id.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, ToolResult> Results { get; } = new(StringComparer.Ordinal);

    /// <summary>Set once the run's new messages are in the session.</summary>
    public bool MessagesSaved { get; set; }

    /// <summary>Set when another replica took the run over: this one writes nothing more.</summary>
    public bool LeaseLost { get; set; }
}

/// <summary>Counts each tool call by name and canonical arguments, to stop a model that repeats itself.</summary>
internal sealed class RepeatGuard
{
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

    /// <summary>Counts the call; returns how many times it has been made.</summary>
    public int Count(ToolCall call)
    {
        var key = call.Name + "\n" + Canonical(call.ArgumentsJson);
        return _counts[key] = _counts.GetValueOrDefault(key) + 1;
    }

    private static string Canonical(string json)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(json.Length > 0 ? json : "{}");
            var builder = new StringBuilder();
            Write(document.RootElement, builder);
            return builder.ToString();
        }
        catch (System.Text.Json.JsonException)
        {
            return json;
        }

        static void Write(System.Text.Json.JsonElement element, StringBuilder builder)
        {
            if (element.ValueKind == System.Text.Json.JsonValueKind.Object)
            {
                builder.Append('{');
                foreach (var property in element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    builder.Append(property.Name).Append(':');
                    Write(property.Value, builder);
                    builder.Append(',');
                }

                builder.Append('}');
            }
            else
            {
                builder.Append(element.GetRawText());
            }
        }
    }
}
