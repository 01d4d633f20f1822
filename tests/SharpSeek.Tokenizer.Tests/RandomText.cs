// Random test strings that stress the pre-tokenizers: mixtures of words, digit runs, whitespace runs, newlines,
// punctuation, CJK, emoji (ZWJ sequences, skin tones, flags), astral-plane and unassigned code points,
// combining marks, many scripts, and added tokens (whole, partial, glued to text).
using System.Text;

namespace SharpSeek.Tokenizer.Tests;

internal static class RandomText
{
    private static readonly string[] Spaces =
        [" ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", " \n", "\u00A0", "\u3000", "\u2003", "\u200B", "\u2028", "\u0085",
         "\u000B", "\u000C", "\u1680", "\u202F", "\uFEFF", "    ", "\t\t", " \r\n  "];
    private static readonly string[] Emoji =
        ["🚀", "🔥", "👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣", "❤️", "🏳️‍🌈", "😀", "🧑🏿‍💻", "🫠", "🪐", "©️", "™", "☺", "🀄"];
    private static readonly string[] Code =
        ["==", "->", "::", "/*", "*/", "0x1F", "1e-9", "i++", "\"q\"", "'s", "'t", "'re", "<<=", "=>", "#include", "${x}",
         "// ", "<br/>", "&amp;", "\\n", "@Override", "__init__", "a_b", "x.y", "f(x)", "[0]", "{}", "...", "—", "–"];
    private static readonly string[] Words =
        ["the", "The", "HELLO", "world", "Tokenizer", "naïve", "café", "Straße", "Ελληνικά", "Русский", "עברית",
         "العربية", "हिन्दी", "ไทย", "한국어", "日本語", "中文", "深度求索", "カタカナ", "ひらがな", "é", "e\u0301", "n\u0303",
         "ǅ", "ﬁ", "Ⅻ", "ℌ", "Ω", "K", "µ", "ŉ", "ɐ", "ʼ", "ΐ", "ᾳ", "Ꭰ", "ⓐ", "𝒜", "𝔘𝔫𝔦", "𐐀", "𞤀"];
    private static readonly string[] Digits =
        ["0", "7", "42", "123", "1234", "99999", "3.14159", "1,000,000", "٣٤٥", "۱۲", "０１２", "²", "½", "Ⅻ", "①", "𝟘𝟙",
         "१२३", "๓", "፩", "𑁦", "\U00011DE5", "\U00016FF5"];

    public static string Next(Random rng, IReadOnlyList<string> addedTokens)
    {
        var sb = new StringBuilder();
        int parts = rng.Next(1, 30);
        for (int p = 0; p < parts; p++)
        {
            switch (rng.Next(16))
            {
                case 0:
                    sb.Append(AsciiWord(rng));
                    break;
                case 1:
                    sb.Append(rng.Next(3) == 0 ? Pick(rng, Digits) : DigitRun(rng));
                    break;
                case 2:
                    for (int i = rng.Next(1, 4); i > 0; i--)
                        sb.Append(Pick(rng, Spaces));
                    break;
                case 3:
                    for (int i = rng.Next(1, 6); i > 0; i--)
                        sb.Append("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"[rng.Next(32)]);
                    break;
                case 4:
                    for (int i = rng.Next(1, 6); i > 0; i--)
                        sb.Append((char)(rng.Next(2) == 0 ? rng.Next(0x4E00, 0xA000) : rng.Next(0x3040, 0x3100)));
                    break;
                case 5:
                    sb.Append(Pick(rng, Emoji));
                    break;
                case 6:
                    sb.Append(RandomBmp(rng));
                    break;
                case 7:
                    sb.Append(char.ConvertFromUtf32(RandomAstral(rng)));
                    break;
                case 8:
                    string t = addedTokens[rng.Next(addedTokens.Count)];
                    sb.Append(rng.Next(4) == 0 ? t[..rng.Next(1, t.Length)] : t);
                    break;
                case 9:
                case 10:
                    sb.Append(Pick(rng, Words));
                    break;
                case 11:
                    sb.Append(Pick(rng, Code));
                    break;
                case 12:
                    sb.Append((char)rng.Next(0x2000, 0x2BFF)); // general punctuation, symbols, arrows, math
                    break;
                case 13:
                    sb.Append((char)rng.Next(0x0300, 0x0370)); // a combining mark on whatever came before
                    break;
                default:
                    sb.Append(' ').Append(AsciiWord(rng));
                    break;
            }
            if (rng.Next(3) == 0)
                sb.Append(' ');
        }
        return sb.ToString();
    }

    private static string Pick(Random rng, string[] items) => items[rng.Next(items.Length)];

    private static string AsciiWord(Random rng)
    {
        var sb = new StringBuilder();
        for (int i = rng.Next(1, 12); i > 0; i--)
            sb.Append((char)(rng.Next(2) == 0 ? 'a' + rng.Next(26) : 'A' + rng.Next(26)));
        return sb.ToString();
    }

    private static string DigitRun(Random rng)
    {
        var sb = new StringBuilder();
        for (int i = rng.Next(1, 16); i > 0; i--)
            sb.Append((char)('0' + rng.Next(10)));
        return sb.ToString();
    }

    private static string RandomBmp(Random rng)
    {
        while (true)
        {
            int c = rng.Next(0x20, 0x10000);
            if (!char.IsSurrogate((char)c))
                return ((char)c).ToString();
        }
    }

    private static int RandomAstral(Random rng)
    {
        return rng.Next(4) switch
        {
            0 => rng.Next(0x1F000, 0x1FB00), // emoji and symbols
            1 => rng.Next(0x10000, 0x20000), // plane 1
            2 => rng.Next(0x20000, 0x32000), // CJK extensions
            _ => rng.Next(0x10000, 0x110000),
        };
    }
}
