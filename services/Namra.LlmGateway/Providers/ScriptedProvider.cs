using System.Runtime.CompilerServices;
using Grpc.Core;
using Namra.Contracts.V1;
using Namra.Hosting.Errors;

namespace Namra.LlmGateway.Providers;

/// <summary>
/// Replays the turns written in the agent's <c>llm.script</c>: for offline examples and for testing agents
/// without a model. Stateless: the turn replayed is the number of assistant messages after the conversation's
/// last user message (and after its last handoff to another agent). Streams like a real provider (text in word-sized deltas, tool-call arguments in pieces)
/// and reports deterministic usage (the gateway's token estimate).
/// </summary>
internal sealed class ScriptedProvider : ILlmProvider, IEmbeddingProvider
{
    /// <summary>How many numbers a scripted embedding has.</summary>
    public const int EmbeddingDimensions = 256;

    public const string ModelName = "scripted";

    private const int ArgumentChunk = 8;

    public LlmProvider Provider => LlmProvider.Scripted;

    public async IAsyncEnumerable<StreamGenerateResponse> StreamAsync(ChatRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var turnIndex = TurnIndex(request.Messages);
        var script = Playable(request.Llm.Script, request.Messages);
        if (turnIndex >= script.Count)
        {
            throw new NamraException(StatusCode.FailedPrecondition,
                $"The script has {script.Count} turn(s) and the conversation asks for turn {turnIndex + 1}; add turns to llm.script, or end the run sooner.");
        }

        var turn = script[turnIndex];
        var message = new Message { Role = Role.Assistant };
        foreach (var piece in Words(turn.Text))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return new StreamGenerateResponse { TextDelta = new TextDelta { Text = piece } };
        }

        if (turn.Text.Length > 0)
        {
            message.Content.Add(new ContentBlock { Text = turn.Text });
        }

        var output = Contracts.TokenEstimator.Estimate(turn.Text);
        for (var index = 0; index < turn.ToolCalls.Count; index++)
        {
            var scripted = turn.ToolCalls[index];
            var call = new ToolCall
            {
                Id = scripted.Id.Length > 0 ? scripted.Id : $"call_{turnIndex + 1}_{index + 1}",
                Name = scripted.Name,
                ArgumentsJson = scripted.ArgumentsJson.Length > 0 ? scripted.ArgumentsJson : "{}",
            };
            var arguments = call.ArgumentsJson;
            for (var offset = 0; offset < arguments.Length; offset += ArgumentChunk)
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return new StreamGenerateResponse
                {
                    ToolCallDelta = new ToolCallDelta
                    {
                        Index = index,
                        Id = offset == 0 ? call.Id : "",
                        Name = offset == 0 ? call.Name : "",
                        ArgumentsJsonDelta = arguments.Substring(offset, Math.Min(ArgumentChunk, arguments.Length - offset)),
                    },
                };
            }

            yield return new StreamGenerateResponse { ToolCall = call };
            message.Content.Add(new ContentBlock { ToolCall = call });
            output += Contracts.TokenEstimator.Estimate(call.Name) + Contracts.TokenEstimator.Estimate(arguments);
        }

        await Task.CompletedTask.ConfigureAwait(false);
        yield return new StreamGenerateResponse
        {
            Completed = new GenerateCompleted
            {
                Message = message,
                StopReason = turn.ToolCalls.Count > 0 ? StopReason.ToolUse : StopReason.EndTurn,
                Usage = new TokenUsage
                {
                    InputTokens = Contracts.TokenEstimator.EstimateInput(request.SystemPrompt, request.Messages, request.Tools),
                    OutputTokens = output,
                },
                Model = ModelName,
                ResponseId = $"scripted_{turnIndex + 1}",
            },
        };
    }

    /// <summary>
    /// Assistant messages after the last user message, and after the last handoff (a successful call of a
    /// <c>transfer_to_</c> tool, after which another agent, with a script of its own, answers): the turns of this agent
    /// in this run so far.
    /// </summary>
    internal static int TurnIndex(IReadOnlyList<Message> messages)
    {
        var turns = 0;
        for (var i = messages.Count - 1; i >= 0 && messages[i].Role != Role.User; i--)
        {
            if (messages[i].Role == Role.Assistant)
            {
                if (Contracts.Handoffs.HandedOver(messages, i))
                {
                    break;
                }

                turns++;
            }
        }

        return turns;
    }

    // The turns played for this conversation: those whose input_matches matches its last user message in full, or that have none.
    private static List<ScriptedTurn> Playable(IEnumerable<ScriptedTurn> script, IReadOnlyList<Message> messages)
    {
        var input = messages.LastOrDefault(m => m.Role == Role.User) is { } user ? string.Concat(user.Content.Select(b => b.Text)) : "";
        return [.. script.Where(turn => turn.InputMatches.Length == 0 || System.Text.RegularExpressions.Regex.IsMatch(input, $"^(?:{turn.InputMatches})$",
            System.Text.RegularExpressions.RegexOptions.NonBacktracking | System.Text.RegularExpressions.RegexOptions.Singleline, TimeSpan.FromSeconds(1)))];
    }

    /// <summary>
    /// Embeddings for offline use: each text's words (lower case, letters and digits), hashed into
    /// <see cref="EmbeddingDimensions"/> buckets and scaled to length 1, so texts sharing words are similar. Deterministic,
    /// free, and no model: good for examples and tests, not for meaning.
    /// </summary>
    public Task<EmbedResult> EmbedAsync(LlmConfig llm, IReadOnlyList<string> inputs, CancellationToken cancellationToken)
    {
        var response = new EmbedResponse { Usage = new TokenUsage() };
        foreach (var input in inputs)
        {
            var vector = new float[EmbeddingDimensions];
            foreach (var word in System.Text.RegularExpressions.Regex.Split(input.ToLowerInvariant(), "[^\\p{L}\\p{Nd}]+").Where(w => w.Length > 0))
            {
                vector[(int)(Fnv1a(word) % EmbeddingDimensions)] += 1;
            }

            var length = MathF.Sqrt(vector.Sum(v => v * v));
            response.Embeddings.Add(new Embedding { Values = { length > 0 ? vector.Select(v => v / length) : vector } });
            response.Usage.InputTokens += Contracts.TokenEstimator.Estimate(input);
        }

        return Task.FromResult(new EmbedResult(response, ""));
    }

    // FNV-1a over the word's UTF-16 code units: stable across processes and versions, unlike string.GetHashCode.
    private static uint Fnv1a(string word)
    {
        var hash = 2166136261u;
        foreach (var c in word)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }

    // Word-sized deltas, each keeping its trailing space, as providers stream text.
    private static IEnumerable<string> Words(string text)
    {
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == ' ')
            {
                yield return text[start..(i + 1)];
                start = i + 1;
            }
        }

        if (start < text.Length)
        {
            yield return text[start..];
        }
    }
}
