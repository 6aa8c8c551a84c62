using Namra.Config.Validation;
using Namra.Contracts.V1;

namespace Namra.Config.Tests;

/// <summary>Bad agent files and the exact diagnostics each one gets: code, line, column, field path and hint.</summary>
public sealed class AgentValidationTests
{
    private const string Head = "name: demo\nversion: 1.0.0\n";
    private const string Llm = "llm:\n  provider: anthropic\n  model: claude-sonnet-4-5\n";

    public static TheoryData<string, string, string[]> BadFiles => new()
    {
        {
            "approval condition on an argument the tool does not take",
            Head + Llm + "tools:\n  - name: web\n    type: builtin.http\n    approval:\n      when:\n        - { argument: methd, one_of: [POST] }\n",
            ["NAMRA0105 11:23 tools[0].approval.when[0].argument | did you mean `method`?"]
        },
        {
            "approval condition no call can meet",
            Head + Llm + "tools:\n  - name: web\n    type: builtin.http\n    approval:\n      when:\n        - { argument: method, one_of: [POST] }\n",
            ["NAMRA0111 11:39 tools[0].approval.when[0].one_of | name values the tool takes (its settings allow only those)"]
        },
        {
            "approval condition every call meets",
            Head + Llm + "tools:\n  - name: files\n    type: builtin.filesystem\n    config: { root: /srv }\n    approval:\n      when:\n        - { argument: operation, not_one_of: [write] }\n",
            ["NAMRA0111 12:46 tools[0].approval.when[0].not_one_of | write `approval: always` if every call needs approval"]
        },
        {
            "approval condition with two tests",
            Head + Llm + "tools:\n  - name: sh\n    type: builtin.shell\n    config: { allowed_commands: [ls, rm] }\n    approval:\n      when:\n        - { argument: command, one_of: [rm], matches: \"r.*\" }\n",
            ["NAMRA0108 12:11 tools[0].approval.when[0] | write one condition per test; any condition that matches makes the call need approval"]
        },
        {
            "misspelt field",
            Head + "llm:\n  provider: anthropic\n  model: m\n  temprature: 0.7\n",
            ["NAMRA0101 6:3 llm.temprature | did you mean `temperature`?"]
        },
        {
            "misspelt provider",
            Head + "llm:\n  provider: antropic\n  model: m\n",
            ["NAMRA0105 4:13 llm.provider | did you mean `anthropic`?"]
        },
        {
            "temperature above anthropic's range",
            Head + Llm + "  temperature: 1.5\n",
            ["NAMRA0104 6:16 llm.temperature | anthropic's range is 0..1; openai's is 0..2"]
        },
        {
            "temperature above openai's range",
            Head + "llm:\n  provider: openai\n  model: gpt-4o\n  temperature: 2.5\n",
            ["NAMRA0104 6:16 llm.temperature | "]
        },
        {
            "max_tokens zero and quoted number",
            Head + Llm + "  max_tokens: 0\n  top_p: \"0.9\"\n",
            ["NAMRA0104 6:15 llm.max_tokens | use a positive number", "NAMRA0103 7:10 llm.top_p | remove the quotes: `0.9`"]
        },
        {
            "max_iterations out of range and timeout without unit",
            Head + Llm + "execution:\n  max_iterations: 1001\n  timeout: 90\n",
            ["NAMRA0104 7:19 execution.max_iterations | use at most 1,000", "NAMRA0106 8:12 execution.timeout | add a unit: `90s`"]
        },
        {
            "timeout in words",
            Head + Llm + "execution:\n  timeout: two minutes\n",
            ["NAMRA0106 7:12 execution.timeout | write a number and a unit: `500ms`, `90s`, `2m`, `1h`, `1h30m`"]
        },
        {
            "missing required fields",
            "description: nothing else\n",
            ["NAMRA0102 1:1 name | add `name: support_agent`", "NAMRA0102 1:1 version | add `version: 1.0.0`", "NAMRA0102 1:1 llm | add `llm: { ... }`"]
        },
        {
            "empty model",
            Head + "llm:\n  provider: openai\n  model:\n",
            ["NAMRA0102 5:3 llm.model | add `model: ...`"]
        },
        {
            "version is a number",
            "name: demo\nversion: 1.0\n" + Llm,
            ["NAMRA0106 2:10 version | write MAJOR.MINOR.PATCH, such as `1.0.0`"]
        },
        {
            "name with capitals and spaces",
            "name: Support Agent\nversion: 1.0.0\n" + Llm,
            ["NAMRA0106 1:7 name | use lower case letters, digits, `_` and `-`, such as `support_agent`"]
        },
        {
            "duplicate tool names",
            Head + Llm + "tools:\n  - name: calc\n    type: builtin.calculator\n  - name: calc\n    type: builtin.calculator\n",
            ["NAMRA0107 9:11 tools[1].name | give each tool its own name"]
        },
        {
            "unknown tool type",
            Head + Llm + "tools:\n  - name: calc\n    type: builtin.calculater\n",
            ["NAMRA0105 8:11 tools[0].type | did you mean `builtin.calculator`?"]
        },
        {
            "filesystem without root, yes instead of true",
            Head + Llm + "tools:\n  - name: files\n    type: builtin.filesystem\n    config:\n      read_only: yes\n",
            ["NAMRA0102 10:7 tools[0].config.root | add `root: ...`", "NAMRA0103 10:18 tools[0].config.read_only | YAML 1.2 reads `yes` as text; write `true`"]
        },
        {
            "shell without config",
            Head + Llm + "tools:\n  - name: sh\n    type: builtin.shell\n",
            ["NAMRA0102 8:11 tools[0].config | add `config: { allowed_commands: ... }` to the tool"]
        },
        {
            "shell with an empty allow-list",
            Head + Llm + "tools:\n  - name: sh\n    type: builtin.shell\n    config:\n      allowed_commands: []\n",
            ["NAMRA0104 10:25 tools[0].config.allowed_commands | "]
        },
        {
            "http headers with secrets and no allowed hosts",
            Head + Llm + "tools:\n  - name: api\n    type: builtin.http\n    config:\n      headers: { Authorization: \"Bearer ${TOKEN}\" }\n",
            ["NAMRA0102 10:7 tools[0].config.allowed_hosts | add `allowed_hosts: [api.example.com]`"]
        },
        {
            "shell argument patterns for a command not allowed, and a pattern that cannot be used",
            Head + Llm + "tools:\n  - name: sh\n    type: builtin.shell\n    config:\n      allowed_commands: [git]\n      argument_patterns: { git: [status, \"(a)\\\\1\"], tar: [\"-t\"] }\n",
            [
                "NAMRA0106 11:7 tools[0].config.argument_patterns.git | patterns are .NET regular expressions without backreferences or lookarounds, matched against each whole argument",
                "NAMRA0108 11:7 tools[0].config.argument_patterns.tar | list it in `allowed_commands`, or remove its patterns",
            ]
        },
        {
            "mcp over http with a command",
            Head + Llm + "tools:\n  - name: web\n    type: mcp\n    config:\n      transport: http\n      command: npx\n",
            ["NAMRA0102 10:7 tools[0].config.url | add `url: https://host/mcp`", "NAMRA0108 11:7 tools[0].config.command | remove it, or set `transport: stdio`"]
        },
        {
            "database with both connection settings",
            Head + Llm + "tools:\n  - name: db\n    type: builtin.database\n    config: { driver: sqlite, connection_string: x.db, connection_string_env: DB }\n",
            ["NAMRA0108 9:13 tools[0].config | use `connection_string_env` for connection strings that hold passwords"]
        },
        {
            "misspelt field inside a tool config",
            Head + Llm + "tools:\n  - name: web\n    type: builtin.http\n    config:\n      allowed_host: [example.com]\n",
            ["NAMRA0101 10:7 tools[0].config.allowed_host | did you mean `allowed_hosts`?"]
        },
        {
            "API key written into the file",
            Head + Llm + "  api_key: sk-ant-123\n",
            ["NAMRA0109 6:3 llm.api_key | set the key in an environment variable and name it with `api_key_env`"]
        },
        {
            "openai_compatible without base_url",
            Head + "llm:\n  provider: openai_compatible\n  model: llama3\n",
            ["NAMRA0102 4:3 llm.base_url | add the server's address, such as `base_url: http://localhost:11434/v1`"]
        },
        {
            "script for a non-scripted provider",
            Head + Llm + "  script:\n    - text: hi\n",
            ["NAMRA0108 6:3 llm.script | remove `script`, or set `provider: scripted`"]
        },
        {
            "scripted provider without script",
            Head + "llm:\n  provider: scripted\n  model: scripted\n",
            ["NAMRA0102 4:3 llm.script | add `script:` with one `- text: ...` entry per turn"]
        },
        {
            "semantic memory without embedding model",
            Head + Llm + "memory:\n  semantic:\n    enabled: true\n",
            ["NAMRA0102 8:5 memory.semantic.embedding_model | add `embedding_model: text-embedding-3-small` (or another model the gateway serves)"]
        },
        {
            "tools is a mapping, labels hold a list",
            Head + Llm + "tools:\n  name: calc\nlabels:\n  team: [a]\n",
            ["NAMRA0103 7:3 tools | ", "NAMRA0103 9:9 labels.team | "]
        },
        {
            "budget that could never allow a call",
            Head + Llm + "execution:\n  budget:\n    max_cost_usd: 0\n    max_tokens: -5\n",
            ["NAMRA0104 8:19 execution.budget.max_cost_usd | ", "NAMRA0104 9:17 execution.budget.max_tokens | use a positive number"]
        },
        {
            "unknown top-level field",
            Head + Llm + "sytem_prompt: hello\n",
            ["NAMRA0101 6:1 sytem_prompt | did you mean `system_prompt`?"]
        },
        {
            "bad base_url and env name",
            Head + "llm:\n  provider: openai\n  model: m\n  base_url: localhost:8080\n  api_key_env: 1KEY\n",
            ["NAMRA0106 6:13 llm.base_url | for example `https://api.example.com`", "NAMRA0106 7:16 llm.api_key_env | for example `MY_API_KEY`"]
        },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void Load_WhenFileIsBad_ReportsExactlyTheExpectedDiagnostics(string scenario, string content, string[] expected)
    {
        var result = TestFiles.Loader().Load(content, "agent.yaml");

        var actual = result.Diagnostics.Select(d => $"{d.Code} {d.Position.Line}:{d.Position.Column} {d.FieldPath} | {d.Hint}").ToArray();
        Assert.False(result.IsValid, scenario);
        Assert.Null(result.Agent);
        Assert.Equal(expected, actual);
        Assert.All(result.Diagnostics, d => Assert.Equal("agent.yaml", d.File));
    }

    [Fact]
    public void Load_WhenScriptCallsAnUndeclaredTool_WarnsButStaysValid()
    {
        var content = "name: demo\nversion: 1.0.0\nllm:\n  provider: scripted\n  model: scripted\n  script:\n    - tool_calls:\n        - name: calculater\ntools:\n  - name: calculator\n    type: builtin.calculator\n";

        var result = TestFiles.Loader().Load(content, "agent.yaml");

        Assert.True(result.IsValid);
        var warning = Assert.Single(result.Diagnostics);
        Assert.Equal((DiagnosticSeverity.Warning, "NAMRA0201", 8, 17, "did you mean `calculator`?"),
            (warning.Severity, warning.Code, warning.Position.Line, warning.Position.Column, warning.Hint));
    }

    [Fact]
    public void Load_SemanticMemory_TakesItsScopeProviderAndRecallBudget_AndKeepsTheRememberToolsNameForItself()
    {
        var semantic = "memory:\n  semantic: { enabled: true, embedding_model: hashed-words, provider: scripted, scope: session, max_recall_tokens: 300 }\n";
        var valid = TestFiles.Loader().Load(Head + Llm + semantic, "agent.yaml");
        var clashing = TestFiles.Loader().Load(Head + Llm + semantic + "tools:\n  - { name: remember, type: builtin.calculator }\n", "agent.yaml");
        var badScope = TestFiles.Loader().Load(Head + Llm + semantic.Replace("scope: session", "scope: team", StringComparison.Ordinal), "agent.yaml");

        Assert.True(valid.IsValid, string.Join("\n", valid.Diagnostics));
        Assert.Equal(("session", 300, LlmProvider.Scripted), (valid.Agent!.Memory.Semantic.Scope, valid.Agent.Memory.Semantic.MaxRecallTokens, valid.Agent.Memory.Semantic.Provider));
        Assert.Contains(clashing.Diagnostics, d => d.Code == "NAMRA0107" && d.Message.Contains("`remember`", StringComparison.Ordinal));
        Assert.Contains(badScope.Diagnostics, d => d.FieldPath == "memory.semantic.scope");
    }

    [Fact]
    public void Load_AnInputSchema_DescribesAnObject()
    {
        var valid = TestFiles.Loader().Load(Head + Llm + "input_schema: { type: object, properties: { sku: { type: string } }, required: [sku] }\n", "agent.yaml");
        var notAnObject = TestFiles.Loader().Load(Head + Llm + "input_schema: { type: string }\n", "agent.yaml");

        Assert.True(valid.IsValid, string.Join("\n", valid.Diagnostics));
        Assert.Equal("sku", valid.Agent!.InputSchema.Fields["required"].ListValue.Values[0].StringValue);
        Assert.Contains(notAnObject.Diagnostics, d => d.FieldPath == "input_schema" && d.Message.Contains("type: object", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_AScriptedTurnsInputPattern_MustBeARegularExpressionNamraCanUse()
    {
        var content = "name: demo\nversion: 1.0.0\nllm:\n  provider: scripted\n  model: scripted\n  script:\n    - { text: a, input_matches: \"(?<=x)y\" }\n    - { text: b, input_matches: \"(?i)hello.*\" }\n";

        var result = TestFiles.Loader().Load(content, "agent.yaml");

        var problem = Assert.Single(result.Diagnostics);
        Assert.Equal(("NAMRA0106", "llm.script[0].input_matches"), (problem.Code, problem.FieldPath));
    }

    [Theory]
    [InlineData("{ name: search, type: python, config: { module: tools.py } }")]
    [InlineData("{ name: fs, type: mcp, config: { command: npx } }")]
    [InlineData("{ name: ext, type: grpc, config: { address: \"http://tools:50051\" } }")]
    public void Load_WhenAnEntryServesToolsOfItsOwn_TheScriptsCallsAreNotJudged(string entry)
    {
        var content = $"name: demo\nversion: 1.0.0\nllm:\n  provider: scripted\n  model: scripted\n  script:\n    - tool_calls:\n        - name: word_count\ntools:\n  - {entry}\n";

        var result = TestFiles.Loader().Load(content, "agent.yaml");

        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics));
        Assert.Empty(result.Diagnostics);
    }

    [Fact]
    public void Load_WhenValid_AppliesEveryDefault()
    {
        var result = TestFiles.Loader().Load(Head + Llm + "tools:\n  - name: web\n    type: builtin.http\n", "agent.yaml");

        var agent = Assert.IsType<AgentDefinition>(result.Agent);
        Assert.Equal(4096, agent.Llm.MaxTokens);
        Assert.False(agent.Llm.HasTemperature);
        Assert.Equal((MemoryType.InMemory, 100), (agent.Memory.Type, agent.Memory.MaxMessages));
        Assert.Equal((ExecutionStrategy.React, 10, 60L, 3, 8),
            (agent.Execution.Strategy, agent.Execution.MaxIterations, agent.Execution.Timeout.Seconds, agent.Execution.MaxRepeatedToolCalls, agent.Execution.MaxParallelToolCalls));
        Assert.Null(agent.Execution.Budget);
        var http = agent.Tools[0].Http;
        Assert.Equal(1_048_576, http.MaxResponseBytes);
        Assert.False(http.AllowPrivateNetworks);
        Assert.Equal(["GET"], http.AllowedMethods);
        Assert.Equal((true, 5, true, true), (http.HasMaxRedirects, http.MaxRedirects, http.HasExtractText, http.ExtractText));
    }

    [Fact]
    public void Load_WhenSameAgentIsYamlOrToml_GivesEqualDefinitionsAndHashes()
    {
        const string yaml = """
            name: twin
            version: 2.1.0
            llm:
              provider: openai
              model: gpt-4o
              temperature: 1.5
              stop_sequences: [END]
            tools:
              - name: db
                type: builtin.database
                timeout: 5s
                config: { driver: postgres, connection_string_env: PG_URL, max_rows: 10 }
            execution:
              timeout: 1h30m
              budget: { max_cost_usd: 2.5, max_tool_calls: 7 }
            labels: { team: core, env: dev }
            system_prompt: |
              Line one.
              Line two.
            """;
        const string toml = """
            name = "twin"
            version = "2.1.0"
            system_prompt = '''
            Line one.
            Line two.
            '''
            labels = { env = "dev", team = "core" }

            [llm]
            provider = "openai"
            model = "gpt-4o"
            temperature = 1.5
            stop_sequences = ["END"]

            [[tools]]
            name = "db"
            type = "builtin.database"
            timeout = "5s"
            config = { driver = "postgres", connection_string_env = "PG_URL", max_rows = 10 }

            [execution]
            timeout = "1h30m"
            budget.max_cost_usd = 2.5
            budget.max_tool_calls = 7
            """;

        var fromYaml = TestFiles.Loader().Load(yaml + "\n", "twin.yaml");
        var fromToml = TestFiles.Loader().Load(toml, "twin.toml");

        Assert.True(fromYaml.IsValid, string.Join("\n", fromYaml.Diagnostics));
        Assert.True(fromToml.IsValid, string.Join("\n", fromToml.Diagnostics));
        Assert.Equal(fromYaml.Agent, fromToml.Agent);
        Assert.Equal(fromYaml.Ref, fromToml.Ref);
        Assert.Equal(5400, fromYaml.Agent!.Execution.Timeout.Seconds);
    }

    [Fact]
    public void Load_WhenTomlIsBad_PlacesDiagnosticsOnTomlLines()
    {
        const string toml = "name = \"demo\"\nversion = \"1.0.0\"\n\n[llm]\nprovider = \"antropic\"\nmodel = \"m\"\ntemprature = 0.5\n";

        var result = TestFiles.Loader().Load(toml, "agent.toml");

        Assert.Equal(["NAMRA0105 5:12 llm.provider", "NAMRA0101 7:1 llm.temprature"],
            result.Diagnostics.Select(d => $"{d.Code} {d.Position.Line}:{d.Position.Column} {d.FieldPath}"));
    }

    [Theory]
    [InlineData("agent.toml", "name: x", AgentFormat.Toml)]
    [InlineData("agent.yml", "name = 'x'", AgentFormat.Yaml)]
    [InlineData("", "# comment\nname = \"x\"\n", AgentFormat.Toml)]
    [InlineData("", "[llm]\nprovider = \"openai\"", AgentFormat.Toml)]
    [InlineData("", "name: x\nversion: 1.0.0", AgentFormat.Yaml)]
    public void DetectFormat_UsesExtensionThenContent(string fileName, string content, AgentFormat expected) =>
        Assert.Equal(expected, AgentLoader.DetectFormat(fileName, content));

    [Fact]
    public void Examples_AreAllValid()
    {
        var files = Directory.GetFiles(TestFiles.ExamplesFolder);
        Assert.True(files.Length >= 3, "the examples folder should hold the example agents");

        foreach (var file in files)
        {
            var result = TestFiles.Loader().Load(File.ReadAllText(file), file);
            Assert.True(result.IsValid, $"{file}:\n{string.Join("\n", result.Diagnostics)}");
            Assert.DoesNotContain(result.Diagnostics, d => d.Severity == DiagnosticSeverity.Warning);
        }
    }

    [Fact]
    public void EveryToolTypesSettings_HaveAFieldOfTheSameNameInItsSettingsMessage()
    {
        // The agent file's settings become the contract's typed settings field for field: one missing would fail loads.
        foreach (var (type, spec) in AgentSchema.ToolConfigs)
        {
            var oneof = ToolConfig.Descriptor.Oneofs.Single(o => o.Name == "settings");
            var message = oneof.Fields.Single(f => f.Name == type.Replace("builtin.", "", StringComparison.Ordinal)).MessageType;

            Assert.Equal(spec.Fields.Select(f => f.Name).Order(StringComparer.Ordinal), message.Fields.InDeclarationOrder().Select(f => f.Name).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void Load_EveryToolType_ArrivesWithItsTypedSettings_DefaultsFilledIn()
    {
        var content = Head + Llm + """
            tools:
              - { name: calc, type: builtin.calculator }
              - { name: web, type: builtin.http, config: { allowed_hosts: [api.example.com], max_redirects: 0, extract_text: false } }
              - { name: files, type: builtin.filesystem, config: { root: /srv/data } }
              - { name: db, type: builtin.database, config: { driver: postgres, connection_string_env: DB_URL, max_rows: 7 } }
              - { name: sh, type: builtin.shell, config: { allowed_commands: [ls], env: { LANG: C } } }
              - { name: fs, type: mcp, config: { command: npx, args: [-y, server] } }
              - { name: ext, type: grpc, config: { address: "http://tools:50051", options: { region: eu, limits: { rows: 3 } } } }
              - { name: py, type: python, config: { module: tools/search.py, env: { TOKEN: "${SEARCH_TOKEN}" }, options: { top: 5 } } }
              - { name: pkg, type: python, config: { module: acme.search_tools } }
            """;

        var result = TestFiles.Loader().Load(content, "agent.yaml");

        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics));
        var tools = result.Agent!.Tools;
        Assert.Equal(1000, tools[0].Calculator.MaxExpressionLength);
        Assert.Equal((0, false, 1_048_576L), (tools[1].Http.MaxRedirects, tools[1].Http.ExtractText, tools[1].Http.MaxResponseBytes));
        Assert.True(tools[1].Http.HasMaxRedirects); // zero redirects, as written, not "unset"
        Assert.Equal(("/srv/data", true, true), (tools[2].Filesystem.Root, tools[2].Filesystem.HasReadOnly, tools[2].Filesystem.ReadOnly));
        Assert.Equal(("postgres", "DB_URL", true, 7), (tools[3].Database.Driver, tools[3].Database.ConnectionStringEnv, tools[3].Database.ReadOnly, tools[3].Database.MaxRows));
        Assert.Equal((65_536L, "C"), (tools[4].Shell.MaxOutputBytes, tools[4].Shell.Env["LANG"]));
        Assert.Equal(("stdio", "npx", 2), (tools[5].Mcp.Transport, tools[5].Mcp.Command, tools[5].Mcp.Args.Count));
        Assert.Equal("http://tools:50051", tools[6].Grpc.Address);
        Assert.Equal("{ \"limits\": { \"rows\": 3 }, \"region\": \"eu\" }", tools[6].Grpc.Options.ToString());
        Assert.Equal(("tools/search.py", "${SEARCH_TOKEN}", "{ \"top\": 5 }"), (tools[7].Python.Module, tools[7].Python.Env["TOKEN"], tools[7].Python.Options.ToString()));
        Assert.Equal((ToolType.Python, "acme.search_tools"), (tools[8].Type, tools[8].Python.Module));
    }

    [Theory]
    [InlineData("config: { module: \"tools/search.txt\" }", "tools[0].config.module")]
    [InlineData("config: { module: \"acme..search\" }", "tools[0].config.module")]
    [InlineData("config: { }", "tools[0].config.module")]
    [InlineData("", "tools[0].config")]
    public void Load_APythonEntryWithoutAModuleItCanImport_IsAnError(string config, string field)
    {
        var content = Head + Llm + $"tools:\n  - {{ name: py, type: python{(config.Length > 0 ? ", " + config : "")} }}\n";

        var result = TestFiles.Loader().Load(content, "agent.yaml");

        Assert.False(result.IsValid);
        Assert.Contains(result.Diagnostics, d => d.FieldPath == field);
    }
}

/// <summary>Secrets stay out of definitions: deferred settings keep their references, and hashes ignore key order.</summary>
public sealed class SecretHandlingTests
{
    private const string Head = "name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\n";

    [Fact]
    public void Load_ShellArgumentPatterns_ArriveAsListsPerCommand()
    {
        var content = Head + "tools:\n  - name: sh\n    type: builtin.shell\n    config:\n      allowed_commands: [git, ls]\n      allowed_paths: [/srv/repo]\n      argument_patterns: { git: [status, \"log|diff\"] }\n";

        var result = TestFiles.Loader().Load(content, "agent.yaml");

        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics));
        var shell = result.Agent!.Tools[0].Shell;
        Assert.Equal(["status", "log|diff"], shell.ArgumentPatterns["git"].Patterns);
        Assert.Equal(["/srv/repo"], shell.AllowedPaths);
        Assert.Equal(["git", "ls"], shell.AllowedCommands);
    }

    [Fact]
    public void Load_KeepsVariableReferencesInSecretBearingSettings()
    {
        var content = Head + "tools:\n  - name: api\n    type: builtin.http\n    config:\n      allowed_hosts: [api.github.com]\n      headers: { Authorization: \"Bearer ${GITHUB_TOKEN}\" }\n";

        var result = TestFiles.Loader(new Dictionary<string, string> { ["GITHUB_TOKEN"] = "ghp_secret" }).Load(content, "agent.yaml");

        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics));
        Assert.Equal("Bearer ${GITHUB_TOKEN}", result.Agent!.Tools[0].Http.Headers["Authorization"]);
        Assert.DoesNotContain("ghp_secret", result.Agent.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WhenSecretReferenceIsMalformed_ReportsIt()
    {
        var content = Head + "tools:\n  - name: db\n    type: builtin.database\n    config: { driver: postgres, connection_string: \"Host=db;Password=${PG_PASSWORD\" }\n";

        var result = TestFiles.Loader().Load(content, "agent.yaml");

        Assert.Equal(DiagnosticCodes.BadInterpolation, Assert.Single(result.Diagnostics).Code);
    }

    [Fact]
    public void ContentHash_DoesNotDependOnKeyOrder()
    {
        var one = TestFiles.Loader().Load(Head + "labels: { team: a, tier: b }\ntools:\n  - name: web\n    type: builtin.http\n    config: { max_redirects: 2, allowed_hosts: [a.com], extract_text: false }\n", "a.yaml");
        var two = TestFiles.Loader().Load(Head + "tools:\n  - config: { extract_text: false, allowed_hosts: [a.com], max_redirects: 2 }\n    type: builtin.http\n    name: web\nlabels: { tier: b, team: a }\n", "b.yaml");
        var other = TestFiles.Loader().Load(Head + "labels: { team: a, tier: c }\ntools:\n  - name: web\n    type: builtin.http\n    config: { max_redirects: 2, allowed_hosts: [a.com], extract_text: false }\n", "c.yaml");

        Assert.Equal(one.Ref!.ContentHash, two.Ref!.ContentHash);
        Assert.NotEqual(one.Ref.ContentHash, other.Ref!.ContentHash);
        Assert.Matches("^sha256:[0-9a-f]{64}$", one.Ref.ContentHash);
    }

    [Fact]
    public void ScriptedToolArguments_AreJsonInTheProtobufFormattersLayout()
    {
        var content = "name: demo\nversion: 1.0.0\nllm:\n  provider: scripted\n  model: scripted\n  script:\n    - tool_calls:\n        - name: calculator\n" +
            "          arguments: { z: [1, 2.5, -3e2, true, null, { deep: \"é \\\" \\\\ /\" }], a: \"\", empty: {}, none: [] }\n" +
            "tools:\n  - name: calculator\n    type: builtin.calculator\n";

        var result = TestFiles.Loader().Load(content, "agent.yaml");

        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics.Select(d => d.Message)));
        var json = Assert.Single(Assert.Single(result.Agent!.Llm.Script).ToolCalls).ArgumentsJson;
        var reference = Google.Protobuf.JsonFormatter.Default.Format(Google.Protobuf.JsonParser.Default.Parse<Google.Protobuf.WellKnownTypes.Struct>(json));
        Assert.Equal(reference, json);
        Assert.StartsWith("{ \"a\": \"\", \"empty\": { }, \"none\": [ ], \"z\": [ 1, 2.5, -300, true, null, { \"deep\": ", json);
    }
}
