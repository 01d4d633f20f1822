// The verifiable tasks: the arith grammar and its limits, precedence against an independent evaluator, worked
// solutions that the reward parser accepts, deterministic and deduplicated splits, word problems, task files with
// errors that name file, line and field; the answer parser on adversarial replies.
using System.Globalization;
using System.Numerics;
using SharpSeek.Training.Tasks;

namespace SharpSeek.Training.Tests;

public sealed class TaskTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sharpseek-tasks-" + Guid.NewGuid().ToString("N"));

    public TaskTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    // an independent evaluator: recursive descent over the text (expr := term (('+'|'-') term)*, term := factor ('*' factor)*,
    // factor := number | '(' expr ')'), recording every intermediate result
    private static long Reference(string text, List<long> intermediates)
    {
        int i = 0;
        string s = text.Replace(" ", "", StringComparison.Ordinal);
        long Expr()
        {
            long v = Term();
            while (i < s.Length && (s[i] == '+' || s[i] == '-'))
            {
                char op = s[i++];
                long r = Term();
                v = op == '+' ? v + r : v - r;
                intermediates.Add(v);
            }
            return v;
        }
        long Term()
        {
            long v = Factor();
            while (i < s.Length && s[i] == '*')
            {
                i++;
                v *= Factor();
                intermediates.Add(v);
            }
            return v;
        }
        long Factor()
        {
            if (s[i] == '(')
            {
                i++;
                long v = Expr();
                Assert.Equal(')', s[i++]);
                return v;
            }
            int start = i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
                i++;
            return long.Parse(s[start..i], CultureInfo.InvariantCulture);
        }
        long result = Expr();
        Assert.Equal(s.Length, i);
        return result;
    }

    [Fact]
    public void GeneratedExpressionsFollowTheGrammarAndLimits()
    {
        var rng = new Rng(1);
        var parenCounts = new int[2];
        var seenOps = new HashSet<char>();
        for (int n = 0; n < 3000; n++)
        {
            int ops = 2 + n % 3;
            ArithTask.Expression e = ArithTask.Generate(rng, ops);
            string prompt = ArithTask.Prompt(e);
            Assert.Matches(@"^What is (\(?\d{1,2}\)? [-+*] ){2,4}\(?\d{1,2}\)?\?$", prompt);
            Assert.DoesNotContain("  ", prompt, StringComparison.Ordinal);
            Assert.True(ArithTask.IsWellFormed(e), prompt);
            Assert.Equal(ops, e.Operators.Length);
            Assert.True(e.Operators.Count(o => o == '*') <= 2, prompt);
            Assert.All(e.Operands, v => Assert.InRange(v, 0, 99));
            Assert.True(prompt.Count(ch => ch == '(') <= 1 && prompt.Count(ch => ch == '(') == prompt.Count(ch => ch == ')'), prompt);
            if (e.ParenStart >= 0)
                Assert.True(e.ParenEnd - e.ParenStart + 1 is >= 2 && e.ParenEnd - e.ParenStart + 1 <= ops, prompt); // a proper sub-expression
            parenCounts[e.ParenStart >= 0 ? 1 : 0]++;
            foreach (char o in e.Operators)
                seenOps.Add(o);
            // the parser reads the text back into the same expression
            ArithTask.Expression back = ArithTask.Parse(prompt)!;
            Assert.Equal(prompt, ArithTask.Prompt(back));
            // value and every intermediate result against the independent evaluator
            var inter = new List<long>();
            long want = Reference(e.ToString(), inter);
            Assert.Equal(want, ArithTask.Evaluate(e));
            Assert.All(inter, v => Assert.InRange(v, -ArithTask.Limit, ArithTask.Limit));
        }
        Assert.True(parenCounts[0] > 1000 && parenCounts[1] > 1000, $"with/without parentheses: {parenCounts[1]}/{parenCounts[0]}");
        Assert.Equal(3, seenOps.Count);
    }

    [Theory]
    [InlineData("12 + 7 * (30 - 4)", 194)]
    [InlineData("(53 - 42) + 29", 40)]
    [InlineData("7 * (30 - 4)", 182)]
    [InlineData("2 - 3 - 4", -5)]          // left to right
    [InlineData("2 + 3 * 4", 14)]          // * first
    [InlineData("2 * 3 + 4 * 5", 26)]
    [InlineData("(2 + 3) * 4", 20)]
    [InlineData("10 - (2 - 3) - 4", 7)]
    [InlineData("99 * 99 - 0 + 1", 9802)]
    [InlineData("5 - 6 * (7 + 8) - 9", -94)]
    public void PrecedenceAndStepsAreRight(string expr, long value)
    {
        ArithTask.Expression e = ArithTask.Parse(expr)!;
        Assert.NotNull(e);
        Assert.Equal(value, ArithTask.Evaluate(e));
        Assert.Equal(value, Reference(expr, []));
        ArithTask.Step last = ArithTask.Steps(e).Last();
        Assert.Equal(value, last.Result);
        Assert.Equal(value.ToString(CultureInfo.InvariantCulture), last.Rest);
        string solution = ArithTask.Solution(e);
        Assert.StartsWith("<think>\n", solution, StringComparison.Ordinal);
        Assert.EndsWith($"</think>\n\n{expr} = \\boxed{{{value}}}", solution, StringComparison.Ordinal);
        // the reward parser accepts the generator's own solution (the completion after the "<think>\n" of the prompt)
        Verdict v = Answers.Judge(solution["<think>\n".Length..], value.ToString(CultureInfo.InvariantCulture), endedWithEos: true);
        Assert.True(v.Correct && v.FormatOk, solution);
    }

    [Fact]
    public void StepsFollowTheOrderAPersonUses()
    {
        string[] steps = ArithTask.Steps(ArithTask.Parse("12 + 7 * (30 - 4)")!).Select(s => $"{s.Left} {s.Op} {s.Right} = {s.Result} | {s.Rest}").ToArray();
        Assert.Equal(["30 - 4 = 26 | 12 + 7 * 26", "7 * 26 = 182 | 12 + 182", "12 + 182 = 194 | 194"], steps);
        Assert.Equal("47 * 26 = 47 * 20 + 47 * 6 = 940 + 282 = 1222", ArithTask.StepText(47, '*', 26, 1222));
        Assert.Equal("7 * 26 = 182", ArithTask.StepText(7, '*', 26, 182));
        Assert.Equal("-47 * 26 = -(47 * 26); 47 * 26 = 47 * 20 + 47 * 6 = 940 + 282 = 1222; so -1222", ArithTask.StepText(-47, '*', 26, -1222));
        Assert.Equal("-47 * -26 = 47 * 20 + 47 * 6 = 940 + 282 = 1222", ArithTask.StepText(-47, '*', -26, 1222));
        Assert.Equal("182 * 30 = 5460", ArithTask.StepText(182, '*', 30, 5460));
        Assert.Equal("2322 * 105 = 2322 * 100 + 2322 * 5 = 232200 + 11610 = 243810", ArithTask.StepText(2322, '*', 105, 243810));
    }

    [Fact]
    public void ColumnsTraceWorksSumsAndDifferencesDigitByDigit()
    {
        Assert.Equal("2592 + 89: 2+9=11, 9+8+1=18, 5+1=6, 2 gives 2681", ArithTask.ColumnStepText(2592, '+', 89, 2681));
        Assert.Equal("7 + 65: 7+5=12, 6+1=7 gives 72", ArithTask.ColumnStepText(7, '+', 65, 72));
        Assert.Equal("82 - 59: 12-9=3, 8-5-1=2 gives 23", ArithTask.ColumnStepText(82, '-', 59, 23));
        Assert.Equal("100 - 98: 10-8=2, 10-9-1=0, 1-1=0 gives 2", ArithTask.ColumnStepText(100, '-', 98, 2));
        Assert.Equal("3 + 4 = 7", ArithTask.ColumnStepText(3, '+', 4, 7));
        Assert.Equal("14 - 35 = -(35 - 14); 35 - 14: 5-4=1, 3-1=2 gives 21; so -21", ArithTask.ColumnStepText(14, '-', 35, -21));
        Assert.Equal("-21 - 5 = -(21 + 5); 21 + 5: 1+5=6, 2 gives 26; so -26", ArithTask.ColumnStepText(-21, '-', 5, -26));
        Assert.Equal("-5 + 21 = 21 - 5; 21 - 5: 11-5=6, 2-1=1 gives 16; so 16", ArithTask.ColumnStepText(-5, '+', 21, 16));
        Assert.Equal("5 - -21 = 5 + 21; 5 + 21: 5+1=6, 2 gives 26; so 26", ArithTask.ColumnStepText(5, '-', -21, 26));
        Assert.Equal("-3 - 5 = -(3 + 5); 3 + 5 = 8; so -8", ArithTask.ColumnStepText(-3, '-', 5, -8));
        const string p4726 = "47 * 26 = 47 * 20 + 47 * 6; 47 * 2: 7*2=14, 4*2+1=9 gives 94; 47 * 6: 7*6=42, 4*6+4=28 gives 282; "
                             + "940 + 282: 0+2=2, 4+8=12, 9+2+1=12 gives 1222";
        Assert.Equal(p4726, ArithTask.ColumnStepText(47, '*', 26, 1222));
        Assert.Equal($"-47 * 26 = -(47 * 26); {p4726}; so -1222", ArithTask.ColumnStepText(-47, '*', 26, -1222));
        Assert.Equal($"-47 * -26 = 47 * 26; {p4726}", ArithTask.ColumnStepText(-47, '*', -26, 1222));
        Assert.Equal("26 * 7: 6*7=42, 2*7+4=18 gives 182", ArithTask.ColumnStepText(7, '*', 26, 182));
        Assert.Equal("100 * 20 = 100 * 2 * 10; 100 * 2: 0*2=0, 0*2=0, 1*2=2 gives 200; so 2000", ArithTask.ColumnStepText(100, '*', 20, 2000));
        Assert.Equal("817 * 1 = 817", ArithTask.ColumnStepText(817, '*', 1, 817));
        Assert.Equal("7 * 8 = 56", ArithTask.ColumnStepText(7, '*', 8, 56));
        Assert.Equal("-7 * 8 = -(7 * 8); 7 * 8 = 56; so -56", ArithTask.ColumnStepText(-7, '*', 8, -56));
    }

    [Fact]
    public void OrderedColumnsTraceSaysTheSwapOfAOneDigitFirstFactor()
    {
        Assert.Equal("7 * 26 = 26 * 7; 26 * 7: 6*7=42, 2*7+4=18 gives 182", ArithTask.ColumnStepText(7, '*', 26, 182, ordered: true));
        Assert.Equal("26 * 7: 6*7=42, 2*7+4=18 gives 182", ArithTask.ColumnStepText(26, '*', 7, 182, ordered: true));
        Assert.Equal("-7 * 26 = -(7 * 26); 7 * 26 = 26 * 7; 26 * 7: 6*7=42, 2*7+4=18 gives 182; so -182", ArithTask.ColumnStepText(-7, '*', 26, -182, ordered: true));
        Assert.Equal("-7 * -26 = 7 * 26; 7 * 26 = 26 * 7; 26 * 7: 6*7=42, 2*7+4=18 gives 182", ArithTask.ColumnStepText(-7, '*', -26, 182, ordered: true));
        Assert.Equal("7 * 8 = 56", ArithTask.ColumnStepText(7, '*', 8, 56, ordered: true));
        Assert.Equal("1 * 24 = 24", ArithTask.ColumnStepText(1, '*', 24, 24, ordered: true));
        Assert.Equal("26 * 47 = 47 * 20 + 47 * 6; 47 * 2: 7*2=14, 4*2+1=9 gives 94; 47 * 6: 7*6=42, 4*6+4=28 gives 282; "
                     + "940 + 282: 0+2=2, 4+8=12, 9+2+1=12 gives 1222", ArithTask.ColumnStepText(26, '*', 47, 1222, ordered: true));
        // whole solutions: the columns trace with those swaps said, nothing else changed; every step's line starts
        // with the step's operands in the order the expression has them
        var columns = TaskSet.Generate("arith", "train", 300, seed: 31, trace: ArithTrace.Columns);
        var ordered = TaskSet.Generate("arith", "train", 300, seed: 31, trace: ArithTrace.ColumnsOrdered);
        var said = new System.Text.RegularExpressions.Regex(@"\b(\d) \* (\d{2,}) = \2 \* \1; ");
        int swaps = 0, columnsOutOfOrder = 0;
        for (int i = 0; i < columns.Count; i++)
        {
            Assert.Equal((columns[i].Prompt, columns[i].Answer), (ordered[i].Prompt, ordered[i].Answer));
            swaps += said.Matches(ordered[i].Response!).Count;
            Assert.Equal(columns[i].Response, said.Replace(ordered[i].Response!, ""));
            Assert.Equal(0, OutOfOrder(ordered[i]));
            columnsOutOfOrder += OutOfOrder(columns[i]);
        }
        Assert.True(swaps > 40, $"only {swaps} swaps said");
        Assert.True(columnsOutOfOrder > 40, $"the columns trace starts only {columnsOutOfOrder} lines with a swapped product");

        // lines whose leading product "a * b" is not in the prompt or the lines before it, as written there
        static int OutOfOrder(TaskExample t)
        {
            string[] lines = t.Response!.Split('\n');
            int count = 0;
            for (int l = 1; l < lines.Length && lines[l] != "</think>"; l++)
            {
                var first = System.Text.RegularExpressions.Regex.Match(lines[l], @"^(-?\d+) \* (-?\d+)[:; =]");
                if (!first.Success)
                    continue;
                string before = t.Prompt + "\n" + string.Join("\n", lines[..l]);
                if (!System.Text.RegularExpressions.Regex.IsMatch(before, $@"(?<![\d-]){first.Groups[1].Value} \* {first.Groups[2].Value}(?!\d)"))
                    count++;
            }
            return count;
        }
    }

    // Every "P op Q: columns gives R" of a columns solution is arithmetic that checks: each column's sum or difference,
    // the carries and borrows between them, R = P op Q, and R read back from the columns; the problems and answers are
    // those of the compact trace.
    [Theory]
    [InlineData(ArithTrace.Columns)]
    [InlineData(ArithTrace.ColumnsOrdered)]
    public void ColumnsTraceIsSelfConsistentOnManyProblems(ArithTrace trace)
    {
        var compact = TaskSet.Generate("arith", "train", 700, seed: 23);
        var columns = TaskSet.Generate("arith", "train", 700, seed: 23, trace: trace);
        Assert.Equal(compact.Select(t => (t.Prompt, t.Answer)), columns.Select(t => (t.Prompt, t.Answer)));
        var segment = new System.Text.RegularExpressions.Regex(@"(\d+) ([+-]) (\d+): ([0-9+=, -]+?) gives (\d+)");
        int checkedSegments = 0;
        foreach (TaskExample t in columns)
        {
            Assert.EndsWith($"\\boxed{{{t.Answer}}}", t.Response, StringComparison.Ordinal);
            foreach (System.Text.RegularExpressions.Match m in segment.Matches(t.Response!))
            {
                long p = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), q = long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
                char op = m.Groups[2].Value[0];
                long r = long.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture);
                Assert.Equal(op == '+' ? p + q : p - q, r);
                string[] cols = m.Groups[4].Value.Split(", ");
                int carry = 0;
                var digits = new List<string>();
                long place = 1;
                for (int i = 0; i < cols.Length; i++, place *= 10)
                {
                    string c = cols[i];
                    string lhs = c.Contains('=', StringComparison.Ordinal) ? c[..c.IndexOf('=', StringComparison.Ordinal)] : c;
                    long value = c.Contains('=', StringComparison.Ordinal) ? long.Parse(c[(c.IndexOf('=', StringComparison.Ordinal) + 1)..], CultureInfo.InvariantCulture) : long.Parse(c, CultureInfo.InvariantCulture);
                    int dp = (int)(p / place % 10), dq = (int)(q / place % 10);
                    if (op == '+')
                    {
                        long expected = (place <= p ? dp : 0) + (place <= q ? dq : 0) + carry;
                        Assert.Equal(expected, value);
                        Assert.Equal(expected, lhs.Split('+').Sum(x => long.Parse(x, CultureInfo.InvariantCulture)));
                        carry = (int)(value / 10);
                        digits.Insert(0, i == cols.Length - 1 ? value.ToString(CultureInfo.InvariantCulture) : (value % 10).ToString(CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        long d = dp - (place <= q ? dq : 0) - carry;
                        int borrow = d < 0 ? 1 : 0;
                        Assert.Equal(d + 10 * borrow, value);
                        string[] terms = lhs.Split('-');
                        Assert.Equal(dp + 10 * borrow, long.Parse(terms[0], CultureInfo.InvariantCulture));
                        Assert.Equal(value, terms.Skip(1).Aggregate(long.Parse(terms[0], CultureInfo.InvariantCulture), (a, x) => a - long.Parse(x, CultureInfo.InvariantCulture)));
                        carry = borrow;
                        digits.Insert(0, value.ToString(CultureInfo.InvariantCulture));
                    }
                }
                Assert.Equal(0, op == '-' ? carry : 0);
                Assert.Equal(r, long.Parse(string.Concat(digits), CultureInfo.InvariantCulture));
                checkedSegments++;
            }
        }
        Assert.True(checkedSegments > 3000, $"only {checkedSegments} column segments checked");
        // one-digit products: "P * d: 6*7=42, 8*7+4=60 gives 602", each column digit * d + carry, the last one whole
        var product = new System.Text.RegularExpressions.Regex(@"(\d+) \* (\d): ([0-9*+=, ]+?) gives (\d+)");
        int checkedProducts = 0;
        foreach (TaskExample t in columns)
        {
            foreach (System.Text.RegularExpressions.Match m in product.Matches(t.Response!))
            {
                long big = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), r = long.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture);
                int d = m.Groups[2].Value[0] - '0';
                Assert.Equal(big * d, r);
                string[] cols = m.Groups[3].Value.Split(", ");
                int carry = 0;
                string digits = "";
                long place = 1;
                for (int i = 0; i < cols.Length; i++, place *= 10)
                {
                    int v = (int)(big / place % 10) * d + carry;
                    Assert.Equal(carry == 0 ? $"{big / place % 10}*{d}={v}" : $"{big / place % 10}*{d}+{carry}={v}", cols[i]);
                    carry = v / 10;
                    digits = (i == cols.Length - 1 ? v.ToString(CultureInfo.InvariantCulture) : (v % 10).ToString(CultureInfo.InvariantCulture)) + digits;
                }
                Assert.True(place > big);
                Assert.Equal(r, long.Parse(digits, CultureInfo.InvariantCulture));
                checkedProducts++;
            }
        }
        Assert.True(checkedProducts > 300, $"only {checkedProducts} one-digit products checked");
    }

    [Theory]
    [InlineData("1 + 2")]                  // one operator
    [InlineData("1 + 2 + 3 + 4 + 5 + 6")]  // five
    [InlineData("1 * 2 * 3 * 4")]          // three '*'
    [InlineData("100 + 2 + 3")]            // operand > 99
    [InlineData("07 + 2 + 3")]             // leading zero
    [InlineData("1  + 2 + 3")]             // double space
    [InlineData("1 + 2 / 3")]
    [InlineData("(1 + 2 + 3)")]            // parentheses around everything
    [InlineData("(1) + 2 + 3")]            // around one number
    [InlineData("(1 + 2) + (3 + 4)")]      // two pairs
    [InlineData("(1 + 2 + 3")]
    [InlineData("-1 + 2 + 3")]
    public void ParserRejectsTextOutsideTheGrammar(string text) => Assert.Null(ArithTask.Parse(text));

    [Fact]
    public void IntermediateResultsBeyondTheLimitAreRejected()
    {
        ArithTask.Expression e = ArithTask.Parse("99 * 99 * 99 - 1")!; // 970299 > 99999
        Assert.False(ArithTask.TryEvaluate(e, out _));
        Assert.Throws<ArgumentException>(() => ArithTask.Evaluate(e));
        Assert.True(ArithTask.TryEvaluate(ArithTask.Parse("99 * 99 * 10 - 1")!, out long v) && v == 98009);
    }

    [Fact]
    public void SplitsAreDeterministicDistinctAndBalanced()
    {
        var a = TaskSet.GenerateSplits("arith", 300, 50, 100, seed: 3);
        var b = TaskSet.GenerateSplits("arith", 300, 50, 100, seed: 3);
        Assert.Equal(a.Test.Select(t => t.Prompt), b.Test.Select(t => t.Prompt));
        Assert.Equal(a.Train.Select(t => t.Response), b.Train.Select(t => t.Response));
        Assert.Equal(300, a.Test.Count);
        Assert.Equal([100, 100, 100], a.Test.GroupBy(t => t.Level).OrderBy(g => g.Key).Select(g => g.Count()));
        var all = a.Train.Concat(a.Validation).Concat(a.Test).Select(t => t.Prompt).ToList();
        Assert.Equal(all.Count, all.Distinct().Count()); // no prompt in two splits, none twice
        // the splits draw from different streams
        Assert.NotEqual(a.Train[0].Prompt, a.Test[0].Prompt);
        var c = TaskSet.GenerateSplits("arith", 300, 50, 100, seed: 4);
        Assert.NotEqual(a.Test.Select(t => t.Prompt), c.Test.Select(t => t.Prompt));
        foreach (TaskExample t in a.Test)
            Assert.Equal(t.Answer, ArithTask.Evaluate(ArithTask.Parse(t.Prompt)!).ToString(CultureInfo.InvariantCulture));
        // another seed's splits kept apart from these (as `tasks --exclude`): none of the excluded prompts, the same
        // counts; excluding nothing changes nothing
        var taken = all.Concat(c.Train.Select(t => t.Prompt)).ToHashSet(StringComparer.Ordinal); // c: what seed 4 draws unhindered
        var d = TaskSet.GenerateSplits("arith", 300, 50, 100, seed: 4, exclude: taken);
        Assert.DoesNotContain(d.Train.Concat(d.Validation).Concat(d.Test), t => taken.Contains(t.Prompt));
        Assert.Equal(900, d.Train.Count);
        Assert.Equal(c.Test.Select(t => t.Prompt), TaskSet.GenerateSplits("arith", 300, 50, 100, seed: 4, exclude: new HashSet<string>()).Test.Select(t => t.Prompt));
    }

    [Fact]
    public void WordProblemsAreConsistent()
    {
        var rng = new Rng(9);
        for (int n = 0; n < 1000; n++)
        {
            WordTask.Problem p = WordTask.Generate(rng, 1 + n % 3);
            Assert.EndsWith("have now?", p.Prompt, StringComparison.Ordinal);
            Assert.InRange(p.Answer, 0, 9999);
            // every line of the worked solution is a correct equation, and the last one gives the answer
            string[] lines = p.Solution.Split('\n').Where(l => l.Contains(" = ", StringComparison.Ordinal)).ToArray();
            Assert.NotEmpty(lines);
            foreach (string l in lines)
            {
                string[] parts = l.Split(' ');
                long x = long.Parse(parts[0], CultureInfo.InvariantCulture), y = long.Parse(parts[2], CultureInfo.InvariantCulture), r = long.Parse(parts[4], CultureInfo.InvariantCulture);
                Assert.Equal(r, parts[1] switch { "+" => x + y, "-" => x - y, "*" => x * y, "/" => x / y, _ => throw new InvalidDataException(l) });
                if (parts[1] == "/")
                    Assert.Equal(0, x % y);
            }
            Verdict v = Answers.Judge(p.Solution["<think>\n".Length..], p.Answer.ToString(CultureInfo.InvariantCulture), true);
            Assert.True(v.Correct && v.FormatOk, p.Solution);
        }
        var splits = TaskSet.GenerateSplits("word", 200, 20, 20, 1);
        Assert.Equal(720, splits.Train.Count + splits.Validation.Count + splits.Test.Count);
    }

    [Fact]
    public void TaskFilesRoundTripAndBadLinesNameFileLineAndField()
    {
        string path = Path.Combine(_dir, "t.jsonl");
        List<TaskExample> tasks = TaskSet.Generate("arith", "test", 5, 1);
        TaskSet.Write(path, tasks);
        Assert.Equal(tasks, TaskSet.Read(path));
        Assert.Contains("What is", File.ReadAllText(path), StringComparison.Ordinal);

        void Bad(string content, string expected)
        {
            File.WriteAllText(path, "{\"prompt\": \"What is 1 + 2 + 3?\", \"answer\": \"6\"}\n" + content + "\n");
            var e = Assert.Throws<InvalidDataException>(() => TaskSet.Read(path));
            Assert.StartsWith($"{path}:2: ", e.Message, StringComparison.Ordinal);
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }
        Bad("{\"answer\": \"6\"}", "field 'prompt'");
        Bad("{\"prompt\": 5, \"answer\": \"6\"}", "field 'prompt'");
        Bad("{\"prompt\": \"x\"}", "field 'answer' is missing");
        Bad("{\"prompt\": \"x\", \"answer\": \"six\"}", "field 'answer' is 'six', not an integer");
        Bad("{\"prompt\": \"x\", \"answer\": 6.5}", "field 'answer'");
        Bad("{\"prompt\": \"x\", \"answer\": [6]}", "field 'answer'");
        Bad("[1, 2]", "not a JSON object");
        Bad("{\"prompt\": ", "not valid JSON");
        // numbers and other keys are fine
        File.WriteAllText(path, "{\"prompt\": \"p\", \"answer\": -12, \"other\": true}\n\n");
        Assert.Equal("-12", Assert.Single(TaskSet.Read(path)).Answer);
        File.WriteAllText(path, "");
        Assert.Throws<InvalidDataException>(() => TaskSet.Read(path));
    }

    [Theory]
    // completion text (after "<think>\n"), expected answer, parsed answer (null: none), format ok
    [InlineData("12 + 182 = 194\n</think>\n\nThe answer is \\boxed{194}", "194", "194", true)]
    [InlineData("x\n</think>\n\n\\boxed{5} or \\boxed{7}", "7", "7", false)]                  // several boxes: the last counts, format wants one
    [InlineData("x\n</think>\n\nno box here", "5", null, false)]
    [InlineData("\\boxed{5}\n</think>\n\nso five", "5", null, false)]                         // box only inside the reasoning
    [InlineData("x \\boxed{3}\n</think>\n\n\\boxed{5}", "5", "5", false)]                      // a second box in the reasoning
    [InlineData("no think close \\boxed{5}", "5", null, false)]
    [InlineData("x\n</think>\n\n\\boxed{{5}}", "5", null, false)]                              // nested braces: "{5}" is not an integer
    [InlineData("x\n</think>\n\n\\boxed{\\frac{1}{2}}", "5", null, false)]
    [InlineData("x\n</think>\n\n\\boxed{5", "5", null, false)]                                 // never closes
    [InlineData("x\n</think>\n\n\\boxed{\u22125}", "-5", "-5", true)]                          // Unicode minus
    [InlineData("x\n</think>\n\n\\boxed{ -0012 }", "-12", "-12", true)]
    [InlineData("x\n</think>\n\n\\boxed{1,222}", "1222", null, false)]
    [InlineData("x\n</think>\n\n\\boxed{5.0}", "5", null, false)]
    [InlineData("x\n</think>\n\n\\boxed{123456789012345678901234567890}", "5", "123456789012345678901234567890", true)] // huge: parsed, wrong
    [InlineData("x\n</think>\n\n\\boxed{5}<｜end▁of▁sentence｜>\\boxed{7}", "5", "5", false)]  // text after EOS is ignored (and breaks the format)
    [InlineData("x\n</think>\n\n\\boxed{5}<｜end▁of▁sentence｜>", "5", "5", true)]
    [InlineData("x\n</think>\n\n</think>\\boxed{5}", "5", "5", false)]                         // two closes
    [InlineData("<think>x\n</think>\n\n\\boxed{5}", "5", "5", false)]                          // a second open
    [InlineData("\n</think>\n\n\\boxed{5}", "5", "5", false)]                                  // no reasoning
    public void AnswerParserOnAdversarialReplies(string completion, string expected, string? parsed, bool format)
    {
        Verdict v = Answers.Judge(completion, expected, endedWithEos: true);
        Assert.Equal(parsed is null ? null : BigInteger.Parse(parsed, CultureInfo.InvariantCulture), v.Answer);
        Assert.Equal(parsed is not null && BigInteger.Parse(parsed, CultureInfo.InvariantCulture) == BigInteger.Parse(expected, CultureInfo.InvariantCulture), v.Correct);
        Assert.Equal(format, v.FormatOk);
        // a reply cut at the token budget is never well formatted, whatever it holds
        Assert.False(Answers.Judge(completion, expected, endedWithEos: false).FormatOk);
    }

    [Fact]
    public void HugeAndOddIntegers()
    {
        Assert.Null(Answers.ParseInteger(new string('9', Answers.MaxDigits + 1)));
        Assert.NotNull(Answers.ParseInteger(new string('9', Answers.MaxDigits)));
        Assert.Null(Answers.ParseInteger(""));
        Assert.Null(Answers.ParseInteger("-"));
        Assert.Null(Answers.ParseInteger("--5"));
        Assert.Null(Answers.ParseInteger("٣")); // Arabic-Indic digit: not ASCII
        Assert.Equal(new BigInteger(5), Answers.ParseInteger("+5"));
        var w = new RewardWeights { Accuracy = 1, Format = 0.25 };
        Assert.Equal(1.25, w.Of(new Verdict(5, true, true)));
        Assert.Equal(0.25, w.Of(new Verdict(4, false, true)));
        Assert.Equal(0, w.Of(new Verdict(null, false, false)));
    }
}
