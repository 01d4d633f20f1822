// Rule-based rewards of the R1 reply format (DeepSeek-R1 §2.2.2: accuracy and format rewards). A completion is the
// text generated after the R1 generation prompt "<｜Assistant｜><think>\n", so it reads "...steps...\n</think>\n\n...
// \boxed{N}" and then the EOS token ends it.
//   answer:   the integer in the last \boxed{...} after the last </think>; the box's braces are matched (so
//             "\boxed{{5}}" holds "{5}", which is not an integer); an optional sign (ASCII '-' or '+', or the
//             Unicode minus U+2212), then decimal digits, whitespace around allowed; anything else (a box that never
//             closes, "1,222", "5.0", "x") is no answer. Text after an EOS marker is ignored.
//   format:   exactly one "</think>", no "<think>" (the prompt opened it), some reasoning before it, exactly one
//             \boxed{} in the whole reply, after </think>, holding an integer, and the reply ended with EOS.
using System.Globalization;
using System.Numerics;

namespace SharpSeek.Training.Tasks;

/// <summary>The verdict on one completion.</summary>
/// <param name="Answer">The parsed answer, or null when none could be parsed.</param>
/// <param name="Correct">The answer equals the expected integer.</param>
/// <param name="FormatOk">The reply follows the R1 format (see <see cref="Answers"/>).</param>
public readonly record struct Verdict(BigInteger? Answer, bool Correct, bool FormatOk);

/// <summary>Reward weights: reward = Accuracy·correct + Format·format_ok.</summary>
public sealed record RewardWeights
{
    public double Accuracy { get; init; } = 1.0;
    public double Format { get; init; } = 0.1;

    public double Of(Verdict v) => (v.Correct ? Accuracy : 0) + (v.FormatOk ? Format : 0);
}

/// <summary>Answer extraction and the format check of R1-style replies.</summary>
public static class Answers
{
    public const string ThinkOpen = "<think>";
    public const string ThinkClose = "</think>";
    public const string Boxed = "\\boxed{";
    public const string EndOfSentence = "<｜end▁of▁sentence｜>";

    /// <summary>Longest integer accepted (digits); longer ones are no answer.</summary>
    public const int MaxDigits = 1000;

    /// <summary>Judges a completion against the expected answer; <paramref name="endedWithEos"/>: generation stopped at EOS.</summary>
    public static Verdict Judge(string completion, string expected, bool endedWithEos)
    {
        BigInteger want = ParseInteger(expected) ?? throw new ArgumentException($"expected answer '{expected}' is not an integer");
        BigInteger? got = Extract(completion);
        return new Verdict(got, got == want, FormatOk(completion, endedWithEos));
    }

    /// <summary>The integer in the last \boxed{} after the last &lt;/think&gt;, or null.</summary>
    public static BigInteger? Extract(string completion)
    {
        string text = BeforeEos(completion);
        int close = text.LastIndexOf(ThinkClose, StringComparison.Ordinal);
        if (close < 0)
            return null;
        string tail = text[(close + ThinkClose.Length)..];
        int box = tail.LastIndexOf(Boxed, StringComparison.Ordinal);
        if (box < 0)
            return null;
        string? content = BoxContent(tail, box);
        return content is null ? null : ParseInteger(content);
    }

    /// <summary>True when the completion follows the R1 reply format exactly (see the file header).</summary>
    public static bool FormatOk(string completion, bool endedWithEos)
    {
        if (!endedWithEos)
            return false;
        string text = BeforeEos(completion);
        if (text.Length != completion.Length && text.Length + EndOfSentence.Length != completion.Length)
            return false; // something after the EOS marker
        if (Count(text, ThinkOpen) != 0 || Count(text, ThinkClose) != 1 || Count(text, Boxed) != 1)
            return false;
        int close = text.IndexOf(ThinkClose, StringComparison.Ordinal);
        if (string.IsNullOrWhiteSpace(text[..close]))
            return false;
        int box = text.IndexOf(Boxed, StringComparison.Ordinal);
        return box > close && BoxContent(text, box) is string c && ParseInteger(c) is not null;
    }

    /// <summary>Parses an integer: optional whitespace, sign ('-', '+' or U+2212), 1..MaxDigits decimal digits. Null otherwise.</summary>
    public static BigInteger? ParseInteger(string s)
    {
        ReadOnlySpan<char> t = s.AsSpan().Trim();
        bool negative = false;
        if (t.Length > 0 && (t[0] == '-' || t[0] == '\u2212'))
        {
            negative = true;
            t = t[1..];
        }
        else if (t.Length > 0 && t[0] == '+')
        {
            t = t[1..];
        }
        if (t.Length == 0 || t.Length > MaxDigits)
            return null;
        foreach (char ch in t)
        {
            if (!char.IsAsciiDigit(ch))
                return null;
        }
        BigInteger v = BigInteger.Parse(t, NumberStyles.None, CultureInfo.InvariantCulture);
        return negative ? -v : v;
    }

    // the text between the braces of the \boxed{ at index box, braces matched; null when it never closes
    private static string? BoxContent(string text, int box)
    {
        int start = box + Boxed.Length, depth = 1;
        for (int i = start; i < text.Length; i++)
        {
            if (text[i] == '{')
                depth++;
            else if (text[i] == '}' && --depth == 0)
                return text[start..i];
        }
        return null;
    }

    private static string BeforeEos(string text)
    {
        int eos = text.IndexOf(EndOfSentence, StringComparison.Ordinal);
        return eos < 0 ? text : text[..eos];
    }

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
            n++;
        return n;
    }
}
