// Short texts that exercise every alternative of the DeepSeek-V3 pre-tokenizer (digit groups, CJK runs and the
// punctuation inside them, contractions, marks, white-space runs, emoji, controls). Also compiled into
// SharpSeek.Data.Tests, where tokenizers trained on them are checked against the Rust reference.
namespace SharpSeek.Tokenizer.Tests;

internal static class TrickyTexts
{
    public static readonly string[] All =
    [
        "Hello, world! 12345 and 1,234.56 ²³ ½ Ⅻ", "日本語のテキストです。漢字とカタカナ", "emoji 😀👍🏽 done 🇺🇸",
        "tab\there  and\u00a0nbsp\u3000ideographic", "e\u0301 combining \u0301alone x\u0300\u0301y",
        "line1\r\nline2\n\n\n  indented\n\t\ttabs  \n", "trailing spaces   ", "   leading", "a\u2028b\u2029c\u0085d",
        "'s don't I'm .com ...\"quoted\" (paren) [x] {y} <z>", "\u0001ctrl\u007f\u200bzw",
        "über café naïve Ελληνικά русский עברית العربية हिन्दी", "$100 €50 ¥20 £10 ++ -- ** // ## @@",
        "x=1;y=2;\nif(a<b){c();}\n", "    \n    \n", "   !!!\n\n", "١٢٣ ٤٥٦", "ﾊﾝｶｸ half-width", "ℌ𝔢𝔩𝔩𝔬 math",
        "ǅ titlecase", "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
        "テキスト・データ゛ひらがな", // U+30FB and U+309B sit inside the kana ranges of split 2 and are split again by split 3
    ];
}
