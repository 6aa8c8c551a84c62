using Namra.Config.Parsing;

namespace Namra.Config.Validation;

/// <summary>How serious a diagnostic is.</summary>
public enum DiagnosticSeverity
{
    /// <summary>The definition cannot be used.</summary>
    Error,

    /// <summary>The definition works, but something is likely a mistake.</summary>
    Warning,
}

/// <summary>One problem in an agent file, placed as a compiler places it.</summary>
/// <param name="Severity">How serious it is.</param>
/// <param name="Code">Stable code from <see cref="DiagnosticCodes"/>.</param>
/// <param name="Message">What is wrong.</param>
/// <param name="File">The file, as the caller named it; empty for unnamed text.</param>
/// <param name="Position">1-based line and column; 0:0 for the whole document.</param>
/// <param name="FieldPath">Path such as <c>llm.temperature</c> or <c>tools[1].type</c>; empty at the root.</param>
/// <param name="Hint">How to fix it; may be empty.</param>
public sealed record AgentDiagnostic(
    DiagnosticSeverity Severity,
    string Code,
    string Message,
    string File,
    SourcePosition Position,
    string FieldPath,
    string Hint)
{
    /// <summary><c>file:line:column: error CODE: message</c>, as compilers print it.</summary>
    public override string ToString()
    {
        var place = Position.Line > 0 ? $"{File}:{Position.Line}:{Position.Column}" : File;
        var severity = Severity == DiagnosticSeverity.Error ? "error" : "warning";
        var hint = Hint.Length > 0 ? $" (hint: {Hint})" : "";
        return $"{place}: {severity} {Code}: {Message}{hint}";
    }
}

/// <summary>The stable codes of agent-file diagnostics. Codes never change meaning; new ones are added.</summary>
public static class DiagnosticCodes
{
    /// <summary>The file cannot be read (missing, a folder, no permission).</summary>
    public const string FileUnreadable = "NAMRA0000";

    /// <summary>The text is not valid YAML or TOML.</summary>
    public const string Syntax = "NAMRA0001";

    /// <summary>The document is larger than the limit.</summary>
    public const string DocumentTooLarge = "NAMRA0002";

    /// <summary>Mappings and lists nest deeper than the limit.</summary>
    public const string TooDeep = "NAMRA0003";

    /// <summary>YAML aliases expand to more nodes than the limit.</summary>
    public const string TooManyNodes = "NAMRA0004";

    /// <summary>A key appears twice in one mapping.</summary>
    public const string DuplicateKey = "NAMRA0005";

    /// <summary>A YAML tag other than the core schema's.</summary>
    public const string UnsupportedTag = "NAMRA0006";

    /// <summary>More than one YAML document in a file.</summary>
    public const string MultipleDocuments = "NAMRA0007";

    /// <summary>More problems than are reported for one file.</summary>
    public const string TooManyProblems = "NAMRA0008";

    /// <summary><c>${VAR}</c> names an unset variable and gives no default.</summary>
    public const string UnsetVariable = "NAMRA0010";

    /// <summary>A <c>${</c> without its closing brace, or an invalid variable name.</summary>
    public const string BadInterpolation = "NAMRA0011";

    /// <summary>A field the format does not have.</summary>
    public const string UnknownField = "NAMRA0101";

    /// <summary>A required field is missing.</summary>
    public const string MissingField = "NAMRA0102";

    /// <summary>A value of the wrong type.</summary>
    public const string WrongType = "NAMRA0103";

    /// <summary>A number outside its range.</summary>
    public const string OutOfRange = "NAMRA0104";

    /// <summary>A value not among the allowed ones.</summary>
    public const string InvalidValue = "NAMRA0105";

    /// <summary>A string not in its required form (version, duration, name, URL...).</summary>
    public const string InvalidFormat = "NAMRA0106";

    /// <summary>Two tools with the same name.</summary>
    public const string DuplicateToolName = "NAMRA0107";

    /// <summary>A field that does not apply with the other settings (such as <c>script</c> for a non-scripted provider).</summary>
    public const string NotApplicable = "NAMRA0108";

    /// <summary>A secret written into the file instead of coming from the environment.</summary>
    public const string SecretInFile = "NAMRA0109";
    /// <summary>An approval condition no call of the tool can meet (or none can escape).</summary>
    public const string ApprovalNeverMatches = "NAMRA0111";

    /// <summary>An agent called as a tool that the registry does not have.</summary>
    public const string UnknownAgent = "NAMRA0112";

    /// <summary>Agents that call each other in a cycle.</summary>
    public const string AgentCycle = "NAMRA0113";

    /// <summary>An agent handed a conversation whose model cannot take it.</summary>
    public const string HandoffTarget = "NAMRA0114";

    /// <summary>A scripted tool call names a tool the agent does not declare.</summary>
    public const string UndeclaredScriptedTool = "NAMRA0201";
}
