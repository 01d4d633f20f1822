// Per-code-point class bits for the hand-written pre-tokenizers: the Unicode general categories that the
// Oniguruma regexes of DeepSeek's tokenizer.json test (\p{L} \p{M} \p{N} \p{P} \p{S}, \s = White_Space) and
// the literal ranges of those regexes. Code points of the BMP come from one 128 KiB table, the others are
// classified on the fly.
using System.Globalization;

namespace SharpSeek.Tokenizer;

[Flags]
internal enum CharClass : ushort
{
    None = 0,
    Letter = 1 << 0,         // \p{L}
    Mark = 1 << 1,           // \p{M}
    Number = 1 << 2,         // \p{N}
    Punct = 1 << 3,          // \p{P}
    Symbol = 1 << 4,         // \p{S}
    Space = 1 << 5,          // \s: the White_Space property
    CrLf = 1 << 6,           // \r or \n
    AsciiPunct = 1 << 7,     // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]
    AsciiLetter = 1 << 8,    // [A-Za-z]
    V3Cjk = 1 << 9,          // [一-龥぀-ゟ゠-ヿ]
    LlmLetter = 1 << 10,     // the enumerated letter ranges of the deepseek-llm regex
    LlmPunct = 1 << 11,      // [!-/:-~！-／：-～‘-‟　-。]
    LlmCjk = 1 << 12,        // [一-龥ࠀ-一가-퟿]
    Word = 1 << 13,          // \w of the Rust regex crate (used by single_word added tokens)
    RustNumeric = 1 << 14,   // Rust char::is_numeric (the Digits pre-tokenizer)
}

internal static class CharClasses
{
    // V3 split 2: U+4E00-U+9FA5 (CJK ideographs), U+3040-U+309F (hiragana), U+30A0-U+30FF (katakana)
    private static readonly (int Lo, int Hi)[] V3CjkRanges = [(0x3040, 0x309F), (0x30A0, 0x30FF), (0x4E00, 0x9FA5)];

    // deepseek-llm split 2, "\s?[A-Za-zµÀ-ÖØ-öø-ƺ...𞤀-𞥃]+", transcribed range by range from its tokenizer.json
    private static readonly (int Lo, int Hi)[] LlmLetterRanges =
    [
        (0x0041, 0x005A), (0x0061, 0x007A), (0x00B5, 0x00B5), (0x00C0, 0x00D6), (0x00D8, 0x00F6), (0x00F8, 0x01BA),
        (0x01BC, 0x01BF), (0x01C4, 0x0293), (0x0295, 0x02AF), (0x0370, 0x0373), (0x0376, 0x0377), (0x037B, 0x037D),
        (0x037F, 0x037F), (0x0386, 0x0386), (0x0388, 0x038A), (0x038C, 0x038C), (0x038E, 0x03A1), (0x03A3, 0x03F5),
        (0x03F7, 0x0481), (0x048A, 0x052F), (0x0531, 0x0556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD),
        (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15),
        (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B),
        (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4),
        (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC),
        (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124),
        (0x2126, 0x2126), (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F),
        (0x2145, 0x2149), (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE),
        (0x2CF2, 0x2CF3), (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787), (0xA78B, 0xA78E),
        (0xAB70, 0xABBF), (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A),
        (0x10400, 0x1044F), (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2),
        (0x118A0, 0x118DF), (0x1E900, 0x1E943),
    ];

    // deepseek-llm split 3: "\s?[!-/:-~！-／：-～‘-‟　-。]+"
    private static readonly (int Lo, int Hi)[] LlmPunctRanges =
        [(0x0021, 0x002F), (0x003A, 0x007E), (0xFF01, 0xFF0F), (0xFF1A, 0xFF5E), (0x2018, 0x201F), (0x3000, 0x3002)];

    // deepseek-llm split 5: "[一-龥ࠀ-一가-퟿]+" = U+4E00-U+9FA5, U+0800-U+4E00, U+AC00-U+D7FF
    private static readonly (int Lo, int Hi)[] LlmCjkRanges = [(0x4E00, 0x9FA5), (0x0800, 0x4E00), (0xAC00, 0xD7FF)];

    // built last: static fields initialize in textual order and BuildBmp reads the range tables above
    private static readonly CharClass[] Bmp = BuildBmp();

    /// <summary>The class bits of one Unicode scalar value.</summary>
    public static CharClass Of(int codePoint) =>
        (uint)codePoint < (uint)Bmp.Length ? Bmp[codePoint] : Compute(codePoint);

    private static CharClass[] BuildBmp()
    {
        var table = new CharClass[0x10000];
        for (int c = 0; c < table.Length; c++)
            table[c] = Compute(c);
        return table;
    }

    private static CharClass Compute(int cp)
    {
        CharClass k = CharClass.None;
        if (cp is >= 0xD800 and <= 0xDFFF)
            return k; // lone surrogates never reach the matchers (Encode replaces them with U+FFFD)
        switch (CharUnicodeInfo.GetUnicodeCategory(cp))
        {
            case UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter:
                k |= CharClass.Letter | CharClass.Word;
                break;
            case UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark:
                k |= CharClass.Mark | CharClass.Word;
                break;
            case UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber:
                k |= CharClass.Number | CharClass.RustNumeric | CharClass.Word;
                break;
            case UnicodeCategory.OtherNumber:
                k |= CharClass.Number | CharClass.RustNumeric;
                break;
            case UnicodeCategory.ConnectorPunctuation:
                k |= CharClass.Punct | CharClass.Word;
                break;
            case UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
                or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
                or UnicodeCategory.OtherPunctuation:
                k |= CharClass.Punct;
                break;
            case UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
                or UnicodeCategory.OtherSymbol:
                k |= CharClass.Symbol;
                break;
        }
        // Unicode 17 numbers (Tolong Siki digits U+11DE0-U+11DE9, U+16FF4-U+16FF6) that Rust's tables know and
        // the Unicode 16 tables of .NET 10 (and of the Oniguruma behind \p{N}) do not
        if (cp is (>= 0x11DE0 and <= 0x11DE9) or (>= 0x16FF4 and <= 0x16FF6))
            k |= CharClass.RustNumeric;
        if (IsWhiteSpace(cp))
            k |= CharClass.Space;
        if (cp is '\r' or '\n')
            k |= CharClass.CrLf;
        if (cp is 0x200C or 0x200D)
            k |= CharClass.Word; // Join_Control
        if (cp < 0x80)
        {
            if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z'))
                k |= CharClass.AsciiLetter;
            else if ((cp >= '!' && cp <= '/') || (cp >= ':' && cp <= '@') || (cp >= '[' && cp <= '`') || (cp >= '{' && cp <= '~'))
                k |= CharClass.AsciiPunct;
        }
        if (InRanges(cp, V3CjkRanges))
            k |= CharClass.V3Cjk;
        if (InRanges(cp, LlmLetterRanges))
            k |= CharClass.LlmLetter;
        if (InRanges(cp, LlmPunctRanges))
            k |= CharClass.LlmPunct;
        if (InRanges(cp, LlmCjkRanges))
            k |= CharClass.LlmCjk;
        return k;
    }

    // White_Space (PropList.txt), which is what Oniguruma's \s and Rust's char::is_whitespace test
    private static bool IsWhiteSpace(int cp) =>
        cp is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A)
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    private static bool InRanges(int cp, (int Lo, int Hi)[] ranges)
    {
        foreach ((int lo, int hi) in ranges)
        {
            if (cp >= lo && cp <= hi)
                return true;
        }
        return false;
    }
}
