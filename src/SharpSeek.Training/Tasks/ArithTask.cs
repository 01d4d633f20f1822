// The `arith` task of issue 17: the user message is exactly "What is EXPR?", where EXPR has 2-4 binary operators
// from + - * (at most two *), integer operands 0-99 in decimal, single spaces between tokens, optionally one
// parenthesised pair around a proper sub-sequence of at least two operands ("(53 - 42) + 29", "7 * (30 - 4)"),
// usual precedence (* before + and -, left to right), and every intermediate result within [-99999, 99999].
// The worked solution reduces the expression one operation at a time in the order a person would: the parentheses,
// then the products left to right, then sums and differences left to right; products of two numbers of two or
// more digits are done as long multiplication (one partial product per nonzero digit of the shorter factor).
using System.Globalization;
using System.Text;

namespace SharpSeek.Training.Tasks;

/// <summary>How an <c>arith</c> worked solution spells out its steps.</summary>
public enum ArithTrace
{
    /// <summary>One line per operation, sums and differences in one go ("82 - 59 = 23").</summary>
    Compact,

    /// <summary>Sums and differences digit by digit from the units, with carries and borrows ("82 - 59: 12-9=3, 8-5-1=2 gives 23").</summary>
    Columns,

    /// <summary>
    /// As <see cref="Columns"/>, but every step starts from its operands in the expression's order: a product whose
    /// one-digit factor comes first says the swap ("9 * 96 = 96 * 9; 96 * 9: 6*9=54, 9*9+5=86 gives 864") where
    /// <see cref="Columns"/> starts at "96 * 9" (which taught the model to write a step's second factor first).
    /// </summary>
    ColumnsOrdered,
}

/// <summary>Generator, evaluator and solver of <c>arith</c> problems.</summary>
public static class ArithTask
{
    /// <summary>Largest magnitude of any intermediate result.</summary>
    public const int Limit = 99999;

    /// <summary>Operands are drawn from 0..MaxOperand.</summary>
    public const int MaxOperand = 99;

    /// <summary>At most this many '*' in one expression.</summary>
    public const int MaxProducts = 2;

    /// <summary>A parsed expression: operands, the operators between them, and the optional parenthesised span.</summary>
    /// <param name="Operands">n+1 operands (0..99).</param>
    /// <param name="Operators">n operators, each '+', '-' or '*'.</param>
    /// <param name="ParenStart">Index of the first operand inside the parentheses, or -1.</param>
    /// <param name="ParenEnd">Index of the last operand inside the parentheses (inclusive), or -1.</param>
    public sealed record Expression(int[] Operands, char[] Operators, int ParenStart = -1, int ParenEnd = -1)
    {
        /// <summary>The expression text: single spaces between tokens, parentheses hugging their operands.</summary>
        public override string ToString()
        {
            var sb = new StringBuilder();
            for (int i = 0; i < Operands.Length; i++)
            {
                if (i > 0)
                    sb.Append(' ').Append(Operators[i - 1]).Append(' ');
                if (i == ParenStart)
                    sb.Append('(');
                sb.Append(Operands[i].ToString(CultureInfo.InvariantCulture));
                if (i == ParenEnd)
                    sb.Append(')');
            }
            return sb.ToString();
        }
    }

    /// <summary>The user message of a problem: "What is EXPR?".</summary>
    public static string Prompt(Expression e) => $"What is {e}?";

    /// <summary>
    /// Draws an expression with exactly <paramref name="operators"/> operators (2-4), redrawing until every
    /// intermediate result is within ±<see cref="Limit"/>.
    /// </summary>
    public static Expression Generate(Rng rng, int operators)
    {
        if (operators is < 2 or > 4)
            throw new ArgumentOutOfRangeException(nameof(operators), $"arith problems have 2-4 operators, got {operators}");
        while (true)
        {
            var ops = new char[operators];
            int products = 0;
            for (int i = 0; i < operators; i++)
            {
                char op = "+-*"[(int)(rng.NextUInt64() % 3)];
                if (op == '*' && products == MaxProducts)
                    op = rng.NextDouble() < 0.5 ? '+' : '-';
                if (op == '*')
                    products++;
                ops[i] = op;
            }
            var nums = new int[operators + 1];
            for (int i = 0; i < nums.Length; i++)
                nums[i] = (int)(rng.NextUInt64() % (MaxOperand + 1));
            int ps = -1, pe = -1;
            if (rng.NextDouble() < 0.5)
            {
                // a span of 2..n operands (never the whole expression)
                int len = 2 + (int)(rng.NextUInt64() % (ulong)(operators - 1));
                ps = (int)(rng.NextUInt64() % (ulong)(nums.Length - len + 1));
                pe = ps + len - 1;
            }
            var e = new Expression(nums, ops, ps, pe);
            if (TryEvaluate(e, out _))
                return e;
        }
    }

    /// <summary>Checks the grammar's limits: 2-4 operators, at most two '*', operands 0-99, a proper parenthesised span.</summary>
    public static bool IsWellFormed(Expression e)
    {
        int n = e.Operators.Length;
        if (n is < 2 or > 4 || e.Operands.Length != n + 1)
            return false;
        if (e.Operators.Any(o => o is not ('+' or '-' or '*')) || e.Operators.Count(o => o == '*') > MaxProducts)
            return false;
        if (e.Operands.Any(v => v is < 0 or > MaxOperand))
            return false;
        if (e.ParenStart == -1 && e.ParenEnd == -1)
            return true;
        return e.ParenStart >= 0 && e.ParenEnd > e.ParenStart && e.ParenEnd < e.Operands.Length && e.ParenEnd - e.ParenStart + 1 < e.Operands.Length;
    }

    /// <summary>Evaluates with the usual precedence; false when an intermediate result leaves ±<see cref="Limit"/>.</summary>
    public static bool TryEvaluate(Expression e, out long value)
    {
        value = 0;
        foreach (Step s in Steps(e))
        {
            if (Math.Abs(s.Result) > Limit)
                return false;
            value = s.Result;
        }
        return true;
    }

    /// <summary>The value of a well-formed expression whose intermediate results are in range.</summary>
    public static long Evaluate(Expression e) =>
        TryEvaluate(e, out long v) ? v : throw new ArgumentException($"'{e}' has an intermediate result beyond ±{Limit}");

    /// <summary>One reduction: <c>Left Op Right = Result</c>, and the expression text after it.</summary>
    public readonly record struct Step(long Left, char Op, long Right, long Result, string Rest);

    /// <summary>The reductions in solving order: inside the parentheses, then products, then sums, each left to right.</summary>
    public static IEnumerable<Step> Steps(Expression e)
    {
        // a flat list of terms; the parenthesised span is one group reduced first
        var vals = e.Operands.Select(v => (long)v).ToList();
        var ops = e.Operators.ToList();
        int ps = e.ParenStart, pe = e.ParenEnd;
        while (ops.Count > 0)
        {
            int lo = 0, hi = ops.Count - 1; // operator index range to reduce in
            bool inParen = ps >= 0;
            if (inParen)
            {
                lo = ps;
                hi = pe - 1;
            }
            int k = -1;
            for (int i = lo; i <= hi; i++)
            {
                if (ops[i] == '*')
                {
                    k = i;
                    break;
                }
            }
            if (k < 0)
                k = lo;
            long a = vals[k], b = vals[k + 1];
            char op = ops[k];
            long r = op switch { '+' => a + b, '-' => a - b, _ => a * b };
            vals[k] = r;
            vals.RemoveAt(k + 1);
            ops.RemoveAt(k);
            if (inParen)
            {
                pe--;
                if (pe == ps)
                    ps = pe = -1; // the group is one number now: the parentheses go
            }
            yield return new Step(a, op, b, r, Render(vals, ops, ps, pe));
        }
    }

    private static string Render(List<long> vals, List<char> ops, int ps, int pe)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < vals.Count; i++)
        {
            if (i > 0)
                sb.Append(' ').Append(ops[i - 1]).Append(' ');
            if (i == ps)
                sb.Append('(');
            sb.Append(vals[i].ToString(CultureInfo.InvariantCulture));
            if (i == pe)
                sb.Append(')');
        }
        return sb.ToString();
    }

    /// <summary>
    /// The worked reply in the R1 format: <c>&lt;think&gt;\n</c>, one line per step (long multiplication spelled
    /// out), <c>\n&lt;/think&gt;\n\n</c>, then <c>EXPR = \boxed{N}</c>. The caller appends EOS.
    /// </summary>
    public static string Solution(Expression e, ArithTrace trace = ArithTrace.Compact)
    {
        var sb = new StringBuilder("<think>\n");
        long value = 0;
        foreach (Step s in Steps(e))
        {
            sb.Append(trace == ArithTrace.Compact ? StepText(s.Left, s.Op, s.Right, s.Result)
                : ColumnStepText(s.Left, s.Op, s.Right, s.Result, ordered: trace == ArithTrace.ColumnsOrdered));
            if (s.Rest.Contains(' ', StringComparison.Ordinal))
                sb.Append(", so ").Append(s.Rest);
            sb.Append('\n');
            value = s.Result;
        }
        sb.Append("</think>\n\n").Append(e).Append(" = \\boxed{").Append(value.ToString(CultureInfo.InvariantCulture)).Append('}');
        return sb.ToString();
    }

    // "a op b = r"; a product of two numbers with two or more digits each goes through its partial products, one per
    // nonzero digit of the smaller factor: "47 * 26 = 47 * 20 + 47 * 6 = 940 + 282 = 1222"; with a negative factor the
    // product of the magnitudes comes first: "-47 * 26 = -(47 * 26); 47 * 26 = ... = 1222; so -1222".
    internal static string StepText(long a, char op, long b, long r)
    {
        var inv = CultureInfo.InvariantCulture;
        string head = $"{a.ToString(inv)} {op} {b.ToString(inv)} = ";
        if (op != '*' || Math.Abs(a) < 10 || Math.Abs(b) < 10)
            return head + r.ToString(inv);
        long x = Math.Abs(a), y = Math.Abs(b);
        long big = Math.Max(x, y), small = Math.Min(x, y);
        List<long> parts = [.. PartialFactors(small).Select(p => p.Digit * p.Place)];
        string product = parts.Count == 1 ? (x * y).ToString(inv)
            : string.Join(" + ", parts.Select(p => $"{big.ToString(inv)} * {p.ToString(inv)}")) + " = "
              + string.Join(" + ", parts.Select(p => (big * p).ToString(inv))) + " = " + (x * y).ToString(inv);
        if ((a < 0) == (b < 0))
            return head + product;
        return $"{head}-({x.ToString(inv)} * {y.ToString(inv)}); {x.ToString(inv)} * {y.ToString(inv)} = {product}; so {r.ToString(inv)}";
    }

    // The columns trace: every sum or difference with a number of two or more digits is worked digit by digit from the
    // units, with its carries and borrows ("2592 + 89: 2+9=11, 9+8+1=18, 5+1=6, 2 gives 2681"; "82 - 59: 12-9=3,
    // 8-5-1=2 gives 23"), signs first reduced to magnitudes ("14 - 35 = -(35 - 14); 35 - 14: 5-4=1, 3-1=2 gives 21;
    // so -21"); products through one-digit partial products in columns (ColumnProduct; ordered: see ArithTrace).
    internal static string ColumnStepText(long a, char op, long b, long r, bool ordered = false)
    {
        var inv = CultureInfo.InvariantCulture;
        string head = $"{a.ToString(inv)} {op} {b.ToString(inv)} = ";
        if (op == '*')
        {
            long x = Math.Abs(a), y = Math.Abs(b);
            string magnitude = ColumnProduct(x, y, ordered);
            if ((a < 0) == (b < 0))
                return a < 0 ? $"{head}{x.ToString(inv)} * {y.ToString(inv)}; {magnitude}" : magnitude;
            return $"{head}-({x.ToString(inv)} * {y.ToString(inv)}); {magnitude}; so {r.ToString(inv)}";
        }
        // a op b = sign * (p op2 q) with p, q >= 0 and p >= q for a difference
        long right = op == '+' ? b : -b;
        long p, q;
        char op2;
        bool negative;
        if ((a >= 0) == (right >= 0))
        {
            (p, q, op2, negative) = (Math.Abs(a), Math.Abs(right), '+', a < 0);
        }
        else
        {
            long pos = Math.Max(a, right), neg = -Math.Min(a, right);
            (p, q, op2, negative) = pos >= neg ? (pos, neg, '-', false) : (neg, pos, '-', true);
        }
        bool plain = !negative && a == p && b == q && op == op2;
        string inner = p < 10 && q < 10
            ? $"{p.ToString(inv)} {op2} {q.ToString(inv)} = {(op2 == '+' ? p + q : p - q).ToString(inv)}"
            : Columns(p, op2, q);
        if (plain)
            return inner;
        string rewritten = negative ? $"-({p.ToString(inv)} {op2} {q.ToString(inv)})" : $"{p.ToString(inv)} {op2} {q.ToString(inv)}";
        return $"{head}{rewritten}; {inner}; so {r.ToString(inv)}";
    }

    // x * y of magnitudes: a table fact when both have one digit ("7 * 8 = 56"); a one-digit factor d >= 2 times a longer
    // number in columns from the units, with carries ("86 * 7: 6*7=42, 8*7+4=60 gives 602"); otherwise one partial
    // product per nonzero digit of the smaller factor, each in columns, then their sum in columns ("86 * 27 = 86 * 20 +
    // 86 * 7; 86 * 2: 6*2=12, 8*2+1=17 gives 172; 86 * 7: ... gives 602; 1720 + 602: ... gives 2322"). Ends with the
    // product's value. Ordered: a one-digit x times a longer y first says the swap ("9 * 96 = 96 * 9; 96 * 9: ...").
    internal static string ColumnProduct(long x, long y, bool ordered = false)
    {
        var inv = CultureInfo.InvariantCulture;
        long big = Math.Max(x, y), small = Math.Min(x, y);
        string head = $"{x.ToString(inv)} * {y.ToString(inv)}";
        if (big < 10 || small <= 1)
            return $"{head} = {(x * y).ToString(inv)}";
        if (small < 10)
        {
            string columns = DigitProduct(big, (int)small);
            return ordered && x < y ? $"{head} = {big.ToString(inv)} * {small.ToString(inv)}; {columns}" : columns;
        }
        List<(int Digit, long Place)> parts = PartialFactors(small);
        var sb = new StringBuilder(head);
        if (parts.Count == 1)
        {
            (int d, long place) = parts[0];
            sb.Append(" = ").Append(big.ToString(inv)).Append(" * ").Append(d).Append(" * ").Append(place.ToString(inv));
            if (d > 1)
                sb.Append("; ").Append(DigitProduct(big, d));
            return sb.Append("; so ").Append((x * y).ToString(inv)).ToString();
        }
        sb.Append(" = ").Append(string.Join(" + ", parts.Select(p => $"{big.ToString(inv)} * {(p.Digit * p.Place).ToString(inv)}")));
        foreach ((int d, _) in parts)
        {
            if (d > 1)
                sb.Append("; ").Append(DigitProduct(big, d));
        }
        long sum = big * parts[0].Digit * parts[0].Place;
        for (int i = 1; i < parts.Count; i++)
        {
            long next = big * parts[i].Digit * parts[i].Place;
            sb.Append("; ").Append(Columns(sum, '+', next));
            sum += next;
        }
        return sb.ToString();
    }

    // the nonzero digits of a long multiplication's smaller factor with their places, most significant first
    // (47 * 206: (2, 100), (6, 1)), one partial product each
    private static List<(int Digit, long Place)> PartialFactors(long small)
    {
        var parts = new List<(int Digit, long Place)>();
        for (long place = 1; place <= small; place *= 10)
        {
            int digit = (int)(small / place % 10);
            if (digit != 0)
                parts.Insert(0, (digit, place));
        }
        return parts;
    }

    // "big * d: columns gives product" for a one-digit d >= 2
    private static string DigitProduct(long big, int d)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(big.ToString(inv)).Append(" * ").Append(d).Append(": ");
        int carry = 0;
        for (long place = 1; place <= big; place *= 10)
        {
            if (place > 1)
                sb.Append(", ");
            int digit = (int)(big / place % 10);
            int v = digit * d + carry;
            sb.Append(digit).Append('*').Append(d);
            if (carry != 0)
                sb.Append('+').Append(carry);
            sb.Append('=').Append(v);
            carry = v / 10;
        }
        return sb.Append(" gives ").Append((big * d).ToString(inv)).ToString();
    }

    // "p op q: columns gives result" for magnitudes (p >= q for '-'), at least one of them with two digits or more
    internal static string Columns(long p, char op, long q)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(p.ToString(inv)).Append(' ').Append(op).Append(' ').Append(q.ToString(inv)).Append(": ");
        int carry = 0;
        for (long place = 1; place <= p || place <= q; place *= 10)
        {
            if (place > 1)
                sb.Append(", ");
            int dp = (int)(p / place % 10);
            bool hasQ = place <= q;
            int dq = (int)(q / place % 10);
            if (op == '+')
            {
                // the digits this place has (a shorter number has none), then the carry
                bool hasP = place <= p;
                var terms = new List<int>(3);
                if (hasP)
                    terms.Add(dp);
                if (hasQ)
                    terms.Add(dq);
                if (carry != 0)
                    terms.Add(1);
                int sum = terms.Sum();
                sb.Append(string.Join('+', terms));
                if (terms.Count > 1)
                    sb.Append('=').Append(sum);
                carry = sum / 10;
            }
            else
            {
                if (!hasQ && carry == 0)
                {
                    sb.Append(dp);
                    continue;
                }
                int d = dp - (hasQ ? dq : 0) - carry;
                int borrow = d < 0 ? 1 : 0;
                if (borrow != 0)
                    sb.Append('1');
                sb.Append(dp);
                if (hasQ)
                    sb.Append('-').Append(dq);
                if (carry != 0)
                    sb.Append("-1");
                sb.Append('=').Append(d + 10 * borrow);
                carry = borrow;
            }
        }
        long result = op == '+' ? p + q : p - q;
        sb.Append(" gives ").Append(result.ToString(inv));
        return sb.ToString();
    }

    /// <summary>
    /// Parses "What is EXPR?" (or EXPR alone) back into an expression, strictly: single spaces, operands 0-99 without
    /// leading zeros, at most one parenthesised pair. Returns null when the text is not in the grammar.
    /// </summary>
    public static Expression? Parse(string text)
    {
        if (text.StartsWith("What is ", StringComparison.Ordinal) && text.EndsWith('?'))
            text = text[8..^1];
        string[] tokens = text.Split(' ');
        if (tokens.Length < 5 || tokens.Length % 2 == 0)
            return null;
        var nums = new List<int>();
        var ops = new List<char>();
        int ps = -1, pe = -1;
        for (int i = 0; i < tokens.Length; i++)
        {
            string t = tokens[i];
            if (i % 2 == 1)
            {
                if (t is not ("+" or "-" or "*"))
                    return null;
                ops.Add(t[0]);
                continue;
            }
            int index = nums.Count;
            if (t.StartsWith('('))
            {
                if (ps >= 0)
                    return null;
                ps = index;
                t = t[1..];
            }
            if (t.EndsWith(')'))
            {
                if (ps < 0 || pe >= 0)
                    return null;
                pe = index;
                t = t[..^1];
            }
            if (t.Length is 0 or > 2 || !t.All(char.IsAsciiDigit) || (t.Length == 2 && t[0] == '0'))
                return null;
            nums.Add(int.Parse(t, CultureInfo.InvariantCulture));
        }
        if ((ps >= 0) != (pe >= 0))
            return null;
        var e = new Expression(nums.ToArray(), ops.ToArray(), ps, pe);
        return IsWellFormed(e) ? e : null;
    }
}
