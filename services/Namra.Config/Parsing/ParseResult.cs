using Namra.Config.Validation;

namespace Namra.Config.Parsing;

/// <summary>The tree of a document, or null when it could not be parsed; problems in either case.</summary>
internal sealed record ParseResult(ConfigNode? Root, IReadOnlyList<AgentDiagnostic> Diagnostics);

/// <summary>Collects diagnostics for one document, at most <see cref="MaxDiagnostics"/> of them.</summary>
internal sealed class DiagnosticBag(string file)
{
    /// <summary>A file with thousands of mistakes gets the first ones: enough to act on, small enough to send.</summary>
    public const int MaxDiagnostics = 100;

    private readonly List<AgentDiagnostic> _items = [];
    private bool _hasErrors;

    public string File { get; } = file;

    public IReadOnlyList<AgentDiagnostic> Items => _items;

    public bool HasErrors => _hasErrors;

    /// <summary>True once no more diagnostics are kept: callers can skip the work of making them.</summary>
    public bool IsFull => _items.Count > MaxDiagnostics;

    public void Error(string code, SourcePosition position, string path, string message, string hint = "")
    {
        _hasErrors = true;
        Add(new AgentDiagnostic(DiagnosticSeverity.Error, code, message, File, position, path, hint));
    }

    public void Warning(string code, SourcePosition position, string path, string message, string hint = "") =>
        Add(new AgentDiagnostic(DiagnosticSeverity.Warning, code, message, File, position, path, hint));

    private void Add(AgentDiagnostic diagnostic)
    {
        if (_items.Count < MaxDiagnostics)
        {
            _items.Add(diagnostic);
        }
        else if (_items.Count == MaxDiagnostics)
        {
            _items.Add(new AgentDiagnostic(DiagnosticSeverity.Error, DiagnosticCodes.TooManyProblems,
                $"More than {MaxDiagnostics} problems; the rest are not reported.", File, SourcePosition.Document, "", "fix these and validate again"));
        }
    }
}
