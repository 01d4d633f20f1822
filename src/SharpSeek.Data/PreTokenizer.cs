// DeepSeek-V3's pre-tokenizer, written out over Unicode scalar values instead of run through a regex engine.
// tokenizer.json applies three Split steps (behavior Isolated: matches and the gaps between them both become
// pieces), each to every piece of the step before, then ByteLevel without its own regex:
//   1. \p{N}{1,3}                                  digits, in groups of at most three
//   2. [一-龥぀-ゟ゠-ヿ]+                              CJK ideographs U+4E00-U+9FA5, hiragana, katakana
//   3. [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+   A: ASCII punctuation + ASCII letters ("'s", ".com")
//      | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+           B: one optional non-letter/punct/symbol + letters/marks
//      | ?[\p{P}\p{S}]+[\r\n]*                          C: optional space + punctuation/symbols + newlines
//      | \s*[\r\n]+                                     D: white space through its last newline
//      | \s+(?!\S)                                      E: white space, leaving the last one for the next word
//      | \s+                                            F: white space
// The regex engine (Oniguruma in Hugging Face tokenizers) matches leftmost-first and sees code points, so the
// rules below do the same; .NET's Regex would see UTF-16 surrogates and split emoji differently.
// Lookahead in E sees only the current piece: white space at the end of a piece is taken whole.
using System.Globalization;
using System.Text;

namespace SharpSeek.Data;

/// <summary>Splits text into pre-tokens exactly as DeepSeek-V3's tokenizer.json pre_tokenizer does.</summary>
public static class PreTokenizer
{
    /// <summary>The three Split regexes of DeepSeek-V3's pre_tokenizer, in order, as tokenizer.json writes them.</summary>
    public static readonly IReadOnlyList<string> SplitPatterns =
    [
        @"\p{N}{1,3}",
        "[一-龥぀-ゟ゠-ヿ]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    ];

    /// <summary>Returns the pre-tokens of <paramref name="text"/> as strings.</summary>
    public static List<string> Split(string text)
    {
        var ranges = new List<Range>();
        Split(text, ranges);
        var pieces = new List<string>(ranges.Count);
        foreach (Range r in ranges)
            pieces.Add(text[r]);
        return pieces;
    }

    /// <summary>Appends the pre-tokens of <paramref name="text"/> to <paramref name="pieces"/> as UTF-16 ranges, in order, covering all of it.</summary>
    public static void Split(ReadOnlySpan<char> text, List<Range> pieces)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        // Step 1: digit groups.
        int gap = 0, i = 0;
        while (i < text.Length)
        {
            Rune r = RuneAt(text, i, out int n);
            if (!IsNumber(r))
            {
                i += n;
                continue;
            }
            if (gap < i)
                SplitCjk(text, gap, i, pieces);
            int end = i + n;
            for (int k = 1; k < 3 && end < text.Length; k++)
            {
                Rune next = RuneAt(text, end, out int m);
                if (!IsNumber(next))
                    break;
                end += m;
            }
            pieces.Add(new Range(i, end));
            i = gap = end;
        }
        if (gap < text.Length)
            SplitCjk(text, gap, text.Length, pieces);
    }

    // Step 2: runs of CJK ideographs and kana within [start, end).
    private static void SplitCjk(ReadOnlySpan<char> text, int start, int end, List<Range> pieces)
    {
        int gap = start, i = start;
        while (i < end)
        {
            Rune r = RuneAt(text, i, out int n);
            if (!IsCjk(r))
            {
                i += n;
                continue;
            }
            if (gap < i)
                SplitWords(text, gap, i, pieces);
            int runEnd = i + n;
            while (runEnd < end && IsCjk(RuneAt(text, runEnd, out int m)))
                runEnd += m;
            pieces.Add(new Range(i, runEnd));
            i = gap = runEnd;
        }
        if (gap < end)
            SplitWords(text, gap, end, pieces);
    }

    // Step 3: the word regex within [start, end); unmatched runs become pieces of their own.
    private static void SplitWords(ReadOnlySpan<char> text, int start, int end, List<Range> pieces)
    {
        int gap = start, i = start;
        while (i < end)
        {
            int match = MatchAt(text, i, end);
            if (match == 0)
            {
                RuneAt(text, i, out int n);
                i += n;
                continue;
            }
            if (gap < i)
                pieces.Add(new Range(gap, i));
            pieces.Add(new Range(i, i + match));
            i = gap = i + match;
        }
        if (gap < end)
            pieces.Add(new Range(gap, end));
    }

    // Length in chars of the regex match starting at i (0 if none), trying alternatives A-F in order.
    private static int MatchAt(ReadOnlySpan<char> text, int i, int end)
    {
        Rune r0 = RuneAt(text, i, out int n0);
        int i1 = i + n0;
        bool hasR1 = i1 < end;
        Rune r1 = hasR1 ? RuneAt(text, i1, out _) : default;

        // A: one ASCII punctuation character, then ASCII letters.
        if (r0.IsAscii && IsAsciiPunctuation((char)r0.Value) && hasR1 && IsAsciiLetter(r1))
            return RunEnd(text, i1, end, IsAsciiLetter) - i;

        // B: [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
        bool optional = r0.Value != '\r' && r0.Value != '\n' && !IsLetter(r0) && !IsPunctuation(r0) && !IsSymbol(r0);
        if (optional && hasR1 && IsLetterOrMark(r1))
            return RunEnd(text, i1, end, IsLetterOrMark) - i;
        if (IsLetterOrMark(r0))
            return RunEnd(text, i, end, IsLetterOrMark) - i;

        // C: ' ?[\p{P}\p{S}]+[\r\n]*'
        int p = -1;
        if (r0.Value == ' ' && hasR1 && IsPunctuationOrSymbol(r1))
            p = i1;
        else if (IsPunctuationOrSymbol(r0))
            p = i;
        if (p >= 0)
        {
            int after = RunEnd(text, p, end, IsPunctuationOrSymbol);
            return RunEnd(text, after, end, IsNewline) - i;
        }

        if (!Rune.IsWhiteSpace(r0))
            return 0;
        int spaceEnd = RunEnd(text, i, end, Rune.IsWhiteSpace);
        // D: \s*[\r\n]+ ends at the last newline of the white-space run.
        for (int k = spaceEnd - 1; k >= i; k--)
        {
            if (text[k] == '\r' || text[k] == '\n')
                return k + 1 - i;
        }
        // E: \s+(?!\S) gives back the last white space before a non-space; F: \s+ when only one is left.
        // (Every white-space character is in the BMP, so "one back" is one char.)
        if (spaceEnd == end || spaceEnd - i == 1)
            return spaceEnd - i;
        return spaceEnd - 1 - i;
    }

    private static int RunEnd(ReadOnlySpan<char> text, int i, int end, Func<Rune, bool> predicate)
    {
        while (i < end)
        {
            Rune r = RuneAt(text, i, out int n);
            if (!predicate(r))
                break;
            i += n;
        }
        return i;
    }

    // An unpaired surrogate reads as U+FFFD, which is what its UTF-8 encoding (and so the Rust side) holds.
    private static Rune RuneAt(ReadOnlySpan<char> text, int i, out int length)
    {
        Rune.DecodeFromUtf16(text[i..], out Rune r, out length);
        return r;
    }

    private static bool IsAsciiPunctuation(char c) => c is >= '!' and <= '/' or >= ':' and <= '@' or >= '[' and <= '`' or >= '{' and <= '~';

    private static bool IsAsciiLetter(Rune r) => r.IsAscii && char.IsAsciiLetter((char)r.Value);

    private static bool IsNewline(Rune r) => r.Value is '\r' or '\n';

    private static bool IsCjk(Rune r) => r.Value is >= 0x4E00 and <= 0x9FA5 or >= 0x3040 and <= 0x309F or >= 0x30A0 and <= 0x30FF;

    private static bool IsNumber(Rune r) => Rune.GetUnicodeCategory(r) is UnicodeCategory.DecimalDigitNumber
        or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    private static bool IsLetter(Rune r) => Rune.GetUnicodeCategory(r) is UnicodeCategory.UppercaseLetter
        or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter
        or UnicodeCategory.OtherLetter;

    private static bool IsLetterOrMark(Rune r) => IsLetter(r) || Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark
        or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;

    private static bool IsPunctuation(Rune r) => Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation
        or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
        or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    private static bool IsSymbol(Rune r) => Rune.GetUnicodeCategory(r) is UnicodeCategory.MathSymbol
        or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol or UnicodeCategory.OtherSymbol;

    private static bool IsPunctuationOrSymbol(Rune r) => IsPunctuation(r) || IsSymbol(r);
}
