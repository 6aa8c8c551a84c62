using Namra.ToolExecutor.Tools;

namespace Namra.ToolExecutor.Tests;

public sealed class CalculatorTests
{
    [Theory]
    [InlineData("(17 + 25) * 2", "84")]
    [InlineData("2 + 3 * 4", "14")]
    [InlineData("sqrt(16) + pow(2, 10)", "1028")]
    [InlineData("SQRT(2) * Sqrt(2)", "2.0000000000000004")]
    [InlineData("10 % 3", "1")]
    [InlineData("round(pi, 4)", "3.1416")]
    [InlineData("max(3, 7) - min(3, 7)", "4")]
    [InlineData("1.5 * 4", "6")]
    public void Evaluate_ComputesArithmetic(string expression, string expected)
    {
        var outcome = CalculatorTool.Evaluate(expression);

        Assert.False(outcome.IsError, outcome.Content);
        Assert.Equal(expected, outcome.Content);
    }

    [Theory]
    [InlineData("1 / 0", "Division by zero")]
    [InlineData("10 / (5 - 5)", "Division by zero")]
    [InlineData("pow(pow(pow(9, 9), 9), 9)", "too large")]
    [InlineData("9223372036854775807 + 1", "too large")]
    [InlineData("sqrt(-1)", "not a number")]
    [InlineData("2 ^ 10", "pow(a, b)")]
    [InlineData("x + 1", "Unknown name")]
    [InlineData("system(\"rm -rf /\")", "Unknown function")]
    [InlineData("2 +", "not valid")]
    public void Evaluate_WhenTheExpressionCannotBeComputed_SaysWhy(string expression, string says)
    {
        var outcome = CalculatorTool.Evaluate(expression);

        Assert.True(outcome.IsError);
        Assert.Contains(says, outcome.Content, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_BoundsLengthAndNesting()
    {
        Assert.Contains("the limit is 1000", CalculatorTool.Evaluate(string.Join("+", Enumerable.Repeat("1", 600))).Content, StringComparison.Ordinal);
        Assert.Contains("deeper than 64", CalculatorTool.Evaluate(new string('(', 100) + "1" + new string(')', 100)).Content, StringComparison.Ordinal);
    }
}
