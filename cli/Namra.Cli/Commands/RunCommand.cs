using System.CommandLine;
using Grpc.Core;
using Namra.Cli.Output;
using Namra.Cli.Running;
using Namra.Config;
using Namra.Contracts.V1;

namespace Namra.Cli.Commands;

/// <summary><c>namra run</c> and <c>namra chat</c>: run an agent embedded (the default) or on a deployed orchestrator.</summary>
internal static class RunCommand
{
    public const int Completed = 0;
    public const int Stopped = 1;
    public const int UsageError = 2;

    /// <summary>The run waits for a person to approve tool calls, and nobody here could answer.</summary>
    public const int AwaitingApproval = 3;
    public const int Interrupted = 130;

    /// <summary><c>namra run</c>; a run that waits for approval asks on <paramref name="input"/> (a terminal, or JSON lines with <c>--json</c>).</summary>
    public static Command Create(CliConsole console, TextReader input)
    {
        var agent = new Argument<string>("agent") { Description = "An agent file (.yaml, .yml, .toml), or name@version from the server's registry with --server." };
        var text = new Option<string>("--input", "-i") { Description = "What to ask the agent.", Required = true };
        var options = new RunOptions();
        var command = new Command("run", "Run an agent once and print its thoughts, tool calls and answer. Embedded by default: every service in this process, nothing to start.")
        {
            agent, text, options.Server, options.Session, options.Json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var prepared = await PrepareAsync(console, parse.GetRequiredValue(agent), parse.GetValue(options.Server), cancellationToken).ConfigureAwait(false);
            if (prepared.Source is null)
            {
                return UsageError;
            }

            await using var runner = prepared.Runner!;
            return await RunOnceAsync(console, runner, prepared.Source, parse.GetRequiredValue(text), parse.GetValue(options.Session) ?? "", parse.GetValue(options.Json), input, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    public static Command CreateChat(CliConsole console, TextReader input)
    {
        var agent = new Argument<string>("agent") { Description = "An agent file (.yaml, .yml, .toml), or name@version with --server." };
        var options = new RunOptions();
        var command = new Command("chat", "Talk with an agent: each line you type is a run in one conversation; after a handoff, the agent handed to answers the lines that follow. An empty line or Ctrl-D ends it.")
        {
            agent, options.Server, options.Session, options.Json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var prepared = await PrepareAsync(console, parse.GetRequiredValue(agent), parse.GetValue(options.Server), cancellationToken).ConfigureAwait(false);
            if (prepared.Source is null)
            {
                return UsageError;
            }

            await using var runner = prepared.Runner!;
            var session = parse.GetValue(options.Session) is { Length: > 0 } given ? given : $"chat-{Guid.CreateVersion7():N}";
            console.Error.WriteLine($"Session {session}. Type a message; an empty line ends the chat.");
            var status = Completed;
            var source = prepared.Source;
            while (!cancellationToken.IsCancellationRequested)
            {
                console.Error.Write("> ");
                var line = await input.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (string.IsNullOrWhiteSpace(line))
                {
                    break;
                }

                AgentRef? handedTo = null;
                status = await RunOnceAsync(console, runner, source, line, session, parse.GetValue(options.Json), input, cancellationToken, to => handedTo = to).ConfigureAwait(false);
                if (status == Interrupted)
                {
                    break;
                }

                if (handedTo is { Name.Length: > 0 })
                {
                    // The conversation stays with the agent it was handed to, as the run's answered_by says: the next line
                    // is that agent's to answer, resolved from the same registry (the agent file's folder when embedded).
                    source = new AgentSource { Reference = handedTo.Version.Length > 0 ? $"{handedTo.Name}@{handedTo.Version}" : handedTo.Name };
                    console.Error.WriteLine($"{source.Reference} answers from here.");
                }
            }

            return status;
        });
        return command;
    }

    // handedTo hears of each handoff of the run (its own, not those of the agents it calls as tools).
    private static async Task<int> RunOnceAsync(CliConsole console, AgentRunner runner, AgentSource source, string input, string session, bool json, TextReader decisions,
        CancellationToken interrupt, Action<AgentRef>? handedTo = null)
    {
        using var printer = new RunPrinter(console, json);
        Task OnEvent(RunEvent item)
        {
            if (item.EventCase == RunEvent.EventOneofCase.Handoff && item.Handoff.To is { } to)
            {
                handedTo?.Invoke(to);
            }

            return printer.PrintAsync(item);
        }

        try
        {
            var last = await runner.StreamAsync(new ExecuteStreamRequest { Agent = source, Input = input, SessionId = session }, OnEvent, interrupt).ConfigureAwait(false);
            if (last?.EventCase == RunEvent.EventOneofCase.ApprovalRequired)
            {
                // A person decides here when one can be asked: on a terminal, or in JSON lines on standard input.
                last = console.Interactive || json
                    ? await ApprovalPrompt.DecideAndFollowAsync(console, runner, last, decisions, json, OnEvent, interrupt).ConfigureAwait(false) ?? last
                    : last;
                if (last.EventCase == RunEvent.EventOneofCase.ApprovalRequired)
                {
                    console.Error.WriteLine($"namra: run {last.RunId} waits for approval of {last.ApprovalRequired.Approvals.Count} tool call(s); decide with: namra runs approve {last.RunId} [CALL_ID] [--deny --reason TEXT]");
                    return AwaitingApproval;
                }
            }

            return last?.EventCase switch
            {
                RunEvent.EventOneofCase.RunCompleted => Completed,
                RunEvent.EventOneofCase.RunFailed when last.RunFailed.Status == RunStatus.Cancelled && interrupt.IsCancellationRequested => Interrupted,
                // The provider refused the key: the set-up is wrong, as when the key is missing.
                RunEvent.EventOneofCase.RunFailed when last.RunFailed.Error?.Code is (int)StatusCode.Unauthenticated or (int)StatusCode.PermissionDenied => UsageError,
                null when interrupt.IsCancellationRequested => Interrupted,
                _ => Stopped,
            };
        }
        catch (RpcException exception)
        {
            console.Error.WriteLine($"namra: {exception.Status.Detail} ({exception.StatusCode})");
            foreach (var diagnostic in RpcDiagnostics.Lines(exception))
            {
                console.Error.WriteLine($"  {diagnostic}");
            }

            return exception.StatusCode is StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.Unauthenticated or StatusCode.PermissionDenied or StatusCode.NotFound ? UsageError : Stopped;
        }
    }

    private static async Task<(AgentSource? Source, AgentRunner? Runner)> PrepareAsync(CliConsole console, string agent, string? server, CancellationToken cancellationToken)
    {
        var path = Path.IsPathRooted(agent) ? agent : Path.Combine(console.WorkingDirectory, agent);
        AgentSource source;
        if (File.Exists(path))
        {
            // The embedded services start while the file is checked: on two cores that hides most of the check.
            var folder = Path.GetDirectoryName(Path.GetFullPath(path));
            var starting = server is null ? Task.Run(() => AgentRunner.StartEmbeddedAsync(cancellationToken, folder), cancellationToken) : null;
            var loaded = await new AgentLoader().LoadFileAsync(path, cancellationToken).ConfigureAwait(false);
            if (!loaded.IsValid)
            {
                new DiagnosticPrinter(console.Out).Print(agent, loaded with { Diagnostics = [.. loaded.Diagnostics.Select(d => d with { File = agent })] });
                await DiscardAsync(starting).ConfigureAwait(false);
                return (null, null);
            }

            if (server is null && MissingKey(loaded.Agent!.Llm) is { } variable)
            {
                console.Error.WriteLine($"namra: {agent} uses {loaded.Agent.Llm.Provider.ToString().ToLowerInvariant()}, and {variable} is not set. Set it (export {variable}=...) and run again.");
                await DiscardAsync(starting).ConfigureAwait(false);
                return (null, null);
            }

            var content = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
            source = new AgentSource { Inline = new InlineAgent { Content = content, FileName = Path.GetFileName(path), Format = AgentLoader.DetectFormat(path, content) } };
            if (starting is not null)
            {
                return (source, await starting.ConfigureAwait(false));
            }
        }
        else if (server is not null && agent.Contains('@', StringComparison.Ordinal))
        {
            source = new AgentSource { Reference = agent };
        }
        else
        {
            console.Error.WriteLine($"namra: {agent}: no such file{(server is null ? "" : ", and not a name@version reference")}.");
            return (null, null);
        }

        var runner = server is null ? await AgentRunner.StartEmbeddedAsync(cancellationToken).ConfigureAwait(false) : AgentRunner.Remote(server);
        return (source, runner);
    }

    /// <summary>Stops embedded services started for a run that will not happen.</summary>
    private static async Task DiscardAsync(Task<AgentRunner>? starting)
    {
        if (starting is not null)
        {
            await using var runner = await starting.ConfigureAwait(false);
        }
    }

    /// <summary>The environment variable an embedded run needs for the agent's provider, when it is not set.</summary>
    internal static string? MissingKey(LlmConfig llm)
    {
        var variable = llm.ApiKeyEnv.Length > 0 ? llm.ApiKeyEnv : llm.Provider switch
        {
            LlmProvider.Anthropic => "ANTHROPIC_API_KEY",
            LlmProvider.Openai => "OPENAI_API_KEY",
            _ => null,
        };
        return variable is not null && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(variable)) ? variable : null;
    }

    private sealed class RunOptions
    {
        public Option<string?> Server { get; } = new("--server", "-s") { Description = "A deployed orchestrator's gRPC address, such as http://namra.example.com:50051; embedded when omitted." };

        public Option<string?> Session { get; } = new("--session") { Description = "Continue this conversation (kept in the data folder when embedded)." };

        public Option<bool> Json { get; } = new("--json") { Description = "Print the run's events as JSON lines." };
    }

    private static class RpcDiagnostics
    {
        public static IEnumerable<string> Lines(RpcException exception)
        {
            var status = exception.GetRpcStatus();
            if (status is null)
            {
                yield break;
            }

            foreach (var detail in status.Details)
            {
                if (detail.TryUnpack<Diagnostic>(out var diagnostic))
                {
                    yield return $"{diagnostic.Line}:{diagnostic.Column}: {diagnostic.Message}";
                }
            }
        }
    }
}
