using System.Text.Json;
using Json.Schema;
using Namra.Config.Validation;

namespace Namra.Config.Tests;

/// <summary>The committed JSON Schema is the validator's rules, for editors.</summary>
public sealed class AgentJsonSchemaTests
{
    private static readonly Lazy<JsonSchema> Schema = new(() => JsonSchema.FromText(File.ReadAllText(TestFiles.SchemaFile)));

    [Fact]
    public void CommittedSchema_IsWhatTheValidatorGenerates()
    {
        var committed = File.ReadAllText(TestFiles.SchemaFile);

        // When this fails after a change to the format: namra schema -o schemas/agent.schema.json
        Assert.Equal(AgentJsonSchema.Generate(), committed);
    }

    [Fact]
    public void Schema_AcceptsEveryExampleAgent()
    {
        foreach (var file in Directory.GetFiles(TestFiles.ExamplesFolder))
        {
            Assert.True(Evaluate(File.ReadAllText(file), file), $"the schema rejects {file}");
        }
    }

    public static TheoryData<string> SchemaExpressibleErrors()
    {
        // Every bad file of the validator's table whose problem JSON Schema can express (all but
        // duplicate tool names, semantic checks of interpolated values, and `yes` for booleans which JSON has no notion of;
        // rules across fields: secret headers need allowed hosts, argument patterns name allowed commands and are .NET regexes,
        // approval conditions name the tool's arguments and values its settings allow, one test each).
        var data = new TheoryData<string>();
        foreach (var row in AgentValidationTests.BadFiles)
        {
            var scenario = row.Data.Item1;
            if (scenario is not ("duplicate tool names" or "semantic memory without embedding model" or "http headers with secrets and no allowed hosts"
                or "shell argument patterns for a command not allowed, and a pattern that cannot be used"
                or "approval condition on an argument the tool does not take" or "approval condition no call can meet"
                or "approval condition every call meets" or "approval condition with two tests"))
            {
                data.Add(scenario);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SchemaExpressibleErrors))]
    public void Schema_RejectsWhatTheValidatorRejects(string scenario)
    {
        var content = AgentValidationTests.BadFiles.First(row => row.Data.Item1 == scenario).Data.Item2;

        Assert.False(Evaluate(content, "agent.yaml"), $"the schema accepts \"{scenario}\", which the validator rejects");
    }

    [Fact]
    public void Schema_RejectsMissingEmbeddingModelForSemanticRecall()
    {
        const string content = "name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\nmemory:\n  semantic:\n    enabled: true\n";

        Assert.False(TestFiles.Loader().Load(content, "agent.yaml").IsValid);
        Assert.False(Evaluate(content, "agent.yaml"));
    }

    private static bool Evaluate(string content, string fileName)
    {
        var json = TestFiles.ToJson(content, fileName);
        using var document = JsonDocument.Parse(json?.ToJsonString() ?? "null");
        return Schema.Value.Evaluate(document.RootElement).IsValid;
    }
}
