using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Namra.Config.Parsing;
using Namra.Contracts;
using Namra.Contracts.V1;

namespace Namra.Config.Validation;

/// <summary>
/// Checks the rules that span fields (temperature by provider, per-tool-type config, duplicate tool names,
/// scripts only for the scripted provider...) and builds the <see cref="AgentDefinition"/>.
/// </summary>
internal sealed class AgentDefinitionBuilder(SchemaWalker walker, DiagnosticBag diagnostics)
{
    public AgentDefinition? Build(ConfigNode root)
    {
        if (root is ScalarNode { Kind: ScalarKind.Null })
        {
            diagnostics.Error(DiagnosticCodes.MissingField, SourcePosition.Document, "", "The agent file is empty.", "run `namra init` for a working example");
            return null;
        }

        var agent = walker.ReadObject(root, AgentSchema.Agent, "");
        if (agent is null)
        {
            return null;
        }

        var tools = agent.Get<List<object>>("tools")?.Cast<ValidatedObject>().ToList() ?? [];
        var definition = new AgentDefinition
        {
            Name = agent.String("name") ?? "",
            Version = agent.String("version") ?? "",
            Description = agent.String("description") ?? "",
            SystemPrompt = agent.String("system_prompt") ?? "",
            Llm = agent.Get<ValidatedObject>("llm") is { } llm
                ? BuildLlm(llm, tools, [.. agent.Get<List<object>>("handoffs")?.OfType<string>().Select(Handoffs.ToolName) ?? [], SemanticMemory.RememberTool])
                : null,
            Memory = BuildMemory(agent.Get<ValidatedObject>("memory")),
            Execution = BuildExecution(agent.Get<ValidatedObject>("execution")),
        };
        if (definition.Version.Length > 0 && Registry.SemanticVersion.TryParse(definition.Version) is null)
        {
            diagnostics.Error(DiagnosticCodes.InvalidFormat, agent.ValuePositionOf("version"), "version",
                $"`{SchemaWalker.Echo(definition.Version)}` has version numbers too large to compare.", "keep each number under 2^63");
        }

        definition.Tools.AddRange(BuildTools(tools));
        if (agent.Get<SortedDictionary<string, string>>("labels") is { } labels)
        {
            definition.Labels.Add(labels);
        }

        BuildHandoffs(agent, definition);
        definition.HandoffHistory = agent.String("handoff_history") ?? "all";
        if (agent.Get<ConfigNode>("input_schema") is { } inputSchema && ToStruct(inputSchema, "input_schema") is { } schema)
        {
            if (!schema.Fields.TryGetValue("type", out var type) || type.StringValue != "object")
            {
                diagnostics.Error(DiagnosticCodes.InvalidValue, agent.ValuePositionOf("input_schema"), "input_schema",
                    "`input_schema` describes the arguments of a tool call, which are an object: it needs `type: object`.", "add `type: object` and the arguments under `properties`");
            }

            definition.InputSchema = schema;
        }
        if (definition.Memory?.Semantic?.Enabled == true && definition.Tools.Any(t => t.Name == SemanticMemory.RememberTool))
        {
            diagnostics.Error(DiagnosticCodes.DuplicateToolName, agent.ValuePositionOf("tools"), "tools",
                $"With semantic memory on, the agent has a tool `{SemanticMemory.RememberTool}` of Namra's (the model stores facts with it); a tool of the agent has that name.", "rename the tool");
        }

        return diagnostics.HasErrors ? null : definition;
    }

    // Each agent the conversation may go to, once; its tool's name taken by no tool of the agent.
    private void BuildHandoffs(ValidatedObject agent, AgentDefinition definition)
    {
        var targets = agent.Get<List<object>>("handoffs")?.OfType<string>().ToList() ?? [];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < targets.Count; i++)
        {
            var tool = Handoffs.ToolName(targets[i]);
            if (!seen.Add(tool))
            {
                diagnostics.Error(DiagnosticCodes.DuplicateToolName, agent.ValuePositionOf("handoffs"), $"handoffs[{i}]",
                    $"Two handoffs go to agents named alike (`{tool}`).", "hand off to each agent once");
            }
            else if (definition.Tools.Any(t => t.Name == tool))
            {
                diagnostics.Error(DiagnosticCodes.DuplicateToolName, agent.ValuePositionOf("handoffs"), $"handoffs[{i}]",
                    $"The handoff to `{targets[i]}` is the tool `{tool}`, and a tool of the agent has that name.", "rename the tool");
            }

            definition.Handoffs.Add(targets[i]);
        }
    }

    private LlmConfig BuildLlm(ValidatedObject llm, List<ValidatedObject> tools, List<string> handoffTools)
    {
        var provider = llm.String("provider");
        var config = new LlmConfig
        {
            Provider = provider switch
            {
                "anthropic" => LlmProvider.Anthropic,
                "openai" => LlmProvider.Openai,
                "openai_compatible" => LlmProvider.OpenaiCompatible,
                "scripted" => LlmProvider.Scripted,
                _ => LlmProvider.Unspecified,
            },
            Model = llm.String("model") ?? "",
            MaxTokens = (int)(llm.Integer("max_tokens") ?? 0),
            BaseUrl = llm.String("base_url") ?? "",
            ApiKeyEnv = llm.String("api_key_env") ?? "",
        };
        if (llm.Number("temperature") is { } temperature)
        {
            config.Temperature = temperature;
            if (provider == "anthropic" && temperature > 1)
            {
                diagnostics.Error(DiagnosticCodes.OutOfRange, llm.ValuePositionOf("temperature"), "llm.temperature",
                    $"`llm.temperature` is {temperature}; anthropic accepts 0 to 1.", "anthropic's range is 0..1; openai's is 0..2");
            }
        }

        if (llm.Number("top_p") is { } topP)
        {
            config.TopP = topP;
        }

        config.StopSequences.AddRange(llm.Get<List<object>>("stop_sequences")?.Cast<string>() ?? []);
        config.FallbackModels.AddRange(llm.Get<List<object>>("fallback_models")?.Cast<string>() ?? []);
        if (llm.Get<ValidatedObject>("pricing") is { } pricing)
        {
            var input = pricing.Number("input_per_mtok") ?? 0;
            config.Pricing = new ModelPricing
            {
                InputPerMtok = input,
                OutputPerMtok = pricing.Number("output_per_mtok") ?? 0,
                CacheWritePerMtok = pricing.Number("cache_write_per_mtok") ?? input,
                CacheReadPerMtok = pricing.Number("cache_read_per_mtok") ?? input,
            };
        }

        if (provider == "openai_compatible" && !llm.Written.ContainsKey("base_url"))
        {
            diagnostics.Error(DiagnosticCodes.MissingField, llm.Position, "llm.base_url",
                "`llm.base_url` is required for the openai_compatible provider.", "add the server's address, such as `base_url: http://localhost:11434/v1`");
        }

        var script = llm.Get<List<object>>("script")?.Cast<ValidatedObject>().ToList();
        if (provider == "scripted" && script is null && !llm.Written.ContainsKey("script"))
        {
            diagnostics.Error(DiagnosticCodes.MissingField, llm.Position, "llm.script",
                "The scripted provider needs a `script` of model turns.", "add `script:` with one `- text: ...` entry per turn");
        }
        else if (provider is not null && provider != "scripted" && llm.Written.ContainsKey("script"))
        {
            diagnostics.Error(DiagnosticCodes.NotApplicable, llm.PositionOf("script"), "llm.script",
                $"`script` applies only to the scripted provider, not {provider}.", "remove `script`, or set `provider: scripted`");
        }

        if (script is not null)
        {
            // Entries that serve tools of their own (MCP servers, providers, Python modules) name them only when they run.
            var declared = tools.Any(t => t.String("type") is "mcp" or "grpc" or "python")
                ? null
                : tools.Select(t => t.String("name")).OfType<string>().Concat(handoffTools).ToHashSet(StringComparer.Ordinal);
            for (var turnIndex = 0; turnIndex < script.Count; turnIndex++)
            {
                config.Script.Add(BuildTurn(script[turnIndex], turnIndex, declared));
            }
        }

        return config;
    }

    private ScriptedTurn BuildTurn(ValidatedObject turn, int turnIndex, HashSet<string>? declared)
    {
        var result = new ScriptedTurn { Text = turn.String("text") ?? "", InputMatches = turn.String("input_matches") ?? "" };
        if (result.InputMatches.Length > 0)
        {
            try
            {
                _ = new System.Text.RegularExpressions.Regex(result.InputMatches, System.Text.RegularExpressions.RegexOptions.NonBacktracking);
            }
            catch (Exception exception) when (exception is ArgumentException or NotSupportedException)
            {
                diagnostics.Error(DiagnosticCodes.InvalidFormat, turn.ValuePositionOf("input_matches"), $"llm.script[{turnIndex}].input_matches",
                    $"`{result.InputMatches}` is not a regular expression Namra can use: {exception.Message}", "a .NET regular expression without backreferences or lookarounds");
            }
        }

        var calls = turn.Get<List<object>>("tool_calls")?.Cast<ValidatedObject>().ToList() ?? [];
        for (var callIndex = 0; callIndex < calls.Count; callIndex++)
        {
            var call = calls[callIndex];
            var name = call.String("name") ?? "";
            var path = $"llm.script[{turnIndex}].tool_calls[{callIndex}]";
            if (name.Length > 0 && declared is not null && !declared.Contains(name))
            {
                diagnostics.Warning(DiagnosticCodes.UndeclaredScriptedTool, call.ValuePositionOf("name"), path + ".name",
                    $"The script calls `{name}`, which the agent's `tools` do not declare; the run will return an error result for it.",
                    Suggestions.DidYouMean(Suggestions.Closest(name, declared)));
            }

            var arguments = call.Get<ConfigNode>("arguments") is { } node ? ToStruct(node, path + ".arguments") : new Struct();
            result.ToolCalls.Add(new ScriptedToolCall
            {
                Name = name,
                Id = call.String("id") ?? "",
                ArgumentsJson = arguments is null ? "{}" : ToJson(Value.ForStruct(arguments)),
            });
        }

        return result;
    }

    private IEnumerable<ToolConfig> BuildTools(List<ValidatedObject> tools)
    {
        var seen = new Dictionary<string, SourcePosition>(StringComparer.Ordinal);
        for (var index = 0; index < tools.Count; index++)
        {
            var tool = tools[index];
            var path = $"tools[{index}]";
            var name = tool.String("name") ?? "";
            if (name.Length > 0 && !seen.TryAdd(name, tool.ValuePositionOf("name")))
            {
                diagnostics.Error(DiagnosticCodes.DuplicateToolName, tool.ValuePositionOf("name"), path + ".name",
                    $"Two tools are named `{name}` (first at line {seen[name].Line}).", "give each tool its own name");
            }

            var type = tool.String("type");
            var config = new ToolConfig
            {
                Name = name,
                Type = type switch
                {
                    "builtin.http" => ToolType.BuiltinHttp,
                    "builtin.filesystem" => ToolType.BuiltinFilesystem,
                    "builtin.calculator" => ToolType.BuiltinCalculator,
                    "builtin.database" => ToolType.BuiltinDatabase,
                    "builtin.shell" => ToolType.BuiltinShell,
                    "mcp" => ToolType.Mcp,
                    "grpc" => ToolType.Grpc,
                    "python" => ToolType.Python,
                    "agent" => ToolType.Agent,
                    _ => ToolType.Unspecified,
                },
                Description = tool.String("description") ?? "",
                Idempotent = tool.Boolean("idempotent") ?? false,
            };
            if (tool.Duration("timeout") is { } timeout)
            {
                config.Timeout = Duration.FromTimeSpan(timeout);
            }

            if (type is not null && AgentSchema.ToolConfigs.TryGetValue(type, out var spec))
            {
                var required = spec.Fields.Where(f => f.Required).Select(f => $"`{f.Name}`").ToList();
                if (!tool.Written.ContainsKey("config") && required.Count > 0)
                {
                    diagnostics.Error(DiagnosticCodes.MissingField, tool.ValuePositionOf("type"), path + ".config",
                        $"A `{type}` tool needs a `config` with {string.Join(" and ", required)}.",
                        $"add `config: {{ {spec.Fields.First(f => f.Required).Name}: ... }}` to the tool");
                    yield return config;
                    continue;
                }

                var node = tool.Get<ConfigNode>("config") ?? new MappingNode(tool.Position);
                if (walker.ReadObject(node, spec, path + ".config") is { } typed)
                {
                    CheckToolConfig(type, typed, path + ".config");
                    SetSettings(config, type, typed, path + ".config");
                }
            }

            config.Approval = BuildApproval(tool, config, path);
            yield return config;
        }
    }

    private void CheckToolConfig(string type, ValidatedObject config, string path)
    {
        switch (type)
        {
            case "builtin.database":
                var literal = config.Written.ContainsKey("connection_string");
                var fromEnvironment = config.Written.ContainsKey("connection_string_env");
                if (literal == fromEnvironment)
                {
                    diagnostics.Error(literal ? DiagnosticCodes.NotApplicable : DiagnosticCodes.MissingField, config.Position, path,
                        literal ? "Give either `connection_string` or `connection_string_env`, not both." : "The database tool needs `connection_string` or `connection_string_env`.",
                        "use `connection_string_env` for connection strings that hold passwords");
                }

                break;
            case "mcp":
                var http = config.String("transport") == "http";
                var (needed, other) = http ? ("url", "command") : ("command", "url");
                if (!config.Written.ContainsKey(needed))
                {
                    diagnostics.Error(DiagnosticCodes.MissingField, config.Position, $"{path}.{needed}",
                        $"An MCP server over {(http ? "http" : "stdio")} needs `{needed}`.",
                        http ? "add `url: https://host/mcp`" : "add `command:` (and `args:`), such as `command: npx`");
                }

                if (config.Written.ContainsKey(other))
                {
                    diagnostics.Error(DiagnosticCodes.NotApplicable, config.PositionOf(other), $"{path}.{other}",
                        $"`{other}` does not apply to the {(http ? "http" : "stdio")} transport.", http ? "remove it, or set `transport: stdio`" : "remove it, or set `transport: http`");
                }

                break;
            case "builtin.http":
                var secretHeaders = (config.Get<SortedDictionary<string, string>>("headers") ?? [])
                    .Where(h => h.Value.Contains("${", StringComparison.Ordinal)).Select(h => $"`{h.Key}`").ToList();
                if (secretHeaders.Count > 0 && (config.Get<List<object>>("allowed_hosts") ?? []).Count == 0)
                {
                    diagnostics.Error(DiagnosticCodes.MissingField, config.PositionOf("headers"), $"{path}.allowed_hosts",
                        $"Headers that read variables ({string.Join(", ", secretHeaders)}) carry secrets, so the tool sends them only to the hosts in `allowed_hosts`.",
                        "add `allowed_hosts: [api.example.com]`");
                }

                break;
            case "builtin.shell":
                var commands = (config.Get<List<object>>("allowed_commands") ?? []).OfType<string>().ToHashSet(StringComparer.Ordinal);
                foreach (var (command, patterns) in config.Get<SortedDictionary<string, object>>("argument_patterns") ?? [])
                {
                    var at = $"{path}.argument_patterns.{command}";
                    if (!commands.Contains(command))
                    {
                        diagnostics.Error(DiagnosticCodes.NotApplicable, config.PositionOf("argument_patterns"), at,
                            $"`{command}` is not among `allowed_commands`.", "list it in `allowed_commands`, or remove its patterns");
                    }

                    foreach (var pattern in ((List<object>)patterns).OfType<string>())
                    {
                        try
                        {
                            _ = new System.Text.RegularExpressions.Regex(pattern, System.Text.RegularExpressions.RegexOptions.NonBacktracking);
                        }
                        catch (Exception exception) when (exception is ArgumentException or NotSupportedException)
                        {
                            diagnostics.Error(DiagnosticCodes.InvalidFormat, config.PositionOf("argument_patterns"), at,
                                $"`{pattern}` is not a regular expression the tool can use: {exception.Message}",
                                "patterns are .NET regular expressions without backreferences or lookarounds, matched against each whole argument");
                        }
                    }
                }

                break;
        }
    }

    private MemoryConfig BuildMemory(ValidatedObject? memory)
    {
        memory ??= Defaults(AgentSchema.Memory);
        var config = new MemoryConfig
        {
            Type = MemoryTypeNames.Parse(memory.String("type")) is var named and not MemoryType.Unspecified ? named : MemoryType.InMemory,
            MaxMessages = (int)(memory.Integer("max_messages") ?? 100),
            MaxHistoryTokens = (int)(memory.Integer("max_history_tokens") ?? 0),
        };
        if (memory.Duration("ttl") is { } ttl)
        {
            config.Ttl = Duration.FromTimeSpan(ttl);
        }

        if (memory.Get<ValidatedObject>("semantic") is { } semantic)
        {
            if (semantic.Boolean("enabled") == true && !semantic.Written.ContainsKey("embedding_model"))
            {
                diagnostics.Error(DiagnosticCodes.MissingField, semantic.Position, "memory.semantic.embedding_model",
                    "Semantic recall needs an `embedding_model`.", "add `embedding_model: text-embedding-3-small` (or another model the gateway serves)");
            }

            config.Semantic = new SemanticMemoryConfig
            {
                Enabled = semantic.Boolean("enabled") ?? false,
                TopK = (int)(semantic.Integer("top_k") ?? 5),
                EmbeddingModel = semantic.String("embedding_model") ?? "",
                MinScore = semantic.Number("min_score") ?? 0,
                Scope = semantic.String("scope") ?? SemanticMemory.AgentScope,
                MaxRecallTokens = (int)(semantic.Integer("max_recall_tokens") ?? SemanticMemory.DefaultMaxRecallTokens),
                Provider = semantic.String("provider") switch
                {
                    "openai" => LlmProvider.Openai,
                    "openai_compatible" => LlmProvider.OpenaiCompatible,
                    "scripted" => LlmProvider.Scripted,
                    _ => LlmProvider.Unspecified,
                },
            };
        }

        return config;
    }

    private ExecutionConfig BuildExecution(ValidatedObject? execution)
    {
        execution ??= Defaults(AgentSchema.Execution);
        var config = new ExecutionConfig
        {
            Strategy = ExecutionStrategy.React,
            MaxIterations = (int)(execution.Integer("max_iterations") ?? ExecutionDefaults.MaxIterations),
            Timeout = Duration.FromTimeSpan(execution.Duration("timeout") ?? ExecutionDefaults.Timeout),
            MaxRepeatedToolCalls = (int)(execution.Integer("max_repeated_tool_calls") ?? ExecutionDefaults.MaxRepeatedToolCalls),
            MaxParallelToolCalls = (int)(execution.Integer("max_parallel_tool_calls") ?? ExecutionDefaults.MaxParallelToolCalls),
            OnInterrupt = execution.String("on_interrupt") == "fail" ? InterruptPolicy.Fail : InterruptPolicy.Resume,
        };
        if (execution.Duration("approval_timeout") is { } approvalTimeout)
        {
            config.ApprovalTimeout = Duration.FromTimeSpan(approvalTimeout);
        }

        if (execution.Get<ValidatedObject>("budget") is { } budget)
        {
            config.Budget = new Budget();
            if (budget.Number("max_cost_usd") is { } cost)
            {
                config.Budget.MaxCostUsd = cost;
            }

            if (budget.Integer("max_tokens") is { } tokens)
            {
                config.Budget.MaxTokens = tokens;
            }

            if (budget.Integer("max_tool_calls") is { } calls)
            {
                config.Budget.MaxToolCalls = (int)calls;
            }
        }

        return config;
    }

    private ValidatedObject Defaults(ObjectSpec spec) =>
        walker.ReadObject(new MappingNode(SourcePosition.Document), spec, spec.Title) ?? new ValidatedObject(SourcePosition.Document);

    /// <summary>Free-form mapping (tool call arguments) to a Struct, with <c>${VAR}</c> expanded in its strings.</summary>
    private Struct? ToStruct(ConfigNode node, string path) => ToValue(node, path)?.StructValue;

    private Value? ToValue(ConfigNode node, string path)
    {
        switch (node)
        {
            case MappingNode mapping:
                // Keys in ordinal order: the definition (and its content hash) must not depend on how the
                // file happened to order them.
                var result = new Struct();
                foreach (var entry in mapping.Entries.OrderBy(e => e.Key, StringComparer.Ordinal))
                {
                    if (ToValue(entry.Value, $"{path}.{entry.Key}") is not { } value)
                    {
                        return null;
                    }

                    result.Fields[entry.Key] = value;
                }

                return Value.ForStruct(result);
            case SequenceNode sequence:
                var items = new List<Value>(sequence.Items.Count);
                for (var i = 0; i < sequence.Items.Count; i++)
                {
                    if (ToValue(sequence.Items[i], $"{path}[{i}]") is not { } item)
                    {
                        return null;
                    }

                    items.Add(item);
                }

                return Value.ForList([.. items]);
            case ScalarNode raw:
                if (walker.Expand(raw, path) is not { } scalar)
                {
                    return null;
                }

                return scalar.Kind switch
                {
                    ScalarKind.Null => Value.ForNull(),
                    ScalarKind.Boolean => Value.ForBool(scalar.Text == "true"),
                    ScalarKind.Integer or ScalarKind.Float when double.TryParse(scalar.Text, System.Globalization.CultureInfo.InvariantCulture, out var number)
                        => Value.ForNumber(number),
                    _ => Value.ForString(scalar.Text),
                };
            default:
                return null;
        }
    }

    /// <summary>
    /// A Struct as JSON in the protobuf formatter's layout (<c>{ "expression": "2 + 2" }</c>), written directly: the
    /// formatter would first build the descriptors of <c>google/protobuf/struct.proto</c>, a large share of a CLI's
    /// <c>validate</c>.
    /// </summary>
    private static string ToJson(Value value)
    {
        var text = new StringBuilder();
        Write(text, value);
        return text.ToString();

        static void Write(StringBuilder text, Value value)
        {
            switch (value.KindCase)
            {
                case Value.KindOneofCase.StructValue:
                    text.Append('{');
                    var first = true;
                    foreach (var (name, field) in value.StructValue.Fields)
                    {
                        text.Append(first ? " " : ", ");
                        first = false;
                        Quote(text, name);
                        text.Append(": ");
                        Write(text, field);
                    }

                    text.Append(" }");
                    break;
                case Value.KindOneofCase.ListValue:
                    text.Append('[');
                    for (var i = 0; i < value.ListValue.Values.Count; i++)
                    {
                        text.Append(i == 0 ? " " : ", ");
                        Write(text, value.ListValue.Values[i]);
                    }

                    text.Append(" ]");
                    break;
                case Value.KindOneofCase.StringValue:
                    Quote(text, value.StringValue);
                    break;
                case Value.KindOneofCase.NumberValue:
                    text.Append(value.NumberValue.ToString("R", CultureInfo.InvariantCulture));
                    break;
                case Value.KindOneofCase.BoolValue:
                    text.Append(value.BoolValue ? "true" : "false");
                    break;
                default:
                    text.Append("null");
                    break;
            }
        }

        static void Quote(StringBuilder text, string value) =>
            text.Append('"').Append(JsonEncodedText.Encode(value, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value).Append('"');
    }

    private static readonly string[] ConditionTests = ["one_of", "not_one_of", "matches"];

    // When a tool's calls need approval. Conditions on a built-in tool name its arguments, and one that no call can meet
    // (or every call meets) is an error: it would guard nothing, or everything while looking selective.
    private ApprovalPolicy BuildApproval(ValidatedObject tool, ToolConfig config, string path)
    {
        var policy = new ApprovalPolicy { Mode = ApprovalPolicy.Types.Mode.Never };
        if (tool.Get<ValidatedObject>("approval") is not { } approval)
        {
            policy.Mode = tool.String("approval") == "always" ? ApprovalPolicy.Types.Mode.Always : ApprovalPolicy.Types.Mode.Never;
            return policy;
        }

        policy.Mode = ApprovalPolicy.Types.Mode.When;
        var conditions = approval.Get<List<object>>("when") ?? [];
        var known = ApprovalArguments.Of(config);
        for (var index = 0; index < conditions.Count; index++)
        {
            if (conditions[index] is not ValidatedObject when)
            {
                continue;
            }

            var at = $"{path}.approval.when[{index}]";
            var condition = new ApprovalCondition
            {
                Argument = when.String("argument") ?? "",
                OneOf = { (when.Get<List<object>>("one_of") ?? []).OfType<string>() },
                NotOneOf = { (when.Get<List<object>>("not_one_of") ?? []).OfType<string>() },
                Matches = when.String("matches") ?? "",
            };
            policy.When.Add(condition);
            var tests = ConditionTests.Where(when.Written.ContainsKey).ToList();
            if (tests.Count != 1)
            {
                diagnostics.Error(tests.Count == 0 ? DiagnosticCodes.MissingField : DiagnosticCodes.NotApplicable, when.Position, at,
                    tests.Count == 0 ? "A condition needs one test: `one_of`, `not_one_of` or `matches`." : $"A condition takes one test; this one has {string.Join(" and ", tests.Select(t => $"`{t}`"))}.",
                    "write one condition per test; any condition that matches makes the call need approval");
            }

            if (known is not null && !known.ContainsKey(condition.Argument))
            {
                diagnostics.Error(DiagnosticCodes.InvalidValue, when.ValuePositionOf("argument"), at + ".argument",
                    $"A {ToolTypeNames.Of(config.Type)} call has no argument `{condition.Argument}`; it has {string.Join(", ", known.Keys.Select(k => $"`{k}`"))}.",
                    Suggestions.Closest(condition.Argument, known.Keys) is { } close ? Suggestions.DidYouMean(close) : "name one of the tool's arguments");
                continue;
            }

            if (condition.Matches.Length > 0)
            {
                try
                {
                    _ = new System.Text.RegularExpressions.Regex(condition.Matches, System.Text.RegularExpressions.RegexOptions.NonBacktracking);
                }
                catch (Exception exception) when (exception is ArgumentException or NotSupportedException)
                {
                    diagnostics.Error(DiagnosticCodes.InvalidFormat, when.ValuePositionOf("matches"), at + ".matches",
                        $"`{condition.Matches}` is not a regular expression Namra can use: {exception.Message}", "a .NET regular expression without backreferences or lookarounds, matched against the whole value");
                }
            }

            if (known?.GetValueOrDefault(condition.Argument) is { } values)
            {
                // A list sharing no value with those the tool takes, or holding them all, decides every call the same way.
                var (test, listed, matchesWhenListed) = condition.OneOf.Count > 0 ? ("one_of", condition.OneOf, true) : ("not_one_of", condition.NotOneOf, false);
                var none = listed.Count > 0 && !listed.Any(values.Contains);
                var all = listed.Count > 0 && values.All(listed.Contains);
                if (none || all)
                {
                    var never = none == matchesWhenListed;
                    diagnostics.Error(DiagnosticCodes.ApprovalNeverMatches, when.ValuePositionOf(test), $"{at}.{test}",
                        $"{(never ? "No call can meet" : "Every call meets")} this condition: `{condition.Argument}` is only ever {string.Join(", ", values.Select(v => $"`{v}`"))} for this tool.",
                        never ? "name values the tool takes (its settings allow only those)" : "write `approval: always` if every call needs approval");
                }
            }
        }

        return policy;
    }

    // The validated settings of a tool type (defaults filled in) as its settings message: the agent file's names are
    // the message's field names, so any setting the message lacks fails here, in the tests, not silently.
    private void SetSettings(ToolConfig tool, string type, ValidatedObject typed, string path)
    {
        var settings = ToStruct(typed);
        switch (type)
        {
            case "builtin.calculator":
                tool.Calculator = Parse<CalculatorToolSettings>(settings);
                break;
            case "builtin.http":
                tool.Http = Parse<HttpToolSettings>(settings);
                break;
            case "builtin.filesystem":
                tool.Filesystem = Parse<FilesystemToolSettings>(settings);
                break;
            case "builtin.database":
                tool.Database = Parse<DatabaseToolSettings>(settings);
                break;
            case "builtin.shell":
                // `command: [patterns]` in the file; a message of patterns per command in the contract.
                if (settings.Fields.TryGetValue("argument_patterns", out var patterns) && patterns.StructValue is { } byCommand)
                {
                    foreach (var command in byCommand.Fields.Keys.ToList())
                    {
                        byCommand.Fields[command] = Value.ForStruct(new Struct { Fields = { ["patterns"] = byCommand.Fields[command] } });
                    }
                }

                tool.Shell = Parse<ShellToolSettings>(settings);
                break;
            case "mcp":
                tool.Mcp = Parse<McpToolSettings>(settings);
                break;
            case "grpc":
                tool.Grpc = Parse<GrpcToolSettings>(WithoutOptions(settings));
                tool.Grpc.Options = Options(typed, path);
                break;
            case "python":
                tool.Python = Parse<PythonToolSettings>(WithoutOptions(settings));
                tool.Python.Options = Options(typed, path);
                break;
            case "agent":
                tool.Agent = Parse<AgentToolSettings>(settings);
                break;
        }
    }

    // `options` of tools served by others (providers, Python modules) pass through as written, any shape: set apart from the typed settings.
    private static Struct WithoutOptions(Struct settings)
    {
        settings.Fields.Remove("options");
        return settings;
    }

    private Struct? Options(ValidatedObject typed, string path) =>
        typed.Get<ConfigNode>("options") is { } options ? ToStruct(options, path + ".options") : null;

    private static T Parse<T>(Struct settings) where T : IMessage<T>, new() =>
        JsonParser.Default.Parse<T>(JsonFormatter.Default.Format(settings));

    /// <summary>Validated tool settings (defaults filled in) to a Struct, keys in ordinal order.</summary>
    private static Struct ToStruct(ValidatedObject config)
    {
        var result = new Struct();
        foreach (var (name, value) in config.Values.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            result.Fields[name] = ToValue(value);
        }

        return result;
    }

    private static Value ToValue(object value) => value switch
    {
        string text => Value.ForString(text),
        long integer => Value.ForNumber(integer),
        double number => Value.ForNumber(number),
        bool flag => Value.ForBool(flag),
        TimeSpan duration => Value.ForString(DurationFormat.Format(duration)),
        List<object> items => Value.ForList([.. items.Select(ToValue)]),
        SortedDictionary<string, string> map => Value.ForStruct(new Struct { Fields = { map.ToDictionary(p => p.Key, p => Value.ForString(p.Value)) } }),
        SortedDictionary<string, object> map => Value.ForStruct(new Struct { Fields = { map.ToDictionary(p => p.Key, p => ToValue(p.Value)) } }),
        ValidatedObject nested => Value.ForStruct(ToStruct(nested)),
        _ => Value.ForNull(),
    };
}
