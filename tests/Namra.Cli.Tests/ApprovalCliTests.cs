using System.Diagnostics;
using System.Text.Json;

namespace Namra.Cli.Tests;

/// <summary>
/// Runs that wait for a person, from the command line: decided in JSON lines on standard input, left waiting (exit 3)
/// when nobody can be asked and then decided with <c>namra runs approve</c> in another process, and asked on a
/// pseudo-terminal as a person sees it.
/// </summary>
[Collection(DataFolder.Collection)]
public sealed class ApprovalCliTests : IDisposable
{
    private const string Agent = """
        name: careful
        version: 1.0.0
        llm:
          provider: scripted
          model: scripted
          script:
            - text: "Adding."
              tool_calls:
                - { name: calculator, id: call_1, arguments: { expression: "40 + 2" } }
            - text: "It is 42."
        tools:
          - name: calculator
            type: builtin.calculator
            approval: always
        """;

    private readonly string _folder = Directory.CreateTempSubdirectory("namra-cli-approval-").FullName;

    public ApprovalCliTests() => File.WriteAllText(Path.Combine(_folder, "careful.yaml"), Agent);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Run_Json_PrintsTheApprovalRequired_ReadsTheDecisionFromStandardInput_AndFollowsTheRunToItsEnd()
    {
        using var input = new StringReader("{\"approve\": true, \"reason\": \"fine\"}\n");

        var (exitCode, output, error) = await RunAsync(input, "run", "careful.yaml", "--input", "Add.", "--json");

        Assert.True(exitCode == 0, error);
        var events = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        var required = Assert.Single(events, e => e.TryGetProperty("approvalRequired", out _)).GetProperty("approvalRequired").GetProperty("approvals")[0];
        Assert.Equal("calculator", required.GetProperty("toolCall").GetProperty("name").GetString());
        Assert.Equal("It is 42.", events[^1].GetProperty("runCompleted").GetProperty("answer").GetString());
    }

    [Fact]
    public async Task Run_Json_ALineThatIsNotADecision_IsSaidAndTheNextIsRead()
    {
        using var input = new StringReader("1\n{\"approve\": \"yes\"}\n{\"approve\": false, \"reason\": \"not today\"}\n");

        var (exitCode, output, error) = await RunAsync(input, "run", "careful.yaml", "--input", "Add.", "--json");

        Assert.True(exitCode == 0, error);
        Assert.Equal(2, error.Split('\n').Count(line => line.StartsWith("namra: a decision is one line of JSON", StringComparison.Ordinal)));
        var last = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        Assert.Equal("It is 42.", last.GetProperty("runCompleted").GetProperty("answer").GetString());
    }

    [Fact]
    public async Task Run_WithNobodyToAsk_ExitsThree_AndRunsApprove_InAnotherProcess_FinishesTheRun()
    {
        using var nobody = new StringReader("");

        var waiting = await RunAsync(nobody, "run", "careful.yaml", "--input", "Add.");
        var runId = System.Text.RegularExpressions.Regex.Match(waiting.Error, "run ([0-9a-f]{32}) waits for approval").Groups[1].Value;
        var approved = await RunAsync(nobody, "runs", "approve", runId, "--reason", "checked", "--json");

        Assert.Equal(3, waiting.ExitCode);
        Assert.Contains("[Approval] calculator waits for a person: Every call of calculator needs approval.", waiting.Output, StringComparison.Ordinal);
        Assert.Contains($"namra runs approve {runId}", waiting.Error, StringComparison.Ordinal);
        Assert.True(approved.ExitCode == 0, approved.Error);
        var run = JsonDocument.Parse(approved.Output).RootElement;
        Assert.Equal(("RUN_STATUS_COMPLETED", "It is 42."), (run.GetProperty("status").GetString(), run.GetProperty("answer").GetString()));
        Assert.Equal("checked", run.GetProperty("approvals")[0].GetProperty("decisionReason").GetString());
        var again = await RunAsync(nobody, "runs", "approve", runId);
        Assert.Equal(2, again.ExitCode); // decided already: FAILED_PRECONDITION
        Assert.Contains("not waiting for approval", again.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_OnATerminal_ShowsTheCall_AsksYesNoOrEdit_AndTakesTheEditedArguments()
    {
        // `script` runs namra on a pseudo-terminal, as a person's shell would, and types what it reads from its own input.
        Assert.SkipUnless(File.Exists("/usr/bin/script"), "util-linux's script is not installed");
        var command = $"dotnet {Quote(typeof(NamraCli).Assembly.Location)} run careful.yaml --input Add.";
        var start = new ProcessStartInfo("/usr/bin/script", ["-qec", command, "/dev/null"])
        {
            WorkingDirectory = _folder,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["NAMRA_DATA_DIR"] = Path.Combine(_folder, "data");
        start.Environment["TERM"] = "xterm";
        start.Environment.Remove("NO_COLOR");
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();

        // Answers typed before the prompt wait in the terminal's input, as a fast typist's would.
        await process.StandardInput.WriteAsync("e\n{\"expression\": \"6 * 7\"}\n");
        await process.StandardInput.FlushAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        var text = await output;

        Assert.True(process.ExitCode == 0, text);
        Assert.Contains("[Approval] calculator { \"expression\": \"40 + 2\" }", text, StringComparison.Ordinal);
        Assert.Contains("why: Every call of calculator needs approval.", text, StringComparison.Ordinal);
        Assert.Contains("Run it? [y]es, [n]o, [e]dit the arguments: e", text, StringComparison.Ordinal);
        Assert.Contains("Arguments (one line of JSON): {\"expression\": \"6 * 7\"}", text, StringComparison.Ordinal);
        Assert.Contains("It is 42.", text, StringComparison.Ordinal);
    }

    private static string Quote(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private async Task<(int ExitCode, string Output, string Error)> RunAsync(TextReader input, params string[] args)
    {
        Environment.SetEnvironmentVariable("NAMRA_DATA_DIR", Path.Combine(_folder, "data"));
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exitCode = await NamraCli.RunAsync(args, CliConsole.Create(output, error, color: false, _folder), input);
        return (exitCode, output.ToString(), error.ToString());
    }
}

/// <summary>The tests that set <c>NAMRA_DATA_DIR</c>, a variable of the whole process, run one at a time.</summary>
public static class DataFolder
{
    public const string Collection = "NAMRA_DATA_DIR";
}
