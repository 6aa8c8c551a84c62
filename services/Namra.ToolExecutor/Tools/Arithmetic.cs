using System.Globalization;

namespace Namra.ToolExecutor.Tools;

/// <summary>
/// The calculator's evaluator: numbers, <c>+ - * / %</c>, unary signs, parentheses, functions and the constants
/// <c>pi</c> and <c>e</c>. Parsed by shunting-yard into postfix and evaluated with an explicit stack, so no input,
/// however long its chain of operators, can recurse (a stack overflow ends the process; it cannot be caught).
/// Arithmetic is decimal, exact to 28 significant digits, while every operand is exact; functions that are
/// irrational in general (sqrt, sin, log...) and results beyond decimal's range are IEEE doubles.
/// </summary>
internal static class Arithmetic
{
    /// <summary>The result as the calculator prints it, or why there is none.</summary>
    public static (string? Value, string? Error) Evaluate(string expression, int maxNesting)
    {
        try
        {
            var program = Parser.Parse(expression, maxNesting);
            return (Format(Run(program)), null);
        }
        catch (ArithmeticProblem problem)
        {
            return (null, problem.Message);
        }
    }

    private static Number Run(List<Step> program)
    {
        var stack = new Stack<Number>();
        var arguments = new List<Number>();
        foreach (var step in program)
        {
            switch (step.Kind)
            {
                case StepKind.Push:
                    stack.Push(step.Value);
                    break;
                case StepKind.Negate:
                    stack.Push(stack.Pop().Negate());
                    break;
                case StepKind.Binary:
                    var right = stack.Pop();
                    stack.Push(Binary(step.Operator, stack.Pop(), right));
                    break;
                case StepKind.Call:
                    arguments.Clear();
                    for (var i = 0; i < step.Arity; i++)
                    {
                        arguments.Add(stack.Pop());
                    }

                    arguments.Reverse();
                    stack.Push(Functions.Call(step.Name!, arguments));
                    break;
            }
        }

        return stack.Pop();
    }

    private static Number Binary(char op, Number left, Number right)
    {
        if (op is '/' or '%' && right.IsZero)
        {
            throw new ArithmeticProblem("Division by zero.");
        }

        if (left.Exact is { } a && right.Exact is { } b)
        {
            try
            {
                decimal? exact = op switch
                {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    '/' => a / b,
                    _ => a % b,
                };

                // decimal keeps at most 28 digits after the point, so a tiny product or quotient loses its digits (or
                // all of them): that is a double's job.
                if (op is '+' or '-' or '%' || a == 0 || Math.Abs(exact.Value) >= TinyForDecimal)
                {
                    return new Number(exact.Value);
                }
            }
            catch (OverflowException)
            {
                // beyond decimal's range (about 7.9e28): a double follows
            }
        }

        double x = left.Approximate, y = right.Approximate;
        var result = op switch
        {
            '+' => x + y,
            '-' => x - y,
            '*' => x * y,
            '/' => x / y,
            _ => x % y,
        };
        return result == 0 && op is '*' or '/' && x != 0 && y != 0
            ? throw new ArithmeticProblem("The result is too small to represent (below about 5e-324).")
            : Number.Checked(result);
    }

    private const decimal TinyForDecimal = 1e-20m;

    private static string Format(Number number) =>
        number.Exact is { } exact
            ? (exact / 1.0000000000000000000000000000m).ToString(CultureInfo.InvariantCulture) // no trailing zeros
            : number.Approximate.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A number kept exact (decimal) while it can be, else a double.</summary>
    internal readonly record struct Number(decimal? Exact, double Approximate)
    {
        public Number(decimal exact)
            : this(exact, (double)exact)
        {
        }

        public bool IsZero => Exact is { } exact ? exact == 0 : Approximate == 0;

        public Number Negate() => Exact is { } exact ? new Number(-exact) : new Number(null, -Approximate);

        public static Number Checked(double value) =>
            double.IsNaN(value) ? throw new ArithmeticProblem("The result is not a number.")
            : double.IsInfinity(value) ? throw new ArithmeticProblem("The result is too large to represent (beyond about ±1.8e308).")
            : new Number(null, value);
    }

    private enum StepKind { Push, Negate, Binary, Call }

    private readonly record struct Step(StepKind Kind, Number Value = default, char Operator = '\0', string? Name = null, int Arity = 0);

    /// <summary>Why an expression has no value; the message is for the model.</summary>
    private sealed class ArithmeticProblem(string message) : Exception(message);

    private static class Functions
    {
        private static readonly Dictionary<string, (int Min, int Max)> Arities = new(StringComparer.OrdinalIgnoreCase)
        {
            ["abs"] = (1, 1), ["sqrt"] = (1, 1), ["cbrt"] = (1, 1), ["pow"] = (2, 2), ["exp"] = (1, 1), ["ln"] = (1, 1),
            ["log"] = (1, 2), ["log10"] = (1, 1), ["log2"] = (1, 1), ["sin"] = (1, 1), ["cos"] = (1, 1), ["tan"] = (1, 1),
            ["asin"] = (1, 1), ["acos"] = (1, 1), ["atan"] = (1, 1), ["atan2"] = (2, 2), ["round"] = (1, 2), ["floor"] = (1, 1),
            ["ceiling"] = (1, 1), ["ceil"] = (1, 1), ["truncate"] = (1, 1), ["sign"] = (1, 1), ["min"] = (1, 64), ["max"] = (1, 64),
        };

        public static string Names => string.Join(", ", Arities.Keys);

        public static bool Exists(string name) => Arities.ContainsKey(name);

        public static string? ArityProblem(string name, int count)
        {
            var (min, max) = Arities[name];
            return count >= min && count <= max ? null
                : min == max ? $"{name} takes {min} argument{(min == 1 ? "" : "s")}, not {count}."
                : $"{name} takes {min} to {max} arguments, not {count}.";
        }

        public static Number Call(string name, List<Number> a)
        {
            double X(int i) => a[i].Approximate;
            switch (name.ToLowerInvariant())
            {
                case "abs":
                    return a[0].Exact is { } e ? new Number(Math.Abs(e)) : Number.Checked(Math.Abs(X(0)));
                case "sign":
                    return new Number(a[0].Exact is { } s ? Math.Sign(s) : Math.Sign(X(0)));
                case "min":
                    return a.Aggregate((m, n) => Compare(n, m) < 0 ? n : m);
                case "max":
                    return a.Aggregate((m, n) => Compare(n, m) > 0 ? n : m);
                case "floor":
                    return a[0].Exact is { } f ? new Number(Math.Floor(f)) : Number.Checked(Math.Floor(X(0)));
                case "ceiling" or "ceil":
                    return a[0].Exact is { } c ? new Number(Math.Ceiling(c)) : Number.Checked(Math.Ceiling(X(0)));
                case "truncate":
                    return a[0].Exact is { } t ? new Number(Math.Truncate(t)) : Number.Checked(Math.Truncate(X(0)));
                case "round":
                    var digits = a.Count > 1 ? a[1] : new Number(0m);
                    if (digits.Exact is not { } d || d != Math.Truncate(d) || d < 0 || d > 15)
                    {
                        throw new ArithmeticProblem("round's second argument is a whole number of digits from 0 to 15.");
                    }

                    // Halves away from zero, as people round (round(2.5) is 3).
                    return a[0].Exact is { } r ? new Number(Math.Round(r, (int)d, MidpointRounding.AwayFromZero))
                        : Number.Checked(Math.Round(X(0), (int)d, MidpointRounding.AwayFromZero));
                case "pow":
                    return Power(a[0], a[1]);
                case "sqrt":
                    return X(0) < 0 ? throw new ArithmeticProblem($"sqrt({Format(a[0])}): the square root of a negative number is not a real number.")
                        : ExactIfWhole(Math.Sqrt(X(0)), a[0]);
                case "cbrt":
                    return Number.Checked(Math.Cbrt(X(0)));
                case "exp":
                    return Number.Checked(Math.Exp(X(0)));
                case "ln":
                    return Number.Checked(Math.Log(Positive(name, a[0])));
                case "log":
                    return a.Count == 1 ? Number.Checked(Math.Log10(Positive(name, a[0])))
                        : Number.Checked(Math.Log(Positive(name, a[0]), Positive("log's base", a[1])));
                case "log10":
                    return Number.Checked(Math.Log10(Positive(name, a[0])));
                case "log2":
                    return Number.Checked(Math.Log2(Positive(name, a[0])));
                case "sin":
                    return Number.Checked(Math.Sin(X(0)));
                case "cos":
                    return Number.Checked(Math.Cos(X(0)));
                case "tan":
                    return Number.Checked(Math.Tan(X(0)));
                case "asin":
                    return Number.Checked(Math.Asin(InUnitRange(name, a[0])));
                case "acos":
                    return Number.Checked(Math.Acos(InUnitRange(name, a[0])));
                case "atan":
                    return Number.Checked(Math.Atan(X(0)));
                default:
                    return Number.Checked(Math.Atan2(X(0), X(1)));
            }
        }

        private static Number Power(Number x, Number y)
        {
            if (x.IsZero && y.Approximate < 0)
            {
                throw new ArithmeticProblem("Division by zero (zero to a negative power).");
            }

            // A whole exponent of an exact base is computed exactly, by squaring.
            if (x.Exact is { } b && y.Exact is { } n && n == Math.Truncate(n) && Math.Abs(n) <= 1024)
            {
                try
                {
                    decimal result = 1, square = b;
                    for (var k = (long)Math.Abs(n); k > 0; k >>= 1)
                    {
                        if ((k & 1) == 1)
                        {
                            result *= square;
                        }

                        if (k > 1)
                        {
                            square *= square;
                        }
                    }

                    result = n < 0 ? 1 / result : result;
                    if (result != 0)
                    {
                        return new Number(result);
                    }
                }
                catch (Exception exception) when (exception is OverflowException or DivideByZeroException)
                {
                    // beyond decimal: a double follows
                }
            }

            if (x.Approximate < 0 && y.Approximate != Math.Truncate(y.Approximate))
            {
                throw new ArithmeticProblem($"pow({Format(x)}, {Format(y)}): a negative number to a fractional power is not a real number.");
            }

            return Number.Checked(Math.Pow(x.Approximate, y.Approximate));
        }

        private static int Compare(Number x, Number y) =>
            x.Exact is { } a && y.Exact is { } b ? a.CompareTo(b) : x.Approximate.CompareTo(y.Approximate);

        private static Number ExactIfWhole(double root, Number of) =>
            of.Exact is not null && root == Math.Truncate(root) && root < 1e14 ? new Number((decimal)root) : Number.Checked(root);

        private static double Positive(string name, Number x) =>
            x.Approximate > 0 ? x.Approximate : throw new ArithmeticProblem($"{name}({Format(x)}): the logarithm is defined for positive numbers only.");

        private static double InUnitRange(string name, Number x) =>
            x.Approximate is >= -1 and <= 1 ? x.Approximate : throw new ArithmeticProblem($"{name}({Format(x)}): defined from -1 to 1 only.");
    }

    /// <summary>Shunting-yard: infix to postfix in one pass over the characters, every problem placed by column.</summary>
    private static class Parser
    {
        private readonly record struct Pending(char Operator, string? Function, int Column, bool Unary);

        public static List<Step> Parse(string text, int maxNesting)
        {
            var output = new List<Step>();
            var operators = new Stack<Pending>();
            var argumentCounts = new Stack<int>();
            var expectOperand = true;
            var depth = 0;
            var i = 0;
            while (true)
            {
                while (i < text.Length && char.IsWhiteSpace(text[i]))
                {
                    i++;
                }

                if (i >= text.Length)
                {
                    break;
                }

                var column = i + 1;
                var c = text[i];
                if (expectOperand)
                {
                    if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < text.Length && char.IsAsciiDigit(text[i + 1])))
                    {
                        output.Add(new Step(StepKind.Push, ReadNumber(text, ref i)));
                        expectOperand = false;
                    }
                    else if (char.IsAsciiLetter(c) || c == '_')
                    {
                        var start = i;
                        while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_'))
                        {
                            i++;
                        }

                        var name = text[start..i];
                        var next = i;
                        while (next < text.Length && char.IsWhiteSpace(text[next]))
                        {
                            next++;
                        }

                        if (next < text.Length && text[next] == '(')
                        {
                            if (!Functions.Exists(name))
                            {
                                throw new ArithmeticProblem($"Unknown function `{name}` at column {column}; known functions: {Functions.Names}.");
                            }

                            Nest(ref depth, maxNesting);
                            operators.Push(new Pending('(', name, column, false));
                            argumentCounts.Push(0);
                            i = next + 1;
                            continue; // still expecting an operand (or ')' for no arguments, refused below)
                        }

                        output.Add(new Step(StepKind.Push, name.ToLowerInvariant() switch
                        {
                            "pi" => Number.Checked(Math.PI),
                            "e" => Number.Checked(Math.E),
                            _ => throw new ArithmeticProblem(Functions.Exists(name)
                                ? $"`{name}` at column {column} is a function: write {name}(...)."
                                : $"Unknown name `{name}` at column {column}; the known constants are pi and e."),
                        }));
                        expectOperand = false;
                    }
                    else if (c == '(')
                    {
                        Nest(ref depth, maxNesting);
                        operators.Push(new Pending('(', null, column, false));
                        argumentCounts.Push(0);
                        i++;
                    }
                    else if (c is '-' or '+')
                    {
                        // A prefix sign binds tighter than any binary operator and needs nothing popped.
                        operators.Push(new Pending(c, null, column, true));
                        i++;
                    }
                    else
                    {
                        throw new ArithmeticProblem(c == ')' && operators.TryPeek(out var open) && open.Operator == '(' && open.Function is { } f
                            ? $"{f}() at column {open.Column} needs arguments."
                            : $"Expected a number at column {column}, found {Describe(c)}.");
                    }

                    continue;
                }

                switch (c)
                {
                    case '+' or '-' or '*' or '/' or '%':
                        var precedence = Precedence(c);
                        while (operators.TryPeek(out var top) && top.Operator != '(' && (top.Unary || Precedence(top.Operator) >= precedence))
                        {
                            Emit(output, operators.Pop());
                        }

                        operators.Push(new Pending(c, null, column, false));
                        expectOperand = true;
                        break;
                    case ',':
                        PopToOpen(output, operators, column, ",");
                        if (operators.Peek().Function is null)
                        {
                            throw new ArithmeticProblem($"A comma at column {column} outside a function's arguments.");
                        }

                        argumentCounts.Push(argumentCounts.Pop() + 1);
                        expectOperand = true;
                        break;
                    case ')':
                        PopToOpen(output, operators, column, ")");
                        var opened = operators.Pop();
                        var count = argumentCounts.Pop() + 1;
                        depth--;
                        if (opened.Function is { } function)
                        {
                            if (Functions.ArityProblem(function, count) is { } problem)
                            {
                                throw new ArithmeticProblem(problem);
                            }

                            output.Add(new Step(StepKind.Call, Name: function, Arity: count));
                        }

                        break;
                    case '^':
                        throw new ArithmeticProblem("`^` is not a power operator here; write pow(a, b), such as pow(2, 10).");
                    default:
                        throw new ArithmeticProblem($"Expected an operator at column {column}, found {Describe(c)}.");
                }

                i++;
            }

            if (expectOperand)
            {
                throw new ArithmeticProblem(output.Count == 0 && operators.Count == 0
                    ? "The expression is empty."
                    : $"The expression ends where a number is expected (column {text.Length + 1}).");
            }

            while (operators.TryPop(out var pending))
            {
                if (pending.Operator == '(')
                {
                    throw new ArithmeticProblem($"The parenthesis at column {pending.Column} is never closed.");
                }

                Emit(output, pending);
            }

            return output;
        }

        private static void Nest(ref int depth, int maxNesting)
        {
            if (++depth > maxNesting)
            {
                throw new ArithmeticProblem($"The expression nests parentheses deeper than {maxNesting} levels.");
            }
        }

        private static void PopToOpen(List<Step> output, Stack<Pending> operators, int column, string what)
        {
            while (operators.TryPeek(out var top) && top.Operator != '(')
            {
                Emit(output, operators.Pop());
            }

            if (operators.Count == 0)
            {
                throw new ArithmeticProblem($"The `{what}` at column {column} has no opening parenthesis.");
            }
        }

        private static void Emit(List<Step> output, Pending pending)
        {
            if (!pending.Unary)
            {
                output.Add(new Step(StepKind.Binary, Operator: pending.Operator));
            }
            else if (pending.Operator == '-')
            {
                output.Add(new Step(StepKind.Negate));
            }

            // a prefix + changes nothing
        }

        private static int Precedence(char op) => op is '*' or '/' or '%' ? 2 : 1;

        private static string Describe(char c) => char.IsControl(c) || char.IsWhiteSpace(c) ? $"U+{(int)c:X4}" : $"`{c}`";

        private static Number ReadNumber(string text, ref int i)
        {
            var start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (i < text.Length && text[i] is 'e' or 'E' && i + 1 < text.Length
                && (char.IsAsciiDigit(text[i + 1]) || (text[i + 1] is '+' or '-' && i + 2 < text.Length && char.IsAsciiDigit(text[i + 2]))))
            {
                i += 2;
                while (i < text.Length && char.IsAsciiDigit(text[i]))
                {
                    i++;
                }
            }

            var literal = text[start..i];
            if (literal.Count(ch => ch == '.') > 1)
            {
                throw new ArithmeticProblem($"`{literal}` at column {start + 1} is not a number.");
            }

            if (decimal.TryParse(literal, NumberStyles.Float, CultureInfo.InvariantCulture, out var exact)
                && (Math.Abs(exact) >= TinyForDecimal || IsZeroLiteral(literal)))
            {
                return new Number(exact);
            }

            var approximate = double.Parse(literal, NumberStyles.Float, CultureInfo.InvariantCulture);
            return double.IsInfinity(approximate)
                ? throw new ArithmeticProblem($"The number `{literal}` at column {start + 1} is too large (beyond about 1.8e308).")
                : approximate == 0 && !IsZeroLiteral(literal)
                    ? throw new ArithmeticProblem($"The number `{literal}` at column {start + 1} is too small to represent (below about 5e-324).")
                    : new Number(null, approximate);
        }

        private static bool IsZeroLiteral(string literal)
        {
            var mantissa = literal.Split('e', 'E')[0];
            return !mantissa.Any(ch => ch is >= '1' and <= '9');
        }
    }
}
