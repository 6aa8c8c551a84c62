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
