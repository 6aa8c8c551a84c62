using System.Text;
using Namra.Config.Parsing;
using Namra.Config.Validation;

namespace Namra.Config.Tests;

/// <summary>Hostile and malformed documents: each is refused with a clear diagnostic, never a crash or a hang.</summary>
public sealed class ParsingLimitsTests
{
    [Fact]
    public void Load_WhenYamlIsBillionLaughs_RefusesAtTheNodeLimit()
    {
        var yaml = new StringBuilder("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (var level = 'b'; level <= 'i'; level++)
        {
            var previous = (char)(level - 1);
            yaml.Append(level).Append(": &").Append(level).Append(" [").Append(string.Join(",", Enumerable.Repeat($"*{previous}", 9))).Append("]\n");
        }

        var result = TestFiles.Loader().Load(yaml.ToString(), "lol.yaml");

        var error = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticCodes.TooManyNodes, error.Code);
        Assert.Contains("100,000", error.Message, StringComparison.Ordinal);
        Assert.Equal("remove the aliases (`*name`) that repeat large parts of the file", error.Hint);
    }

    [Fact]
    public void Load_WhenAliasesStayWithinTheLimit_ExpandsThem()
    {
        const string yaml = "name: demo\nversion: 1.0.0\nllm: &llm\n  provider: anthropic\n  model: m\nlabels:\n  a: &v x\n  b: *v\n";

        var result = TestFiles.Loader().Load(yaml, "agent.yaml");

        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics));
        Assert.Equal("x", result.Agent!.Labels["b"]);
    }

    [Theory]
    [InlineData("agent.yaml")]
    [InlineData("agent.toml")]
    public void Load_WhenNestingIsTooDeep_RefusesWithoutExhaustingTheStack(string fileName)
    {
        // 200,000 levels: deep enough to overflow any recursive parser that did not check first.
        var deep = fileName.EndsWith(".toml", StringComparison.Ordinal)
            ? "name = " + new string('[', 200_000) + new string(']', 200_000) + "\n"
            : "name: " + new string('[', 200_000) + new string(']', 200_000) + "\n";

        var result = TestFiles.Loader().Load(deep, fileName);

        var error = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticCodes.TooDeep, error.Code);
        Assert.Equal(fileName.EndsWith(".yaml", StringComparison.Ordinal) ? 1 : 0, error.Position.Line); // Tomlyn's depth error has no position
    }

    [Fact]
    public void Load_WhenDocumentIsOverTheSizeLimit_RefusesBeforeParsing()
    {
        var content = "name: demo\nsystem_prompt: \"" + new string('x', 2 * 1024 * 1024) + "\"\n";

        var result = TestFiles.Loader().Load(content, "big.yaml");

        var error = Assert.Single(result.Diagnostics);
        Assert.Equal(DiagnosticCodes.DocumentTooLarge, error.Code);
        Assert.Contains("1,048,576", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoadFile_WhenFileIsOverTheSizeLimit_RefusesWithoutReadingIt()
    {
        var path = Path.Combine(Path.GetTempPath(), $"namra-big-{Guid.NewGuid():N}.yaml");
        await File.WriteAllBytesAsync(path, new byte[2048]);
        try
        {
            var result = await TestFiles.Loader(limits: new ParseLimits { MaxDocumentBytes = 1024 }).LoadFileAsync(path, CancellationToken.None);

            Assert.Equal(DiagnosticCodes.DocumentTooLarge, Assert.Single(result.Diagnostics).Code);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static TheoryData<string, string, string, int, int> Malformed => new()
    {
        { "agent.yaml", "name: a\nname: b\nversion: 1.0.0\n", DiagnosticCodes.DuplicateKey, 2, 1 },
        { "agent.toml", "name = \"a\"\nversion = \"1.0.0\"\nname = \"b\"\n", DiagnosticCodes.DuplicateKey, 3, 1 },
        { "agent.toml", "[llm]\nmodel = \"a\"\n[llm]\nmodel = \"b\"\n", DiagnosticCodes.DuplicateKey, 3, 1 },
        { "agent.yaml", "name: !!python/object:os.system demo\n", DiagnosticCodes.UnsupportedTag, 1, 7 },
        { "agent.yaml", "name: !custom demo\n", DiagnosticCodes.UnsupportedTag, 1, 7 },
        { "agent.yaml", "name: a\n---\nname: b\n", DiagnosticCodes.MultipleDocuments, 2, 1 },
        { "agent.yaml", "name: [unclosed\nversion: 1.0.0\n", DiagnosticCodes.Syntax, 1, 7 },
        { "agent.yaml", "llm:\n  provider: openai\n model: x\n", DiagnosticCodes.Syntax, 3, 2 },
        { "agent.toml", "name = \n", DiagnosticCodes.Syntax, 1, 8 },
        { "agent.yaml", "b: *undefined\n", DiagnosticCodes.Syntax, 1, 4 },
        { "agent.yaml", "? [complex, key]\n: value\n", DiagnosticCodes.Syntax, 1, 3 },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Load_WhenDocumentIsMalformed_ReportsTheProblemWhereItIs(string fileName, string content, string code, int line, int column)
    {
        var result = TestFiles.Loader().Load(content, fileName);

        var error = result.Diagnostics.First(d => d.Code is DiagnosticCodes.Syntax or DiagnosticCodes.DuplicateKey or DiagnosticCodes.UnsupportedTag or DiagnosticCodes.MultipleDocuments);
        Assert.Equal((code, line, column), (error.Code, error.Position.Line, error.Position.Column));
        Assert.False(result.IsValid);
    }

    [Theory]
    [InlineData("")]
    [InlineData("# only a comment\n")]
    [InlineData("~\n")]
    public void Load_WhenDocumentIsEmpty_SaysSo(string content)
    {
        var error = Assert.Single(TestFiles.Loader().Load(content, "agent.yaml").Diagnostics);

        Assert.Equal((DiagnosticCodes.MissingField, "The agent file is empty."), (error.Code, error.Message));
    }

    [Fact]
    public void Load_WhenRootIsAList_SaysAnAgentIsAMapping()
    {
        var error = Assert.Single(TestFiles.Loader().Load("- name: demo\n", "agent.yaml").Diagnostics);

        Assert.Equal(DiagnosticCodes.WrongType, error.Code);
        Assert.Equal("The agent file must be an agent definition (a mapping of fields), not a list.", error.Message);
    }
}

/// <summary>Inputs found by review to break naive parsers: overflow, deep dotted keys, floods of mistakes.</summary>
public sealed class HostileInputTests
{
    [Theory]
    [InlineData("execution:\n  timeout: 99999999999999h\n", "execution.timeout")]
    [InlineData("execution:\n  timeout: 1000000000d\n", "execution.timeout")]
    public void Load_WhenDurationOverflows_ReportsAFormatError(string tail, string path)
    {
        var result = TestFiles.Loader().Load("name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\n" + tail, "agent.yaml");

        var error = Assert.Single(result.Diagnostics);
        Assert.Equal((DiagnosticCodes.InvalidFormat, path), (error.Code, error.FieldPath));
    }

    [Fact]
    public void Load_WhenVersionNumbersOverflow_ReportsAFormatError()
    {
        var result = TestFiles.Loader().Load("name: demo\nversion: 99999999999999999999.0.0\nllm: { provider: openai, model: m }\n", "agent.yaml");

        var error = Assert.Single(result.Diagnostics);
        Assert.Equal((DiagnosticCodes.InvalidFormat, "version"), (error.Code, error.FieldPath));
    }

    [Theory]
    [InlineData("[" + "a." + "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a]\nx = 1\n")]
    [InlineData("labels.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a = 1\n")]
    public void Load_WhenTomlDottedKeysNestTooDeep_Refuses(string toml)
    {
        var result = TestFiles.Loader().Load(toml, "agent.toml");

        Assert.Contains(result.Diagnostics, d => d.Code == DiagnosticCodes.TooDeep);
    }

    [Fact]
    public void Load_WhenTomlHasMultiLineStringsAndNesting_ParsesIt()
    {
        const string toml = "name = \"demo\"\nversion = \"1.0.0\"\nsystem_prompt = '''\nline [one\nline {two\n'''\n[llm]\nprovider = \"openai\"\nmodel = \"m\"\nstop_sequences = [\"]\", \"[[\"]\n";

        var result = TestFiles.Loader().Load(toml, "agent.toml");

        Assert.True(result.IsValid, string.Join("\n", result.Diagnostics));
        Assert.Equal("line [one\nline {two\n", result.Agent!.SystemPrompt);
    }

    [Fact]
    public void Load_WhenFileHasThousandsOfMistakes_ReportsABoundedNumber()
    {
        var content = "name: demo\nversion: 1.0.0\nllm: { provider: openai, model: m }\n"
            + string.Concat(Enumerable.Range(0, 5000).Select(i => $"unknown_{i}: x\n"));

        var result = TestFiles.Loader().Load(content, "agent.yaml");

        Assert.Equal(DiagnosticBag.MaxDiagnostics + 1, result.Diagnostics.Count);
        Assert.Equal(DiagnosticCodes.TooManyProblems, result.Diagnostics[^1].Code);
    }

    [Fact]
    public void Load_WhenValueIsHuge_EchoesOnlyItsStart()
    {
        var result = TestFiles.Loader().Load($"name: demo\nversion: 1.0.0\nllm: {{ provider: {new string('x', 100_000)}, model: m }}\n", "agent.yaml");

        Assert.True(Assert.Single(result.Diagnostics).Message.Length < 300);
    }
}
