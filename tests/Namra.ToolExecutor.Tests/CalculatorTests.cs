using Namra.ToolExecutor.Tools;

namespace Namra.ToolExecutor.Tests;

public sealed class CalculatorTests
{
    [Theory]
    [InlineData("(17 + 25) * 2", "84")]
    [InlineData("2 + 3 * 4", "14")]
    [InlineData("2 - 3 - 4", "-5")]
    [InlineData("100 / 10 / 5", "2")]
    [InlineData("-2 * 3", "-6")]
    [InlineData("2 * -3", "-6")]
    [InlineData("-(2 + 3) * +4", "-20")]
    [InlineData("sqrt(16) + pow(2, 10)", "1028")]
    [InlineData("SQRT(2) * Sqrt(2)", "2.0000000000000004")]
    [InlineData("10 % 3", "1")]
    [InlineData("-7 % 3", "-1")]
    [InlineData("round(pi, 4)", "3.1416")]
    [InlineData("round(2.5)", "3")]
    [InlineData("max(3, 7) - min(3, 7)", "4")]
    [InlineData("max(1, 2.5, -4)", "2.5")]
    [InlineData("1.5 * 4", "6")]
    [InlineData("0.1 + 0.2", "0.3")]
    [InlineData("1 / 3", "0.3333333333333333333333333333")]
    [InlineData("1.10 + 2.20", "3.3")]
    [InlineData("9223372036854775807 + 1", "9223372036854775808")]
    [InlineData("99999999999999999999999999999999", "1E+32")]
    [InlineData("pow(2, 90)", "1237940039285380274899124224")]
    [InlineData("pow(2, 100)", "1.2676506002282294E+30")]
    [InlineData("pow(2, -2)", "0.25")]
    [InlineData("pow(2, 0.5)", "1.4142135623730951")]
    [InlineData("pow(1e-20, -2)", "1.0000000000000002E+40")] // the exact square underflows decimal: a double follows
    [InlineData("1e-30 * 1e-30", "1.0000000000000001E-60")]
    [InlineData("1e300 * 10", "1E+301")]
    [InlineData("pi * 0", "0")]
    [InlineData("log(1000)", "3")]
    [InlineData("log(8, 2)", "3")]
    [InlineData("ln(e)", "1")]
    [InlineData(".5 + 1.", "1.5")]
    public void Evaluate_ComputesArithmetic(string expression, string expected)
    {
        var outcome = CalculatorTool.Evaluate(expression);

        Assert.False(outcome.IsError, outcome.Content);
        Assert.Equal(expected, outcome.Content);
    }

    [Theory]
    [InlineData("1 / 0", "Division by zero.")]
    [InlineData("0 / 0", "Division by zero.")]
    [InlineData("10 / (5 - 5)", "Division by zero.")]
    [InlineData("5 % 0", "Division by zero.")]
    [InlineData("pow(0, -1)", "Division by zero")]
    [InlineData("pow(pow(pow(9, 9), 9), 9)", "too large to represent")]
    [InlineData("1e400", "The number `1e400` at column 1 is too large")]
    [InlineData("1e-400", "too small")]
    [InlineData("1e-300 * 1e-300", "too small")]
    [InlineData("sqrt(-1)", "sqrt(-1): the square root of a negative number is not a real number.")]
    [InlineData("ln(0)", "positive numbers only")]
    [InlineData("pow(-8, 0.5)", "not a real number")]
    [InlineData("2 ^ 10", "pow(a, b)")]
    [InlineData("x + 1", "Unknown name `x` at column 1")]
    [InlineData("sqrt + 1", "is a function")]
    [InlineData("system(\"rm -rf /\")", "Unknown function `system`")]
    [InlineData("2 +", "ends where a number is expected (column 4)")]
    [InlineData("(1 + 2", "parenthesis at column 1 is never closed")]
    [InlineData("1 + 2)", "`)` at column 6 has no opening parenthesis")]
    [InlineData("pow(2)", "pow takes 2 arguments, not 1")]
    [InlineData("sqrt()", "sqrt() at column 1 needs arguments")]
    [InlineData("(1, 2)", "comma at column 3 outside a function")]
    [InlineData("1.2.3", "is not a number")]
    [InlineData("2 3", "Expected an operator at column 3")]
    [InlineData("1 + \0", "found U+0000")]
    [InlineData("   ", "empty")]
    public void Evaluate_WhenTheExpressionCannotBeComputed_SaysWhy(string expression, string says)
    {
        var outcome = CalculatorTool.Evaluate(expression);

        Assert.True(outcome.IsError, outcome.Content);
        Assert.Contains(says, outcome.Content, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_BoundsLengthAndNesting()
    {
        Assert.Contains("the limit is 1000", CalculatorTool.Evaluate(string.Join("+", Enumerable.Repeat("1", 600))).Content, StringComparison.Ordinal);
        Assert.Contains("deeper than 64", CalculatorTool.Evaluate(new string('(', 100) + "1" + new string(')', 100)).Content, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    [InlineData(2)]
    public void Evaluate_KeepsAFlatStack_OnHundredsOfThousandsOfOperators(int form)
    {
        // Long operator chains recursed in the evaluator used before and overflowed the stack, which ends the process.
        var (expression, expected) = form switch
        {
            -1 => (new string('-', 500_000) + "1", "1"),
            1 => (string.Join("+", Enumerable.Repeat("1", 300_000)), "300000"),
            _ => (string.Concat(Enumerable.Repeat("-(-1)", 200_000)), "200000"),
        };

        var outcome = CalculatorTool.Evaluate(expression, maxLength: 2_000_000);

        Assert.False(outcome.IsError, outcome.Content);
        Assert.Equal(expected, outcome.Content);
    }
}
