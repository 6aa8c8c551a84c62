using System.Text.Json;
using Namra.Contracts.V1;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>builtin.calculator</c>: arithmetic (<see cref="Arithmetic"/>: parsed, never compiled or run as code, with no
/// recursion). Operators with usual precedence, functions (sqrt, pow, sin, cos, tan, log, ln, exp, abs, round,
/// floor, ceiling, min, max...), constants pi and e; decimal arithmetic, exact to 28 digits, until a function or
/// a constant makes a result irrational. Bounded in length and nesting; division by zero, overflow and unknown
/// names are errors the model can read.
/// </summary>
internal sealed class CalculatorTool : ITool
{
    private const int DefaultMaxLength = 1000;
    private const int MaxNesting = 64;

    private const string Schema = """
        {"type":"object","properties":{"expression":{"type":"string","minLength":1,"description":"An arithmetic expression, such as (17 + 25) * 2 or sqrt(2) / pow(3, 4). Use pow(a, b) for powers."}},"required":["expression"],"additionalProperties":false}
        """;

    public ToolType Type => ToolType.BuiltinCalculator;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ToolDescription>>(
        [
            new ToolDescription(config.Name,
                config.Description.Length > 0 ? config.Description : "Evaluates an arithmetic expression and returns the number: + - * / % are exact decimal arithmetic (28 significant digits); sqrt, sin, log and the other functions, pi and e are double precision. Use it for every computation.",
                Schema),
        ]);

    public bool IsIdempotent(ToolConfig config, JsonElement arguments) => true;

    public bool IsAlwaysIdempotent(ToolConfig config) => true;

    public string? RefuseUntrusted(ToolConfig config) => null; // a calculation reaches nothing

    public Task<ToolOutcome> ExecuteAsync(ToolConfig config, ToolCallInfo call, JsonElement arguments, CancellationToken cancellationToken)
    {
        var expression = arguments.GetProperty("expression").GetString() ?? "";
        var maxLength = config.Calculator is { MaxExpressionLength: > 0 } calculator ? calculator.MaxExpressionLength : DefaultMaxLength;
        return Task.FromResult(Evaluate(expression, maxLength));
    }

    internal static ToolOutcome Evaluate(string expression, int maxLength = DefaultMaxLength)
    {
        if (expression.Length > maxLength)
        {
            return ToolOutcome.Error($"The expression is {expression.Length} characters long; the limit is {maxLength}.");
        }

        var (value, error) = Arithmetic.Evaluate(expression, MaxNesting);
        return error is null ? new ToolOutcome(value!) : ToolOutcome.Error(error);
    }
}
