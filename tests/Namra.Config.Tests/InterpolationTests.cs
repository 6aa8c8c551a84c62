using Namra.Config.Validation;

namespace Namra.Config.Tests;

/// <summary><c>${VAR}</c> and <c>${VAR:-default}</c> in values.</summary>
public sealed class InterpolationTests
{
    private const string Agent = "name: demo\nversion: 1.0.0\nllm:\n  provider: openai\n  model: ${MODEL:-gpt-4o}\n  max_tokens: ${MAX_TOKENS:-512}\n";

    [Fact]
    public void Load_WhenVariablesAreSet_SubstitutesAndTypesThem()
    {
        var result = TestFiles.Loader(new Dictionary<string, string> { ["MODEL"] = "gpt-4.1", ["MAX_TOKENS"] = "2048" }).Load(Agent, "agent.yaml");

        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics));
        Assert.Equal(("gpt-4.1", 2048), (result.Agent!.Llm.Model, result.Agent.Llm.MaxTokens));
    }

    [Fact]
    public void Load_WhenVariablesAreUnsetOrEmpty_UsesTheDefaults()
    {
        var result = TestFiles.Loader(new Dictionary<string, string> { ["MODEL"] = "" }).Load(Agent, "agent.yaml");

        Assert.Equal(("gpt-4o", 512), (result.Agent!.Llm.Model, result.Agent.Llm.MaxTokens));
    }

    [Theory]
    [InlineData("system_prompt: \"Your key: ${ANTHROPIC_API_KEY}\"\n", "system_prompt")]
    [InlineData("labels: { team: \"${GITHUB_TOKEN}\" }\n", "labels.team")]
    [InlineData("description: ${PGPASSWORD}\n", "description")]
    [InlineData("llm:\n  provider: scripted\n  model: scripted\n  script:\n    - text: \"${AWS_SECRET_ACCESS_KEY}\"\n", "llm.script[0].text")]
    public void Load_WhenAgentTextReadsASecret_RefusesWithoutPrintingIt(string yaml, string field)
    {
        var environment = new Dictionary<string, string> { ["ANTHROPIC_API_KEY"] = "VALUE-1", ["GITHUB_TOKEN"] = "VALUE-2", ["PGPASSWORD"] = "VALUE-3", ["AWS_SECRET_ACCESS_KEY"] = "VALUE-4" };
        var content = yaml.StartsWith("llm:", StringComparison.Ordinal) ? "name: demo\nversion: 1.0.0\n" + yaml : "name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\n" + yaml;

        var result = TestFiles.Loader(environment).Load(content, "agent.yaml");

        var error = Assert.Single(result.Diagnostics);
        Assert.Equal((DiagnosticCodes.SecretInFile, field), (error.Code, error.FieldPath));
        Assert.Null(result.Agent);
        Assert.DoesNotContain("VALUE-", string.Join("\n", result.Diagnostics.Select(d => d.Message + d.Hint)), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ASecretReference_IsKeptInAToolsHeaders_AndRefusedInAgentText()
    {
        const string Tools = "tools:\n  - name: partner\n    type: builtin.http\n    config: { allowed_hosts: [api.example.com], headers: { Authorization: \"Bearer ${secret:partner_token}\" } }\n";
        var kept = TestFiles.Loader().Load("name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\n" + Tools, "agent.yaml");
        var refused = TestFiles.Loader().Load("name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\nsystem_prompt: \"Use ${secret:partner_token}\"\n", "agent.yaml");
        var badName = TestFiles.Loader().Load("name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\n" + Tools.Replace("secret:partner_token", "secret:../etc/passwd", StringComparison.Ordinal), "agent.yaml");

        Assert.True(kept.IsValid, string.Join("\n", kept.Diagnostics));
        Assert.Equal("Bearer ${secret:partner_token}", kept.Agent!.Tools[0].Http.Headers["Authorization"]);
        var error = Assert.Single(refused.Diagnostics);
        Assert.Equal((DiagnosticCodes.SecretInFile, "system_prompt"), (error.Code, error.FieldPath));
        Assert.Contains("headers", error.Hint, StringComparison.Ordinal);
        Assert.Equal(DiagnosticCodes.BadInterpolation, Assert.Single(badName.Diagnostics).Code);
    }

    [Theory]
    [InlineData("MAX_TOKENS", false)]
    [InlineData("TOKEN_LIMIT", false)]
    [InlineData("MODEL", false)]
    [InlineData("KEYBOARD", false)]
    [InlineData("OPENAI_API_KEY", true)]
    [InlineData("MY_APIKEY", true)]
    [InlineData("SLACK_TOKEN", true)]
    [InlineData("PGPASSWORD", true)]
    [InlineData("client_secret", true)]
    [InlineData("NAMRA_API_KEYS", true)]
    [InlineData("DB_PASSWORDS", true)]
    [InlineData("VAULT_SECRETS", true)]
    [InlineData("GITHUB_CREDS", true)]
    [InlineData("GPG_PASSPHRASE", true)]
    [InlineData("SENTRY_DSN", true)]
    [InlineData("DATABASE_CONNECTION_STRING", true)]
    [InlineData("ORDERS_DB_CONN_STR", true)]
    [InlineData("DATABASE_URL", false)]
    [InlineData("LLM_BASE_URL", false)]
    public void LooksSecret_KnowsTheNamesPeopleGiveSecrets(string name, bool secret)
    {
        Assert.Equal(secret, Namra.Config.Parsing.Interpolator.LooksSecret(name));
    }

    [Theory]
    [InlineData("postgres://app:s3cret@db:5432/app", true)]
    [InlineData("redis://:s3cret@cache:6379/0", true)]
    [InlineData("https://ghp_abc123@github.com/org/repo.git", true)]
    [InlineData("https://api.example.com/v1?page=2&api_key=abc", true)]
    [InlineData("https://search.example.com/?q=x;access-token=abc", true)]
    [InlineData("http://localhost:11434", false)]
    [InlineData("https://api.example.com/v1?page=2&max_tokens=10", false)]
    [InlineData("https://example.com/@someone", false)]
    [InlineData("sqlite:///var/lib/app.db", false)]
    [InlineData("a plain sentence with key=value in it", false)]
    public void CarriesCredentials_KnowsAUrlThatHoldsASecret_WhateverItsVariableIsCalled(string value, bool secret)
    {
        Assert.Equal(secret, Namra.Config.Parsing.Interpolator.CarriesCredentials(value));
    }

    [Fact]
    public void Load_AConnectionUrlWithCredentials_IsRefusedInAgentText_AndAUrlWithoutThemIsRead()
    {
        var environment = new Dictionary<string, string>
        {
            ["DATABASE_URL"] = "postgres://app:VALUE-1@db/app",
            ["NAMRA_API_KEYS"] = "VALUE-2,VALUE-3",
            ["LLM_BASE_URL"] = "http://localhost:11434/v1",
        };

        var withCredentials = TestFiles.Loader(environment).Load("name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\nsystem_prompt: \"Connect to ${DATABASE_URL}\"\n", "agent.yaml");
        var keys = TestFiles.Loader(environment).Load("name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\ndescription: \"${NAMRA_API_KEYS}\"\n", "agent.yaml");
        var plain = TestFiles.Loader(environment).Load("name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\nsystem_prompt: \"The model runs at ${LLM_BASE_URL}\"\n", "agent.yaml");

        Assert.Equal((DiagnosticCodes.SecretInFile, "system_prompt"), (Assert.Single(withCredentials.Diagnostics).Code, withCredentials.Diagnostics[0].FieldPath));
        Assert.Equal((DiagnosticCodes.SecretInFile, "description"), (Assert.Single(keys.Diagnostics).Code, keys.Diagnostics[0].FieldPath));
        Assert.DoesNotContain("VALUE-", string.Join("\n", withCredentials.Diagnostics.Concat(keys.Diagnostics).Select(d => d.Message + d.Hint)), StringComparison.Ordinal);
        Assert.True(plain.IsValid, string.Join("\n", plain.Diagnostics));
        Assert.Equal("The model runs at http://localhost:11434/v1", plain.Agent!.SystemPrompt);
    }

    [Fact]
    public void Load_WhenVariableIsUnsetWithoutDefault_NamesItAndItsLine()
    {
        var result = TestFiles.Loader().Load("name: demo\nversion: 1.0.0\nllm:\n  provider: openai\n  model: m\nsystem_prompt: Hello ${USER_NAME}, welcome to ${PLACE:-here}.\n", "agent.yaml");

        var error = Assert.Single(result.Diagnostics);
        Assert.Equal((DiagnosticCodes.UnsetVariable, 6, "system_prompt"), (error.Code, error.Position.Line, error.FieldPath));
        Assert.Equal("Environment variable `USER_NAME` is not set.", error.Message);
        Assert.Equal("set it, or give a default: `${USER_NAME:-value}`", error.Hint);
    }

    [Fact]
    public void Load_WhenValueOfNumberFieldIsNotANumber_ReportsTheTypeAfterSubstitution()
    {
        var result = TestFiles.Loader(new Dictionary<string, string> { ["MAX_TOKENS"] = "lots" }).Load(Agent, "agent.yaml");

        var error = Assert.Single(result.Diagnostics);
        Assert.Equal((DiagnosticCodes.WrongType, "llm.max_tokens"), (error.Code, error.FieldPath));
    }

    [Theory]
    [InlineData("cost: $${PRICE}", "cost: ${PRICE}")]
    [InlineData("$$5 and ${A}", "$$5 and 1")]
    [InlineData("no variables", "no variables")]
    public void Load_WhenTextHasDollarSigns_OnlyExpandsReferences(string prompt, string expected)
    {
        var result = TestFiles.Loader(new Dictionary<string, string> { ["A"] = "1" })
            .Load($"name: demo\nversion: 1.0.0\nllm:\n  provider: openai\n  model: m\nsystem_prompt: \"{prompt}\"\n", "agent.yaml");

        Assert.Equal(expected, result.Agent!.SystemPrompt);
    }

    [Theory]
    [InlineData("${UNCLOSED", DiagnosticCodes.BadInterpolation)]
    [InlineData("${1BAD}", DiagnosticCodes.BadInterpolation)]
    [InlineData("${}", DiagnosticCodes.BadInterpolation)]
    public void Load_WhenReferenceIsMalformed_SaysHowToWriteIt(string prompt, string code)
    {
        var result = TestFiles.Loader().Load($"name: demo\nversion: 1.0.0\nllm:\n  provider: openai\n  model: m\nsystem_prompt: \"{prompt}\"\n", "agent.yaml");

        Assert.Equal(code, Assert.Single(result.Diagnostics).Code);
    }

    [Fact]
    public void Load_WhenVariableHoldsYamlSyntax_CannotInjectFields()
    {
        var result = TestFiles.Loader(new Dictionary<string, string> { ["MODEL"] = "x\n  api_key: stolen" }).Load(Agent, "agent.yaml");

        Assert.True(result.IsValid);
        Assert.Equal("x\n  api_key: stolen", result.Agent!.Llm.Model);
    }
}
