using System.Globalization;
using Google.Protobuf;
using Namra.Contracts.V1;
using Spectre.Console;

namespace Namra.Cli.Running;

/// <summary>
/// Prints a run's events for people (<c>[Agent]</c>, <c>[Tool]</c> lines, the answer as it streams, then cost, time
/// and tokens) or as JSON lines for tools (<c>--json</c>: each event in the protobuf JSON mapping).
/// </summary>
internal sealed class RunPrinter : IDisposable
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(false));
    private static readonly string[] Frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
    private readonly CliConsole _console;
    private readonly bool _json;
    private readonly Lock _writing = new();
    private readonly Timer? _spinner;
    private long _lastOutput = Environment.TickCount64;
    private int _frame;
    private bool _spinning;
    private bool _inText;
    private string _model = "";
    private readonly Dictionary<string, string> _childAgents = new(StringComparer.Ordinal);

    public RunPrinter(CliConsole console, bool json)
    {
        _console = console;
        _json = json;

        // On a terminal, a spinner fills the silences (the model thinking, a tool running); never in pipes or JSON.
        if (console.Interactive && !json)
        {
            _spinner = new Timer(_ => Spin(), null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
        }
    }

    public void Dispose()
    {
        _spinner?.Dispose();
        lock (_writing)
        {
            ClearSpinner();
        }
    }

    public Task PrintAsync(RunEvent item)
    {
        lock (_writing)
        {
            ClearSpinner();
            _lastOutput = Environment.TickCount64;
            Print(item);
        }

        return Task.CompletedTask;
    }

    private void Spin()
    {
        lock (_writing)
        {
            if (Environment.TickCount64 - _lastOutput < 300)
            {
                return;
            }

            _console.RawOut.Write($"\r{Frames[_frame++ % Frames.Length]} ");
            _console.RawOut.Flush();
            _spinning = true;
        }
    }

    private void ClearSpinner()
    {
        if (_spinning)
        {
            _console.RawOut.Write("\r  \r");
            _spinning = false;
        }
    }

    private void Print(RunEvent item)
    {
        var console = _console;
        if (_json)
        {
            console.RawOut.WriteLine(Formatter.Format(item));
            console.RawOut.Flush();
            return;
        }

        switch (item.EventCase)
        {
            case RunEvent.EventOneofCase.RunStarted:
                _model = Printable(item.RunStarted.Model, keepLines: false);
                break;
            case RunEvent.EventOneofCase.TextDelta:
                if (!_inText)
                {
                    console.Out.Markup("[bold blue][[Agent]][/] ");
                    _inText = true;
                }

                console.Out.Write(new Text(Printable(item.TextDelta.Text, keepLines: true)));
                break;
            case RunEvent.EventOneofCase.ToolCall:
                EndText();
                console.Out.MarkupLineInterpolated($"[bold blue][[Agent]][/] Action: Using {item.ToolCall.Name} tool {Shorten(item.ToolCall.ArgumentsJson, 200)}");
                break;
            case RunEvent.EventOneofCase.ToolResult:
                EndText();
                var result = item.ToolResult;
                if (result.IsError)
                {
                    console.Out.MarkupLineInterpolated($"[bold yellow][[Tool]][/] [yellow]error: {Shorten(result.Content, 500)}[/]");
                }
                else
                {
                    console.Out.MarkupLineInterpolated($"[bold green][[Tool]][/] {Shorten(result.Content, 500)}");
                }

                break;
            case RunEvent.EventOneofCase.RunCompleted:
                EndText();
                var done = item.RunCompleted;
                console.Out.MarkupLine("[dim]" + Markup.Escape(Summary(done.Cost, done.Duration, done.Usage, _model, done.CostUnknown)) + "[/]");
                break;
            case RunEvent.EventOneofCase.ApprovalRequired:
                EndText();
                foreach (var approval in item.ApprovalRequired.Approvals)
                {
                    console.Out.MarkupLineInterpolated($"[bold magenta][[Approval]][/] {Printable(approval.ToolCall.Name, keepLines: false)} waits for a person: {Shorten(approval.Reason, 300)}");
                }

                break;
            case RunEvent.EventOneofCase.Handoff:
                EndText();
                var handoff = item.Handoff;
                console.Out.MarkupLineInterpolated($"[bold magenta][[Handoff]][/] {handoff.From?.Name} → {handoff.To?.Name}{(handoff.Reason.Length > 0 ? ": " + Shorten(handoff.Reason, 300) : "")}");
                break;
            case RunEvent.EventOneofCase.Child:
                EndText();
                PrintChild(item.Child, 1);
                break;
            case RunEvent.EventOneofCase.MemoryRecall:
                EndText();
                foreach (var memory in item.MemoryRecall.Memories)
                {
                    console.Out.MarkupLineInterpolated($"[bold cyan][[Memory]][/] recalled: {Shorten(memory.Text, 300)}");
                }

                break;
            case RunEvent.EventOneofCase.RunFailed:
                EndText();
                var failed = item.RunFailed;
                console.Error.WriteLine($"[Run] stopped ({Status(failed.Status)}): {Printable(failed.Error?.Message ?? "", keepLines: true)}");
                console.Out.MarkupLine("[dim]" + Markup.Escape(Summary(failed.Cost, failed.Duration, failed.Usage, _model, failed.CostUnknown)) + "[/]");
                break;
        }
    }

    // A child run's steps (an agent called as a tool), indented under the call, named by its agent; its text is its
    // answer, which the call's result shows.
    private void PrintChild(ChildRunEvent child, int depth)
    {
        var item = child.Event;
        if (item.EventCase == RunEvent.EventOneofCase.Child)
        {
            PrintChild(item.Child, depth + 1);
            return;
        }

        if (item.EventCase == RunEvent.EventOneofCase.RunStarted)
        {
            _childAgents[item.RunId] = Printable(item.RunStarted.Agent?.Name ?? "", keepLines: false);
        }

        var indent = new string(' ', depth * 2);
        var who = _childAgents.GetValueOrDefault(item.RunId, "agent");
        switch (item.EventCase)
        {
            case RunEvent.EventOneofCase.ToolCall:
                _console.Out.MarkupLineInterpolated($"{indent}[bold blue][[{who}]][/] Action: Using {item.ToolCall.Name} tool {Shorten(item.ToolCall.ArgumentsJson, 200)}");
                break;
            case RunEvent.EventOneofCase.ToolResult when item.ToolResult.IsError:
                _console.Out.MarkupLineInterpolated($"{indent}[bold yellow][[{who}: Tool]][/] [yellow]error: {Shorten(item.ToolResult.Content, 300)}[/]");
                break;
            case RunEvent.EventOneofCase.ToolResult:
                _console.Out.MarkupLineInterpolated($"{indent}[bold green][[{who}: Tool]][/] {Shorten(item.ToolResult.Content, 300)}");
                break;
            case RunEvent.EventOneofCase.RunFailed:
                _console.Out.MarkupLineInterpolated($"{indent}[bold yellow][[{who}]][/] stopped ({Status(item.RunFailed.Status)}): {Shorten(item.RunFailed.Error?.Message ?? "", 300)}");
                break;
        }
    }

    private void EndText()
    {
        if (_inText)
        {
            _console.Out.WriteLine();
            _inText = false;
        }
    }

    /// <summary>
    /// The closing line: <c>Cost: $0.0105  Time: 3.2s  Tokens: 1,234 (in: 1,000, out: 234)</c>; an unknown cost says
    /// so and why (<c>Cost: unknown (no price for MODEL)</c>), never $0.
    /// </summary>
    internal static string Summary(Cost? cost, Google.Protobuf.WellKnownTypes.Duration? duration, TokenUsage? usage, string model = "", string unknownBecause = "")
    {
        var input = (usage?.InputTokens ?? 0) + (usage?.CacheCreationInputTokens ?? 0) + (usage?.CacheReadInputTokens ?? 0);
        var output = usage?.OutputTokens ?? 0;
        var why = unknownBecause.Length > 0 ? Printable(unknownBecause, keepLines: false) : $"no price for {(model.Length > 0 ? model : "the model")}";
        var spent = cost is null ? $"unknown ({why})" : string.Create(CultureInfo.InvariantCulture, $"${cost.TotalUsd:0.0000}");
        return string.Create(CultureInfo.InvariantCulture,
            $"Cost: {spent}  Time: {duration?.ToTimeSpan().TotalSeconds ?? 0:0.0}s  Tokens: {input + output:N0} (in: {input:N0}, out: {output:N0})");
    }

    internal static string Status(RunStatus status) => status switch
    {
        RunStatus.Cancelled => "cancelled",
        RunStatus.TimedOut => "timed out",
        RunStatus.MaxIterations => "max iterations",
        RunStatus.BudgetExceeded => "budget exceeded",
        RunStatus.LoopDetected => "loop detected",
        RunStatus.CutOff => "cut off by max_tokens",
        RunStatus.Refused => "refused",
        RunStatus.ApprovalExpired => "nobody approved in time",
        _ => "failed",
    };

    private static string Shorten(string text, int max)
    {
        var line = Printable(text.ReplaceLineEndings(" "), keepLines: false);
        return line.Length <= max ? line : string.Concat(line.AsSpan(0, max), "…");
    }

    // What a model or a tool returns reaches a terminal: escape sequences in it could move the cursor, rewrite what
    // was printed or set the window's title, so every control character but line breaks and tabs is shown as U+FFFD.
    internal static string Printable(string text, bool keepLines)
    {
        if (!text.Any(c => char.IsControl(c) && !(keepLines && c is '\n' or '\t')))
        {
            return text;
        }

        return string.Create(text.Length, (text, keepLines), static (span, state) =>
        {
            for (var i = 0; i < state.text.Length; i++)
            {
                var c = state.text[i];
                span[i] = char.IsControl(c) && !(state.keepLines && c is '\n' or '\t') ? '\uFFFD' : c;
            }
        });
    }
}
