using System.Diagnostics;
using System.Text.Json;

namespace Namra.Cli.Tests;

/// <summary>The <c>namra</c> command line as a user runs it: arguments in, text and exit code out.</summary>
[Collection(DataFolder.Collection)]
public sealed class CliTests : IDisposable
{
    private const string BadAgent = "name: demo\nversion: 1.0.0\nllm:\n  provider: antropic\n  model: m\n  temprature: 0.7\n";

    private readonly string _folder = Directory.CreateTempSubdirectory("namra-cli-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Init_ThenValidate_WritesAValidAgentAndExitsZero()
    {
        var init = await RunAsync("init", "support_bot");
        var validate = await RunAsync("validate", "support_bot.yaml");

        Assert.Equal(0, init.ExitCode);
        Assert.True(File.Exists(Path.Combine(_folder, "support_bot.yaml")));
        Assert.Equal(0, validate.ExitCode);
        Assert.StartsWith("support_bot.yaml: valid (support_bot@1.0.0, sha256:", validate.Output, StringComparison.Ordinal);
        // The model it suggests is a current one: it has a published price.
        var suggested = System.Text.RegularExpressions.Regex.Match(await File.ReadAllTextAsync(Path.Combine(_folder, "support_bot.yaml")), @"model: (claude-\S+)").Groups[1].Value;
        Assert.Contains($"\"model\": \"{suggested}\"", await File.ReadAllTextAsync(Testing.RepositoryPaths.Combine("services", "Namra.LlmGateway", "Pricing", "prices.json")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Init_WhenFileExists_RefusesWithoutForce()
    {
        await File.WriteAllTextAsync(Path.Combine(_folder, "my_agent.yaml"), "keep me");

        var refused = await RunAsync("init");
        var forced = await RunAsync("init", "--force");

        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("pass --force", refused.Error, StringComparison.Ordinal);
        Assert.Equal(0, forced.ExitCode);
        Assert.NotEqual("keep me", await File.ReadAllTextAsync(Path.Combine(_folder, "my_agent.yaml")));
    }

    [Fact]
    public async Task Validate_WhenInvalid_PrintsCompilerStyleDiagnosticsWithCaretsAndExitsOne()
    {
        await File.WriteAllTextAsync(Path.Combine(_folder, "bad.yaml"), BadAgent);

        var result = await RunAsync("validate", "bad.yaml");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(
            """
            bad.yaml:4:13: error NAMRA0105: `antropic` is not a valid `provider`; expected one of `anthropic`, `openai`, `openai_compatible`, `scripted`.
            4 |   provider: antropic
              |             ^^^^^^^^
              = hint: did you mean `anthropic`?
            bad.yaml:6:3: error NAMRA0101: Unknown field `temprature` in `llm`.
            6 |   temprature: 0.7
              |   ^^^^^^^^^^
              = hint: did you mean `temperature`?
            bad.yaml: 2 errors

            """.ReplaceLineEndings(), result.Output);
    }

    [Fact]
    public async Task Validate_WhenColorIsOn_ColorsTheOutputAndWhenOff_WritesNoEscapeCodes()
    {
        await File.WriteAllTextAsync(Path.Combine(_folder, "bad.yaml"), BadAgent);

        var colored = await RunAsync(color: true, "validate", "bad.yaml");
        var plain = await RunAsync(color: false, "validate", "bad.yaml");

        Assert.Contains("\u001b[", colored.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b", plain.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_WithJsonFormat_WritesMachineReadableDiagnostics()
    {
        await File.WriteAllTextAsync(Path.Combine(_folder, "bad.yaml"), BadAgent);
        await RunAsync("init", "good");

        var result = await RunAsync("validate", "--format", "json", "bad.yaml", "good.yaml");

        Assert.Equal(1, result.ExitCode);
        using var json = JsonDocument.Parse(result.Output);
        Assert.False(json.RootElement.GetProperty("valid").GetBoolean());
        var files = json.RootElement.GetProperty("files");
        var first = files[0].GetProperty("diagnostics")[0];
        Assert.Equal(("NAMRA0105", 4, 13, "llm.provider", "SEVERITY_ERROR"),
            (first.GetProperty("code").GetString(), first.GetProperty("line").GetInt32(), first.GetProperty("column").GetInt32(),
             first.GetProperty("fieldPath").GetString(), first.GetProperty("severity").GetString()));
        Assert.True(files[1].GetProperty("valid").GetBoolean());
        Assert.Equal("good", files[1].GetProperty("agent").GetProperty("name").GetString());
    }

    [Fact]
    public async Task Validate_WhenFileIsMissing_SaysSoAndExitsOne()
    {
        var result = await RunAsync("validate", "nowhere.yaml");

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("nowhere.yaml: error NAMRA0000: The file does not exist.", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_WithUnknownFormat_IsAUsageError()
    {
        var result = await RunAsync("validate", "--format", "xml", "a.yaml");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("xml", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Schema_PrintsTheAgentJsonSchema()
    {
        var result = await RunAsync("schema");

        using var json = JsonDocument.Parse(result.Output);
        Assert.Equal("Namra agent definition", json.RootElement.GetProperty("title").GetString());
    }

    [Fact]
    public async Task Version_PrintsTheVersion()
    {
        var result = await RunAsync("version");

        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("namra 0.1.0", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Process_WhenPipedWithNoColor_WritesPlainText()
    {
        await File.WriteAllTextAsync(Path.Combine(_folder, "bad.yaml"), BadAgent);
        var start = new ProcessStartInfo("dotnet", [typeof(NamraCli).Assembly.Location, "validate", "bad.yaml"])
        {
            WorkingDirectory = _folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["NO_COLOR"] = "1" },
        };

        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();

        Assert.Equal(1, process.ExitCode);
        Assert.StartsWith("bad.yaml:4:13: error NAMRA0105:", output, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_ATeamFromItsFolder_PrintsTheChildsStepsUnderTheCall_AndTheTeamsUsage()
    {
        UseDataFolder();
        foreach (var agent in (string[])["coordinator", "researcher", "writer"])
        {
            File.Copy(Path.Combine(Testing.RepositoryPaths.Root, "examples", "agents", agent + ".yaml"), Path.Combine(_folder, agent + ".yaml"));
        }

        var result = await RunAsync("run", "coordinator.yaml", "--input", "How far does light go in 2.5 s?");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("[Agent] Action: Using research tool", result.Output, StringComparison.Ordinal);
        Assert.Contains("  [researcher] Action: Using calculator tool { \"expression\": \"299792.458 * 2.5\" }", result.Output, StringComparison.Ordinal);
        Assert.Contains("  [researcher: Tool] 749481.145", result.Output, StringComparison.Ordinal);
        Assert.Contains("[Tool] In two and a half seconds, light could go around the Earth more than eighteen times.", result.Output, StringComparison.Ordinal);
        Assert.Contains("[Agent] In two and a half seconds, light could go around the Earth more than eighteen times: about 749,481 km.", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_ATriageAgent_HandsTheConversationToASpecialistOfItsFolder_WhichAnswers()
    {
        UseDataFolder();
        foreach (var agent in (string[])["triage", "billing", "refunds"])
        {
            File.Copy(Path.Combine(Testing.RepositoryPaths.Root, "examples", "agents", agent + ".yaml"), Path.Combine(_folder, agent + ".yaml"));
        }

        var result = await RunAsync("run", "triage.yaml", "--input", "I was charged twice for my order.", "--json");

        Assert.True(result.ExitCode == 0, result.Error);
        var events = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        var handoff = Assert.Single(events, e => e.TryGetProperty("handoff", out _)).GetProperty("handoff");
        Assert.Equal(("triage", "refunds"), (handoff.GetProperty("from").GetProperty("name").GetString(), handoff.GetProperty("to").GetProperty("name").GetString()));
        Assert.Equal("I refunded the duplicate charge of $49.90; it reaches your card in 3 to 5 days.", events[^1].GetProperty("runCompleted").GetProperty("answer").GetString());
    }

    [Fact]
    public async Task Run_AnAgentRemembersAFactInOneSession_AndRecallsItInTheNext()
    {
        UseDataFolder();
        File.Copy(Path.Combine(Testing.RepositoryPaths.Root, "examples", "agents", "memory_keeper.yaml"), Path.Combine(_folder, "memory_keeper.yaml"));

        var told = await RunAsync("run", "memory_keeper.yaml", "--input", "Remember: my favourite colour is teal.", "--session", "monday");
        var asked = await RunAsync("run", "memory_keeper.yaml", "--input", "What is my favourite colour?", "--session", "tuesday");

        Assert.True(told.ExitCode == 0, told.Error);
        Assert.Contains("[Agent] Action: Using remember tool { \"fact\": \"The user's favourite colour is teal.\" }", told.Output, StringComparison.Ordinal);
        Assert.True(asked.ExitCode == 0, asked.Error);
        Assert.StartsWith("[Memory] recalled: The user's favourite colour is teal.", asked.Output, StringComparison.Ordinal);
        Assert.Contains("[Agent] Your favourite colour is teal, as you told me before.", asked.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_EmbeddedScriptedAgent_PrintsThoughtsToolCallsAnswerAndUsage()
    {
        UseDataFolder();
        File.Copy(Path.Combine(Testing.RepositoryPaths.Root, "examples", "agents", "calculator.yaml"), Path.Combine(_folder, "calculator.yaml"));

        var result = await RunAsync("run", "calculator.yaml", "--input", "What is (17 + 25) * 2?");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("[Agent] I'll compute that with the calculator.", result.Output, StringComparison.Ordinal);
        Assert.Contains("[Agent] Action: Using calculator tool { \"expression\": \"(17 + 25) * 2\" }", result.Output, StringComparison.Ordinal);
        Assert.Contains("[Tool] 84", result.Output, StringComparison.Ordinal);
        Assert.Contains("[Agent] (17 + 25) * 2 = 84.", result.Output, StringComparison.Ordinal);
        Assert.Matches(@"Cost: \$0\.0000  Time: \d+\.\ds  Tokens: [\d,]+ \(in: [\d,]+, out: [\d,]+\)", result.Output);
    }

    [Fact]
    public async Task Run_EscapeSequencesFromTheModelOrATool_NeverReachTheTerminal()
    {
        UseDataFolder();
        // A model's text and a tool's result can hold terminal escapes: clear the screen, set the title, move the cursor.
        await File.WriteAllTextAsync(Path.Combine(_folder, "escapes.yaml"), """
            name: escapes
            version: 1.0.0
            llm:
              provider: scripted
              model: scripted
              script:
                - text: "\e[2J\e]0;pwned\a"
                  tool_calls:
                    - { name: calculator, arguments: { expression: "1 +" } }
                - text: "done\e[1A"
            tools:
              - { name: calculator, type: builtin.calculator }
            """);

        var result = await RunAsync("run", "escapes.yaml", "--input", "Go.");

        Assert.Equal(0, result.ExitCode);
        Assert.DoesNotContain("\u001b", result.Output + result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("\u0007", result.Output + result.Error, StringComparison.Ordinal);
        Assert.Contains("[Agent] \ufffd[2J\ufffd]0;pwned\ufffd", result.Output, StringComparison.Ordinal);
        Assert.Contains("done\ufffd[1A", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_EscapeSequencesInAToolsResult_NeverReachTheTerminal()
    {
        UseDataFolder();
        // A file the agent reads holds what a hostile page or document would: a title change, a screen clear, a C1 CSI.
        var files = Directory.CreateDirectory(Path.Combine(_folder, "files")).FullName;
        await File.WriteAllTextAsync(Path.Combine(files, "banner.txt"), "title\u001b]0;pwned\u0007 clear\u001b[2J csi\u009b1A end");
        await File.WriteAllTextAsync(Path.Combine(_folder, "reader.yaml"), $$"""
            name: reader
            version: 1.0.0
            llm:
              provider: scripted
              model: scripted
              script:
                - tool_calls:
                    - { name: files, arguments: { operation: read, path: banner.txt } }
                - text: "Read it."
            tools:
              - name: files
                type: builtin.filesystem
                config: { root: "{{files}}" }
            """);

        var result = await RunAsync("run", "reader.yaml", "--input", "Read the banner.");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.DoesNotContain("\u001b", result.Output + result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("\u0007", result.Output + result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("\u009b", result.Output + result.Error, StringComparison.Ordinal);
        Assert.Contains("[Tool] title\ufffd]0;pwned\ufffd clear\ufffd[2J csi\ufffd1A end", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_Json_KeepsReportingWhileASlowToolRuns()
    {
        UseDataFolder();
        Environment.SetEnvironmentVariable("Namra__Orchestrator__ToolProgressInterval", "00:00:00.200");
        await File.WriteAllTextAsync(Path.Combine(_folder, "slow.yaml"), """
            name: slow_tool
            version: 1.0.0
            llm:
              provider: scripted
              model: scripted
              script:
                - tool_calls:
                    - { name: shell, arguments: { command: sleep, args: ["1.5"] } }
                - text: "Done."
            tools:
              - name: shell
                type: builtin.shell
                config: { allowed_commands: [sleep] }
            """);
        try
        {
            var result = await RunAsync("run", "slow.yaml", "--input", "Wait.", "--json");

            Assert.True(result.ExitCode == 0, result.Error);
            var events = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
            var call = events.FindIndex(e => e.TryGetProperty("toolCall", out _));
            var answer = events.FindIndex(e => e.TryGetProperty("toolResult", out _));
            var running = events.Select((e, i) => (Event: e, Index: i)).Where(x => x.Event.TryGetProperty("toolRunning", out _)).ToList();
            Assert.NotEmpty(running);
            Assert.All(running, x => Assert.InRange(x.Index, call + 1, answer - 1));
            Assert.All(running, x => Assert.Equal("shell", x.Event.GetProperty("toolRunning").GetProperty("name").GetString()));
        }
        finally
        {
            Environment.SetEnvironmentVariable("Namra__Orchestrator__ToolProgressInterval", null);
        }
    }

    [Fact]
    public async Task Run_Json_PrintsEveryEventAsAJsonLine_AndASessionCarriesHistory()
    {
        UseDataFolder();
        File.Copy(Path.Combine(Testing.RepositoryPaths.Root, "examples", "agents", "calculator.yaml"), Path.Combine(_folder, "calculator.yaml"));

        var first = await RunAsync("run", "calculator.yaml", "--input", "What is (17 + 25) * 2?", "--json", "--session", "s1");
        var second = await RunAsync("run", "calculator.yaml", "--input", "And again?", "--json", "--session", "s1");

        var firstEvents = first.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        var secondEvents = second.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.True(firstEvents[0].TryGetProperty("runStarted", out _));
        Assert.True(firstEvents[^1].TryGetProperty("runCompleted", out var done));
        Assert.Equal("(17 + 25) * 2 = 84.", done.GetProperty("answer").GetString());
        static long InputTokens(JsonElement completed) => long.Parse(completed.GetProperty("runCompleted").GetProperty("usage").GetProperty("inputTokens").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(InputTokens(secondEvents[^1]) > InputTokens(firstEvents[^1]), "the second run sends the first one's messages");
    }

    [Fact]
    public async Task Chat_EachLineIsARunOfOneConversation_AndAnEmptyLineEndsIt()
    {
        UseDataFolder();
        File.Copy(Path.Combine(Testing.RepositoryPaths.Root, "examples", "agents", "calculator.yaml"), Path.Combine(_folder, "calculator.yaml"));
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var lines = new StringReader("What is (17 + 25) * 2?\nAnd again?\n\nNever read.\n");

        var exitCode = await NamraCli.RunAsync(["chat", "calculator.yaml", "--json"], CliConsole.Create(output, error, color: false, _folder), lines);

        var completed = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(e => e.TryGetProperty("runCompleted", out _))
            .Select(e => e.GetProperty("runCompleted"))
            .ToList();
        Assert.Equal(0, exitCode);
        Assert.Equal(2, completed.Count); // the empty line ended the chat before the third
        Assert.Equal("(17 + 25) * 2 = 84.", completed[0].GetProperty("answer").GetString());
        static long InputTokens(JsonElement run) => long.Parse(run.GetProperty("usage").GetProperty("inputTokens").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(InputTokens(completed[1]) > InputTokens(completed[0]), "the second line's run sends the first one's messages");
        Assert.Matches(@"^Session chat-[0-9a-f]{32}\. Type a message; an empty line ends the chat\.", error.ToString());
        Assert.Equal("Never read.", lines.ReadLine());
    }

    [Fact]
    public async Task Chat_AfterAHandoff_TheAgentHandedToAnswersTheNextLine()
    {
        UseDataFolder();
        foreach (var agent in (string[])["triage", "billing", "refunds"])
        {
            File.Copy(Path.Combine(Testing.RepositoryPaths.Root, "examples", "agents", agent + ".yaml"), Path.Combine(_folder, agent + ".yaml"));
        }

        using var output = new StringWriter();
        using var error = new StringWriter();
        using var lines = new StringReader("I was charged twice for my order.\nWhen does the money arrive?\n\n");

        var exitCode = await NamraCli.RunAsync(["chat", "triage.yaml", "--json"], CliConsole.Create(output, error, color: false, _folder), lines);

        Assert.True(exitCode == 0, error.ToString());
        var events = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        var started = events.Where(e => e.TryGetProperty("runStarted", out _)).Select(e => e.GetProperty("runStarted").GetProperty("agent").GetProperty("name").GetString()).ToList();
        Assert.Equal(["triage", "refunds"], started); // the second line went to the agent the first was handed to
        var handoff = Assert.Single(events, e => e.TryGetProperty("handoff", out _)); // refunds answered without being handed the conversation again
        Assert.Equal("refunds", handoff.GetProperty("handoff").GetProperty("to").GetProperty("name").GetString());
        Assert.Equal(2, events.Count(e => e.TryGetProperty("runCompleted", out _)));
        Assert.Contains("refunds@1.0.0 answers from here.", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_WithoutTheProvidersKey_SaysWhichVariableToSet_AndExitsTwo()
    {
        UseDataFolder();
        await File.WriteAllTextAsync(Path.Combine(_folder, "remote.yaml"),
            "name: remote\nversion: 1.0.0\nllm:\n  provider: anthropic\n  model: claude-sonnet-4-5-20250929\n  api_key_env: NAMRA_TEST_NEVER_SET_KEY\n");

        var result = await RunAsync("run", "remote.yaml", "--input", "Hello");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("NAMRA_TEST_NEVER_SET_KEY is not set", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Summary_SaysAnUnknownCostIsUnknown_NeverZero()
    {
        var usage = new Namra.Contracts.V1.TokenUsage { InputTokens = 1000, OutputTokens = 20 };

        Assert.StartsWith("Cost: unknown (no price for llama3.1:8b)  Time: 1.5s  Tokens: 1,020", Running.RunPrinter.Summary(null, Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1.5)), usage, "llama3.1:8b"), StringComparison.Ordinal);
        Assert.StartsWith("Cost: $0.0000", Running.RunPrinter.Summary(new Namra.Contracts.V1.Cost(), null, usage, "scripted"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_WhenTheProviderRejectsTheKey_ExitsTwo()
    {
        UseDataFolder();
        await using var anthropic = await LocalAnthropic.StartAsync(_folder, "rejected.yaml", maxTokens: 256,
            new Testing.Providers.ErrorReply(401, Testing.Providers.AnthropicWire.ErrorBody("authentication_error", "invalid x-api-key")));

        var result = await RunAsync("run", "rejected.yaml", "--input", "Hello");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("invalid x-api-key", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_CtrlC_StopsTheRun_PrintsWhatItUsed_AndExits130()
    {
        UseDataFolder();
        await using var anthropic = await LocalAnthropic.StartAsync(_folder, "slow.yaml", maxTokens: 256,
            new Testing.Providers.SseReply([Testing.Providers.AnthropicWire.MessageStart(), .. Testing.Providers.AnthropicWire.TextBlock(0, "Let me think")], HoldAfter: 3));
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var interrupt = new CancellationTokenSource();

        var running = NamraCli.RunAsync(["run", "slow.yaml", "--input", "Think."], CliConsole.Create(output, error, color: false, _folder), interrupt.Token);
        for (var i = 0; i < 600 && !output.ToString().Contains("Let me think", StringComparison.Ordinal); i++)
        {
            await Task.Delay(50);
        }

        await interrupt.CancelAsync();
        var exitCode = await running.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(exitCode == 130, $"exit {exitCode}: {output} | {error}");
        Assert.True(error.ToString().Contains("[Run] stopped (cancelled): Cancelled: interrupted (Ctrl-C)", StringComparison.Ordinal), $"{output} | {error}");
        // The model call was in flight: the provider may bill it, so the cost is unknown, never $0.
        Assert.Matches(@"Cost: unknown \(a request to claude-\S+ of unknown outcome\)  Time: \d+\.\ds  Tokens: ", output.ToString());
        await anthropic.Server.ClientAborted.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Run_AnAnswerCutOffByMaxTokens_ExitsOne_SayingSo_AndKeepsWhatWasWritten()
    {
        UseDataFolder();
        await using var anthropic = await LocalAnthropic.StartAsync(_folder, "short.yaml", maxTokens: 16, new Testing.Providers.SseReply([
            Testing.Providers.AnthropicWire.MessageStart(),
            .. Testing.Providers.AnthropicWire.TextBlock(0, "The three reasons are: first,"),
            Testing.Providers.AnthropicWire.MessageDelta("max_tokens", 16),
            Testing.Providers.AnthropicWire.MessageStop()]));

        var result = await RunAsync("run", "short.yaml", "--input", "Give three reasons.");

        Assert.True(result.ExitCode == 1, $"exit {result.ExitCode}: {result.Output} | {result.Error}");
        Assert.Contains("The three reasons are: first,", result.Output, StringComparison.Ordinal);
        Assert.Contains("[Run] stopped (cut off by max_tokens): The model's turn was cut off at llm.max_tokens (16)", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_ARunThatStopsEarly_ExitsOne_WithTheReason()
    {
        UseDataFolder();
        await File.WriteAllTextAsync(Path.Combine(_folder, "looping.yaml"), """
            name: looping
            version: 1.0.0
            llm:
              provider: scripted
              model: scripted
              script:
                - tool_calls: [{ name: calculator, arguments: { expression: "1 + 1" } }]
                - tool_calls: [{ name: calculator, arguments: { expression: "1 + 1" } }]
                - tool_calls: [{ name: calculator, arguments: { expression: "1 + 1" } }]
            tools:
              - name: calculator
                type: builtin.calculator
            execution:
              max_iterations: 2
            """);

        var result = await RunAsync("run", "looping.yaml", "--input", "Go.");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("[Run] stopped (max iterations)", result.Error, StringComparison.Ordinal);
    }

    private void UseDataFolder() => Environment.SetEnvironmentVariable("NAMRA_DATA_DIR", Path.Combine(_folder, "data"));

    private Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args) => RunAsync(color: false, args);

    private async Task<(int ExitCode, string Output, string Error)> RunAsync(bool color, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exitCode = await NamraCli.RunAsync(args, CliConsole.Create(output, error, color, _folder));
        return (exitCode, output.ToString(), error.ToString());
    }

    /// <summary>
    /// A local Anthropic server answering with the replies given, and an agent file calling it; the CLI finds
    /// it through <c>ANTHROPIC_BASE_URL</c> until this is disposed.
    /// </summary>
    private sealed class LocalAnthropic : IAsyncDisposable
    {
        private LocalAnthropic(Testing.Providers.FakeProviderServer server) => Server = server;

        public Testing.Providers.FakeProviderServer Server { get; }

        public static async Task<LocalAnthropic> StartAsync(string folder, string file, int maxTokens, params Testing.Providers.FakeReply[] replies)
        {
            var server = await Testing.Providers.FakeProviderServer.StartAsync();
            server.Enqueue(replies);
            Environment.SetEnvironmentVariable("NAMRA_TEST_CLI_KEY", "sk-ant-test");
            Environment.SetEnvironmentVariable("ANTHROPIC_BASE_URL", server.BaseUrl.ToString());
            await File.WriteAllTextAsync(Path.Combine(folder, file),
                $"name: {Path.GetFileNameWithoutExtension(file)}\nversion: 1.0.0\nllm:\n  provider: anthropic\n  model: {Testing.Providers.AnthropicWire.Model}\n  api_key_env: NAMRA_TEST_CLI_KEY\n  max_tokens: {maxTokens}\n");
            return new LocalAnthropic(server);
        }

        public async ValueTask DisposeAsync()
        {
            Environment.SetEnvironmentVariable("ANTHROPIC_BASE_URL", null);
            await Server.DisposeAsync();
        }
    }
}
