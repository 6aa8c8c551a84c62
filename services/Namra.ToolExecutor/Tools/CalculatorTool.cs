using System.Globalization;
using System.Text.Json;
using NCalc;
using NCalc.Exceptions;
using Namra.Contracts.V1;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// <c>builtin.calculator</c>: arithmetic with NCalc, an expression evaluator (parsed, never compiled or run as
/// code). Operators with usual precedence, functions (sqrt, pow, sin, cos, tan, log, ln, exp, abs, round, floor,
/// ceiling, min, max...), constants pi and e. Bounded in length and nesting; division by zero, overflow and
/// unknown names are errors the model can read.
/// </summary>
internal sealed class CalculatorTool : ITool
{
    private const int DefaultMaxLength = 1000;
    private const int MaxNesting = 64;
    private const string DivisionOrOverflow = "Division by zero, or a result too large to represent.";

    private const string Schema = """
        {"type":"object","properties":{"expression":{"type":"string","minLength":1,"description":"An arithmetic expression, such as (17 + 25) * 2 or sqrt(2) / pow(3, 4). Use pow(a, b) for powers."}},"required":["expression"],"additionalProperties":false}
        """;

    public ToolType Type => ToolType.BuiltinCalculator;

    public Task<IReadOnlyList<ToolDescription>> DescribeAsync(ToolConfig config, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ToolDescription>>(
        [
            new ToolDescription(config.Name,
                config.Description.Length > 0 ? config.Description : "Evaluates an arithmetic expression exactly and returns the number. Use it for every computation.",
                Schema),
        ]);

    public Task<ToolOutcome> ExecuteAsync(ToolConfig config, string toolName, JsonElement arguments, CancellationToken cancellationToken)
    {
        var expression = arguments.GetProperty("expression").GetString() ?? "";
        var maxLength = config.Config?.Fields.TryGetValue("max_expression_length", out var limit) == true ? (int)limit.NumberValue : DefaultMaxLength;
        return Task.FromResult(Evaluate(expression, maxLength));
    }

    internal static ToolOutcome Evaluate(string expression, int maxLength = DefaultMaxLength)
    {
        if (expression.Length > maxLength)
        {
            return ToolOutcome.Error($"The expression is {expression.Length} characters long; the limit is {maxLength}.");
        }

        if (Nesting(expression) > MaxNesting)
        {
            return ToolOutcome.Error($"The expression nests parentheses deeper than {MaxNesting} levels.");
        }

        if (expression.Contains('^', StringComparison.Ordinal))
        {
            return ToolOutcome.Error("`^` is not a power operator here; write pow(a, b), such as pow(2, 10).");
        }

        try
        {
            var parsed = new Expression(expression, CultureInfo.InvariantCulture)
            {
                Options = ExpressionOptions.IgnoreCaseAtBuiltInFunctions | ExpressionOptions.OverflowProtection,
            };
            parsed.Parameters["pi"] = Math.PI;
            parsed.Parameters["e"] = Math.E;
            var result = parsed.Evaluate();
            return result switch
            {
                double d when double.IsNaN(d) => ToolOutcome.Error("The result is not a number (such as the square root of a negative number)."),
                double d when double.IsInfinity(d) => ToolOutcome.Error(DivisionOrOverflow),
                double d => new ToolOutcome(d.ToString("R", CultureInfo.InvariantCulture)),
                float f => new ToolOutcome(((double)f).ToString("R", CultureInfo.InvariantCulture)),
                decimal m => new ToolOutcome(m.ToString(CultureInfo.InvariantCulture)),
                bool b => new ToolOutcome(b ? "true" : "false"),
                IConvertible number when result is int or long or short or byte or uint or ulong or ushort or sbyte =>
                    new ToolOutcome(number.ToString(CultureInfo.InvariantCulture)),
                null => ToolOutcome.Error("The expression has no value."),
                _ => ToolOutcome.Error("The expression does not evaluate to a number."),
            };
        }
        catch (NCalcParameterNotDefinedException exception)
        {
            return ToolOutcome.Error($"Unknown name in the expression: {exception.Message} Known constants are pi and e.");
        }
        catch (NCalcFunctionNotFoundException exception)
        {
            return ToolOutcome.Error($"Unknown function: {exception.Message}");
        }
        catch (NCalcException exception)
        {
            return ToolOutcome.Error($"The expression is not valid: {exception.Message}");
        }
        catch (ArithmeticException exception)
        {
            // With overflow protection on, NCalc reports a division by zero and an overflow alike.
            return ToolOutcome.Error(exception is DivideByZeroException ? "Division by zero." : DivisionOrOverflow);
        }
        catch (Exception exception) when (exception is ArgumentException or FormatException or InvalidOperationException)
        {
            return ToolOutcome.Error($"The expression cannot be evaluated: {exception.Message}");
        }
    }

    private static int Nesting(string expression)
    {
        int depth = 0, max = 0;
        foreach (var c in expression)
        {
            depth += c == '(' ? 1 : c == ')' ? -1 : 0;
            max = Math.Max(max, depth);
        }

        return max;
    }
}
