using Namra.Config.Validation;

namespace Namra.Config.Parsing;

/// <summary>The tree of a document, or null when it could not be parsed; problems in either case.</summary>
internal sealed record ParseResult(ConfigNode? Root, IReadOnlyList<AgentDiagnostic> Diagnostics);

/// <summary>Collects diagnostics for one document.</summary>
internal sealed class DiagnosticBag(string file)
{
    private readonly List<AgentDiagnostic> _items = [];

    public string File { get; } = file;

    public IReadOnlyList<AgentDiagnostic> Items => _items;

    public bool HasErrors => _items.Exists(d => d.Severity == DiagnosticSeverity.Error);

    public void Error(string code, SourcePosition position, string path, string message, string hint = "") =>
        _items.Add(new AgentDiagnostic(DiagnosticSeverity.Error, code, message, File, position, path, hint));

    public void Warning(string code, SourcePosition position, string path, string message, string hint = "") =>
        _items.Add(new AgentDiagnostic(DiagnosticSeverity.Warning, code, message, File, position, path, hint));
}
