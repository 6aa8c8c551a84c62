using System.CommandLine;
using Grpc.Core;
using Namra.Cli.Running;
using Namra.Contracts.V1;
using Spectre.Console;

namespace Namra.Cli.Commands;

/// <summary><c>namra runs approve</c>: decides on the tool calls a run waits on, then follows the run to its end.</summary>
internal static class RunsCommand
{
    public static Command Create(CliConsole console)
    {
        var runId = new Argument<string>("run-id") { Description = "The run that waits." };
        var calls = new Argument<string[]>("call-id") { Description = "The tool calls to decide on; every call the run waits on when none are named.", Arity = ArgumentArity.ZeroOrMore };
        var deny = new Option<bool>("--deny") { Description = "Deny the calls instead: the model reads that they were, with the reason." };
        var reason = new Option<string?>("--reason") { Description = "Why, for the record (and for the model, when denied)." };
        var by = new Option<string?>("--by") { Description = "Who decides, for the record; your user name when omitted." };
        var server = new Option<string?>("--server", "-s") { Description = "A deployed orchestrator's gRPC address; the embedded services and data folder when omitted." };
        var json = new Option<bool>("--json") { Description = "Print the run's record when it has ended (or waits again) as JSON." };
        var approve = new Command("approve", "Approve (or with --deny, deny) the tool calls a run waits on; the run goes on, and this waits for its end.")
        {
            runId, calls, deny, reason, by, server, json,
        };
        approve.SetAction(async (parse, cancellationToken) =>
        {
            await using var runner = parse.GetValue(server) is { Length: > 0 } address
                ? AgentRunner.Remote(address)
                : await AgentRunner.StartEmbeddedAsync(cancellationToken).ConfigureAwait(false);
            var id = parse.GetRequiredValue(runId);
            var decidedBy = parse.GetValue(by) ?? Environment.UserName;
            try
            {
                if (parse.GetValue(deny))
                {
                    await runner.Client.DenyToolCallsAsync(new DenyToolCallsRequest { RunId = id, ToolCallIds = { parse.GetValue(calls) ?? [] }, Reason = parse.GetValue(reason) ?? "", DecidedBy = decidedBy },
                        cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await runner.Client.ApproveToolCallsAsync(new ApproveToolCallsRequest { RunId = id, ToolCallIds = { parse.GetValue(calls) ?? [] }, Reason = parse.GetValue(reason) ?? "", DecidedBy = decidedBy },
                        cancellationToken: cancellationToken).ConfigureAwait(false);
                }

                var run = await ApprovalPrompt.FollowAsync(runner, id, cancellationToken).ConfigureAwait(false);
                if (parse.GetValue(json))
                {
                    console.RawOut.WriteLine(Google.Protobuf.JsonFormatter.Default.Format(run));
                }
                else
                {
                    console.Out.WriteLine($"Run {id}: {RunLoopName(run.Status)}{(run.Answer.Length > 0 ? $"\n[Agent] {RunPrinter.Printable(run.Answer, keepLines: true)}" : "")}");
                }

                return run.Status switch
                {
                    RunStatus.Completed => RunCommand.Completed,
                    RunStatus.AwaitingApproval => RunCommand.AwaitingApproval,
                    _ => RunCommand.Stopped,
                };
            }
            catch (RpcException exception)
            {
                console.Error.WriteLine($"namra: {exception.Status.Detail} ({exception.StatusCode})");
                return exception.StatusCode is StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.NotFound ? RunCommand.UsageError : RunCommand.Stopped;
            }
        });
        return new Command("runs", "Runs kept by the server or the data folder.") { approve };
    }

    private static string RunLoopName(RunStatus status) => status switch
    {
        RunStatus.Completed => "completed",
        RunStatus.AwaitingApproval => "waits for approval again",
        _ => $"stopped ({RunPrinter.Status(status)})", // the words namra run uses for how a run stopped
    };
}
