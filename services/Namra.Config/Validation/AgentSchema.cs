using Namra.Contracts;

namespace Namra.Config.Validation;

/// <summary>The fields of an agent file, their types, ranges and defaults.</summary>
internal static class AgentSchema
{
    public const string NamePattern = "^[a-z][a-z0-9_-]{0,63}$";
    public const string ToolNamePattern = "^[A-Za-z][A-Za-z0-9_-]{0,63}$";
    public const string EnvNamePattern = "^[A-Za-z_][A-Za-z0-9_]*$";
    public const string PythonModulePattern = "^([^\\n\\r]+\\.py|[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*)$";
    public const string AgentReferencePattern = "^[a-z][a-z0-9_-]{0,63}(@[0-9A-Za-z.+-]{1,128})?$";
    public const string UrlPattern = "^https?://[^\\s/$.?#][^\\s]*$";

    // Semantic Versioning 2.0.0, from semver.org.
    public const string SemVerPattern =
        "^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$";

    public static readonly IReadOnlyList<string> Providers = ["anthropic", "openai", "openai_compatible", "scripted"];

    public static readonly IReadOnlyList<string> ToolTypes =
        ["builtin.http", "builtin.filesystem", "builtin.calculator", "builtin.database", "builtin.shell", "mcp", "grpc", "python", "agent"];

    public static readonly IReadOnlyList<string> MemoryTypes = MemoryTypeNames.All;

    private static readonly StringType PlainString = new();
    private static readonly StringType SecretString = new(MaxLength: 8192, Deferred: true);
    private static readonly MapType SecretMap = new(SecretString);
    private static readonly StringType Url = new(UrlPattern, "URL", "https://api.example.com");
    private static readonly StringType EnvName = new(EnvNamePattern, "environment variable name", "MY_API_KEY");
    private static readonly DurationType ToolTimeout = new(TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1));
    private static readonly IntegerType ByteLimit = new(1, 1L << 30);

    public static readonly ObjectSpec ScriptedToolCall = new("scripted tool call",
    [
        new("name", new StringType(ToolNamePattern, "tool name", "calculator"), "The tool the scripted model calls.", Required: true),
        new("arguments", new AnyObjectType(), "Arguments of the call, as an object."),
        new("id", PlainString, "Call identifier; generated when omitted."),
    ]);

    public static readonly ObjectSpec ScriptedTurn = new("scripted turn",
    [
        new("text", PlainString, "Text the scripted model writes in this turn."),
        new("tool_calls", new ListType(new ObjectType(ScriptedToolCall), MaxItems: 64), "Tool calls the scripted model makes in this turn."),
        new("input_matches", new StringType(MaxLength: 1024), "A regular expression the run's input must match in full for this turn to be played; any input when absent."),
    ]);

    private static readonly NumberType PerMillion = new(0, 100_000);

    public static readonly ObjectSpec Pricing = new("llm.pricing",
    [
        new("input_per_mtok", PerMillion, "US dollars per million input tokens.", Required: true),
        new("output_per_mtok", PerMillion, "US dollars per million output tokens.", Required: true),
        new("cache_write_per_mtok", PerMillion, "US dollars per million tokens written to the prompt cache; the input price when omitted."),
        new("cache_read_per_mtok", PerMillion, "US dollars per million tokens read from the prompt cache; the input price when omitted."),
    ]);

    public static readonly ObjectSpec Llm = new("llm",
    [
        new("provider", new EnumType(Providers), "Which provider serves the model.", Required: true),
        new("model", new StringType(MaxLength: 256), "The provider's model name, such as claude-sonnet-5-5.", Required: true),
        new("temperature", new NumberType(0, 2), "Sampling temperature: 0..1 for anthropic, 0..2 for openai."),
        new("max_tokens", new IntegerType(1, 1_000_000), "Most tokens the model may write in one turn.", Default: 4096L),
        new("top_p", new NumberType(0, 1), "Nucleus sampling, 0..1."),
        new("stop_sequences", new ListType(PlainString, MaxItems: 16), "Sequences that end the model's turn."),
        new("base_url", Url, "Overrides the provider's API address; required for openai_compatible."),
        new("api_key_env", EnvName, "Environment variable holding the API key (keys never go in agent files)."),
        new("script", new ListType(new ObjectType(ScriptedTurn), MinItems: 1, MaxItems: 1000), "Turns the scripted provider replays, in order."),
        new("fallback_models", new ListType(new StringType(MaxLength: 256), MaxItems: 8), "Models of the same provider tried in order when the model is overloaded or unavailable."),
        new("pricing", new ObjectType(Pricing), "The model's prices, for a model the gateway has no published price for (self-hosted, new, negotiated); they price this agent's calls over the gateway's list."),
    ]);

    private static readonly FieldSpec[] BudgetFields =
    [
        new("max_cost_usd", new NumberType(0, 1_000_000, ExclusiveMinimum: true), "Most money a run may spend, in US dollars."),
        new("max_tokens", new IntegerType(1, 1_000_000_000), "Most tokens a run may use."),
        new("max_tool_calls", new IntegerType(0, 100_000), "Most tool calls a run may make."),
    ];

    public static readonly ObjectSpec CalculatorConfig = new("builtin.calculator config",
    [
        new("max_expression_length", new IntegerType(1, 100_000), "Longest expression accepted, in characters.", Default: 1000L),
    ]);

    public static readonly ObjectSpec HttpConfig = new("builtin.http config",
    [
        new("allowed_hosts", new ListType(PlainString), "Hosts the tool may call: `example.com`, `*.example.com`, `api.example.com:8443` (without a port, the scheme's default port only); any public host when empty. Required when `headers` read variables."),
        new("denied_hosts", new ListType(PlainString), "Hosts the tool may never call (on any port unless one is given)."),
        new("allow_private_networks", new BooleanType(), "Allow loopback, private, link-local and metadata addresses.", Default: false),
        new("allowed_methods", new ListType(new EnumType(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])), "HTTP methods the tool may use.", Default: new[] { "GET" }),
        new("headers", SecretMap, "Headers sent with every request; ${VAR} is resolved by the tool executor when the tool runs."),
        new("max_response_bytes", ByteLimit, "Largest response body read.", Default: 1_048_576L),
        new("max_redirects", new IntegerType(0, 20), "Most redirects followed, each one re-checked.", Default: 5L),
        new("extract_text", new BooleanType(), "Turn HTML into readable text for the model.", Default: true),
    ]);

    public static readonly ObjectSpec FilesystemConfig = new("builtin.filesystem config",
    [
        new("root", new StringType(MaxLength: 4096), "Folder the tool is jailed to.", Required: true),
        new("read_only", new BooleanType(), "Refuse writes.", Default: true),
        new("max_file_bytes", ByteLimit, "Largest file read or written.", Default: 1_048_576L),
        new("max_folder_bytes", new IntegerType(1, 1L << 40), "Most bytes the folder may hold: a write that would pass it is refused.", Default: 67_108_864L),
    ]);

    public static readonly ObjectSpec DatabaseConfig = new("builtin.database config",
    [
        new("driver", new EnumType(["sqlite", "postgres"]), "Database engine.", Required: true),
        new("connection_string", SecretString, "Connection string; ${VAR} is resolved by the tool executor when the tool runs."),
        new("connection_string_env", EnvName, "Environment variable holding the connection string."),
        new("read_only", new BooleanType(), "Open read-only, enforced by the database.", Default: true),
        new("max_rows", new IntegerType(1, 100_000), "Most rows returned.", Default: 100L),
    ]);

    public static readonly ObjectSpec ShellConfig = new("builtin.shell config",
    [
        new("allowed_commands", new ListType(new StringType(MaxLength: 4096), MinItems: 1), "Executables the tool may run (argv[0]); nothing else runs.", Required: true),
        new("working_directory", new StringType(MaxLength: 4096), "Folder commands run in; paths in arguments must stay inside it (or inside `allowed_paths`)."),
        new("allowed_paths", new ListType(new StringType(MaxLength: 4096), MaxItems: 64), "Absolute folders that arguments may name besides the working directory (`/` for any)."),
        new("argument_patterns", new MapType(new ListType(new StringType(MaxLength: 1024), MinItems: 1, MaxItems: 256)),
            "Per allowed command, regular expressions its arguments must each match in full; a command listed here takes only such arguments, and the built-in refusal of flags that run programs or write files no longer applies to it."),
        new("max_output_bytes", ByteLimit, "Most output kept per stream.", Default: 65_536L),
        new("env", SecretMap, "Environment given to commands (nothing else is inherited); ${VAR} is resolved by the tool executor."),
    ]);

    public static readonly ObjectSpec McpConfig = new("mcp config",
    [
        new("transport", new EnumType(["stdio", "http"]), "How to reach the server.", Default: "stdio"),
        new("command", new StringType(MaxLength: 4096), "Program to start (stdio)."),
        new("args", new ListType(PlainString), "Its arguments (stdio)."),
        new("env", SecretMap, "Its environment (stdio); ${VAR} is resolved by the tool executor."),
        new("url", Url, "Server address (http)."),
        new("headers", SecretMap, "Headers sent to the server (http); ${VAR} is resolved by the tool executor."),
    ]);

    public static readonly ObjectSpec GrpcConfig = new("grpc config",
    [
        new("address", Url, "Address of the ToolProviderService, such as http://tools.internal:50051.", Required: true),
        new("headers", SecretMap, "Metadata sent with every call; ${VAR} is resolved by the tool executor."),
        new("options", new AnyObjectType(), "Settings passed through to the provider as they are (DescribeTools and InvokeTool receive them)."),
    ]);

    public static readonly ObjectSpec PythonConfig = new("python config",
    [
        new("module", new StringType(PythonModulePattern, "Python file or module name", "tools/search.py", MaxLength: 4096),
            "The module whose @tool functions are the tools: a .py file (relative to the tool executor's working directory) or a module name the interpreter imports.",
            Required: true),
        new("env", SecretMap, "Environment of the plugin process, beyond a minimal one; ${VAR} is resolved by the tool executor."),
        new("options", new AnyObjectType(), "Settings passed through to the tools as they are (namra.current_call().options)."),
    ]);

    public static readonly ObjectSpec AgentConfig = new("agent config",
    [
        new("agent", new StringType(AgentReferencePattern, "agent reference", "researcher@1.2.0", MaxLength: 200),
            "The agent to call: name@version, or name for its latest version, as the registry knows it.", Required: true),
        new("budget", new ObjectType(new ObjectSpec("agent call budget", BudgetFields)),
            "Most one call may spend; the child's budget is also within its own and its share of what the caller has left."),
    ]);

    public static readonly IReadOnlyDictionary<string, ObjectSpec> ToolConfigs = new Dictionary<string, ObjectSpec>
    {
        ["builtin.calculator"] = CalculatorConfig,
        ["builtin.http"] = HttpConfig,
        ["builtin.filesystem"] = FilesystemConfig,
        ["builtin.database"] = DatabaseConfig,
        ["builtin.shell"] = ShellConfig,
        ["mcp"] = McpConfig,
        ["grpc"] = GrpcConfig,
        ["python"] = PythonConfig,
        ["agent"] = AgentConfig,
    };

    public static readonly ObjectSpec ApprovalCondition = new("approval condition",
    [
        new("argument", new StringType(MaxLength: 256), "A top-level argument of the call; one it leaves out has its schema's default, else none.", Required: true),
        new("one_of", new ListType(PlainString, MinItems: 1, MaxItems: 256), "Matches when the argument is one of these (compared as text)."),
        new("not_one_of", new ListType(PlainString, MinItems: 1, MaxItems: 256), "Matches when the argument is none of these (an argument without a value is none)."),
        new("matches", new StringType(MaxLength: 1024), "Matches when the argument matches this regular expression in full."),
    ]);

    public static readonly ObjectSpec Approval = new("approval",
    [
        new("when", new ListType(new ObjectType(ApprovalCondition), MinItems: 1, MaxItems: 32), "Conditions on the call's arguments, any of which makes it need approval.", Required: true),
    ]);

    public static readonly ObjectSpec Tool = new("tool",
    [
        new("name", new StringType(ToolNamePattern, "tool name", "calculator"), "Unique name of the tool within the agent.", Required: true),
        new("type", new EnumType(ToolTypes), "Kind of tool.", Required: true),
        new("description", PlainString, "Overrides the tool's description for the model."),
        new("config", new AnyObjectType(), "Settings of the tool type."),
        new("timeout", ToolTimeout, "Longest one call may take."),
        new("idempotent", new BooleanType(), "Calls may run twice with the effect of once: a call interrupted by a lost replica runs again when the run resumes.", Default: false),
        new("approval", new WordOrObjectType(new EnumType(["never", "always"]), Approval),
            "Whether a person must approve a call before it runs: `never`, `always`, or `{ when: [conditions] }`; the run waits for the decision.", Default: "never"),
    ]);

    public static readonly ObjectSpec Semantic = new("memory.semantic",
    [
        new("enabled", new BooleanType(), "Recall relevant memories into each run.", Default: false),
        new("top_k", new IntegerType(1, 100), "How many memories to recall.", Default: 5L),
        new("embedding_model", new StringType(MaxLength: 256), "Embedding model served by the LLM gateway."),
        new("min_score", new NumberType(-1, 1), "Least cosine similarity to recall.", Default: 0.0),
        new("scope", new EnumType([SemanticMemory.AgentScope, SemanticMemory.SessionScope]), "Whose memories: every conversation of the agent, or this conversation's.",
            Default: SemanticMemory.AgentScope),
        new("max_recall_tokens", new IntegerType(1, 100_000), "Most tokens of recalled memories put into the model's context each turn.",
            Default: (long)SemanticMemory.DefaultMaxRecallTokens),
        new("provider", new EnumType(["openai", "openai_compatible", "scripted"]),
            "Provider of the embedding model (scripted: offline, hashed words); the agent's own when it serves embeddings, else openai."),
    ]);

    public static readonly ObjectSpec Memory = new("memory",
    [
        new("type", new EnumType(MemoryTypes), "Where conversations are kept.", Default: "in_memory"),
        new("max_messages", new IntegerType(1, 100_000), "Most messages of history sent to the model.", Default: 100L),
        new("max_history_tokens", new IntegerType(0, 10_000_000), "Most tokens of history sent to the model; 0 for no limit.", Default: 0L),
        new("ttl", new DurationType(TimeSpan.FromSeconds(1), TimeSpan.FromDays(3650)), "How long an idle session is kept."),
        new("semantic", new ObjectType(Semantic), "Semantic (vector) recall."),
    ]);

    public static readonly ObjectSpec Budget = new("execution.budget", BudgetFields);

    public static readonly ObjectSpec Execution = new("execution",
    [
        new("strategy", new EnumType(["react"]), "Loop strategy.", Default: "react"),
        new("max_iterations", new IntegerType(1, 1000), "Most model turns in one run.", Default: (long)ExecutionDefaults.MaxIterations),
        new("timeout", new DurationType(TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(24)), "Longest a whole run may take.", Default: $"{ExecutionDefaults.TimeoutSeconds}s"),
        new("budget", new ObjectType(Budget), "Hard limits per run, enforced before each call."),
        new("max_repeated_tool_calls", new IntegerType(1, 100), "Stop a run that repeats the same tool call with the same arguments this many times.", Default: (long)ExecutionDefaults.MaxRepeatedToolCalls),
        new("max_parallel_tool_calls", new IntegerType(1, 64), "Most tool calls of one turn run at once.", Default: (long)ExecutionDefaults.MaxParallelToolCalls),
        new("on_interrupt", new EnumType(["resume", "fail"]), "What becomes of a run whose replica was lost: resumed from its journal on another, or ended as failed.", Default: "resume"),
        new("approval_timeout", new DurationType(TimeSpan.FromSeconds(1), TimeSpan.FromDays(365)), "How long a run may wait for tool calls to be approved before it ends as approval_expired; as long as it takes when unset. The wait does not count against `timeout`."),
    ]);

    public static readonly ObjectSpec Agent = new("agent",
    [
        new("name", new StringType(NamePattern, "agent name", "support_agent"), "Identifier of the agent: lower case letters, digits, `_` and `-`.", Required: true),
        new("version", new StringType(SemVerPattern, "semantic version", "1.0.0"), "Semantic version of the definition.", Required: true),
        new("description", PlainString, "What the agent is for."),
        new("llm", new ObjectType(Llm), "The model and how to call it.", Required: true),
        new("tools", new ListType(new ObjectType(Tool), MaxItems: 128), "Tools the agent may call."),
        new("memory", new ObjectType(Memory), "Conversation memory."),
        new("execution", new ObjectType(Execution), "How the run loop executes."),
        new("system_prompt", new StringType(MaxLength: 200_000), "Instructions given to the model before the conversation."),
        new("labels", new MapType(PlainString), "Free-form labels copied onto runs, metrics and traces."),
        new("handoff_history", new EnumType(["all", "user_messages"]),
            "What an agent the conversation is handed to sees of it: all of it, or only what the user said.", Default: "all"),
        new("input_schema", new AnyObjectType(),
            "JSON Schema (of an object) of the arguments the agent takes when another agent calls it as a tool; the arguments, as JSON, are its input. One `input` text when absent."),
        new("handoffs", new ListType(new StringType(AgentReferencePattern, "agent reference", "billing@1.0.0", MaxLength: 200), MaxItems: 32),
            "Agents the model may hand the conversation to (name@version, or name for the latest): each is a tool transfer_to_NAME, after which that agent answers."),
    ]);
}
