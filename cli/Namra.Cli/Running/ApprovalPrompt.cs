using System.Text.Json;
using Grpc.Core;
using Namra.Contracts;
using Namra.Contracts.V1;
using Spectre.Console;

namespace Namra.Cli.Running;

/// <summary>
/// The tool calls a run waits on, decided from the command line: on a terminal each call is shown (tool, arguments,
/// why it needs approval) and the person answers <c>y</c>, <c>n</c> (with a reason) or <c>e</c> (other arguments);
/// with <c>--json</c> one JSON line per call on standard input says <c>{"approve": true|false, "reason": "...",
/// "arguments": {...}}</c>. The run is then followed to its end, asking again if it waits again.
/// </summary>
internal static class ApprovalPrompt
{
    private static readonly TimeSpan FollowInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Decides the calls of <paramref name="waiting"/> and follows the run; null when there was nobody to ask (no more input).</summary>
    public static async Task<RunEvent?> DecideAndFollowAsync(CliConsole console, AgentRunner runner, RunEvent waiting, TextReader input, bool json,
        Func<RunEvent, Task> print, CancellationToken cancellationToken)
    {
        var runId = waiting.RunId;
        var approvals = waiting.ApprovalRequired.Approvals.ToList();
        while (true)
        {
            foreach (var approval in approvals)
            {
                if (!await DecideAsync(console, runner, runId, approval, input, json, cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }
            }

            var run = await FollowAsync(runner, runId, cancellationToken).ConfigureAwait(false);
            if (run.Status == RunStatus.AwaitingApproval)
            {
                var again = RunEvents.Waiting(run);
                again.RunId = runId;
                approvals = [.. again.ApprovalRequired.Approvals];
                await print(again).ConfigureAwait(false);
                continue;
            }

            var last = RunEvents.Ended(run);
            last.RunId = runId;
            if (run.Answer.Length > 0 && run.Status == RunStatus.Completed && !json)
            {
                console.Out.WriteLine($"[Agent] {RunPrinter.Printable(run.Answer, keepLines: true)}");
            }

            await print(last).ConfigureAwait(false);
            return last;
        }
    }

    /// <summary>Waits until the run is no longer running: ended, or waiting again.</summary>
    public static async Task<Run> FollowAsync(AgentRunner runner, string runId, CancellationToken cancellationToken)
    {
        while (true)
        {
            var run = (await runner.Client.GetRunAsync(new GetRunRequest { RunId = runId }, cancellationToken: cancellationToken).ConfigureAwait(false)).Run;
            if (run.Status is not (RunStatus.Running or RunStatus.Pending))
            {
                return run;
            }

            await Task.Delay(FollowInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    // One call: asked until the server takes the answer (edited arguments it refuses are asked for again).
    private static async Task<bool> DecideAsync(CliConsole console, AgentRunner runner, string runId, ToolApproval approval, TextReader input, bool json, CancellationToken cancellationToken)
    {
        while (true)
        {
            var decision = json ? await ReadJsonAsync(console, input, cancellationToken).ConfigureAwait(false) : await AskAsync(console, input, approval, cancellationToken).ConfigureAwait(false);
            if (decision is null)
            {
                return false;
            }

            var (approve, reason, arguments) = decision.Value;

            try
            {
                if (approve)
                {
                    var request = new ApproveToolCallsRequest { RunId = runId, ToolCallIds = { approval.ToolCall.Id }, Reason = reason, DecidedBy = Environment.UserName };
                    if (arguments is not null)
                    {
                        request.ArgumentsJson[approval.ToolCall.Id] = arguments;
                    }

                    await runner.Client.ApproveToolCallsAsync(request, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await runner.Client.DenyToolCallsAsync(new DenyToolCallsRequest { RunId = runId, ToolCallIds = { approval.ToolCall.Id }, Reason = reason, DecidedBy = Environment.UserName },
                        cancellationToken: cancellationToken).ConfigureAwait(false);
                }

                return true;
            }
            catch (RpcException exception) when (exception.StatusCode == StatusCode.InvalidArgument)
            {
                console.Error.WriteLine($"namra: {exception.Status.Detail}");
            }
        }
    }

    private static async Task<(bool Approve, string Reason, string? Arguments)?> AskAsync(CliConsole console, TextReader input, ToolApproval approval, CancellationToken cancellationToken)
    {
        console.Error.WriteLine($"[Approval] {RunPrinter.Printable(approval.ToolCall.Name, keepLines: false)} {RunPrinter.Printable(approval.ToolCall.ArgumentsJson, keepLines: false)}");
        console.Error.WriteLine($"           why: {RunPrinter.Printable(approval.Reason, keepLines: false)}");
        while (true)
        {
            console.Error.Write("Run it? [y]es, [n]o, [e]dit the arguments: ");
            switch ((await input.ReadLineAsync(cancellationToken).ConfigureAwait(false))?.Trim().ToLowerInvariant())
            {
                case null:
                    return null;
                case "y" or "yes":
                    return (true, "", null);
                case "n" or "no":
                    console.Error.Write("Why not (the model reads it; optional): ");
                    return (false, (await input.ReadLineAsync(cancellationToken).ConfigureAwait(false))?.Trim() ?? "", null);
                case "e" or "edit":
                    console.Error.Write("Arguments (one line of JSON): ");
                    if (await input.ReadLineAsync(cancellationToken).ConfigureAwait(false) is not { } edited)
                    {
                        return null;
                    }

                    return (true, "", edited.Trim());
            }
        }
    }

    // One decision per line: {"approve": true|false, "reason": "...", "arguments": {...}}. A line that is not one says
    // why on standard error and the next is read; the end of input is nobody answering.
    private static async Task<(bool Approve, string Reason, string? Arguments)?> ReadJsonAsync(CliConsole console, TextReader input, CancellationToken cancellationToken)
    {
        while (await input.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("approve", out var approve) && approve.ValueKind is JsonValueKind.True or JsonValueKind.False
                    && (!root.TryGetProperty("reason", out var reason) || reason.ValueKind == JsonValueKind.String)
                    && (!root.TryGetProperty("arguments", out var arguments) || arguments.ValueKind == JsonValueKind.Object))
                {
                    return (approve.GetBoolean(), root.TryGetProperty("reason", out var given) ? given.GetString()! : "",
                        root.TryGetProperty("arguments", out var edited) ? edited.GetRawText() : null);
                }
            }
            catch (JsonException)
            {
                // said below
            }

            console.Error.WriteLine("namra: a decision is one line of JSON: {\"approve\": true|false, \"reason\": \"...\", \"arguments\": {...}}");
        }

        return null;
    }
}
