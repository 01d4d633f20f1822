// DeepSeek-V3 pre-tokenization: hand-checked splits, and agreement with the Rust tokenizer on V3's own
// tokenizer.json (128k merges), where any difference in pre-token boundaries changes the ids.
namespace SharpSeek.Data.Tests;

public sealed class PreTokenizerTests
{
    [Theory]
    [InlineData("Hello, world! 12345", new[] { "Hello", ",", " world", "!", " ", "123", "45" })]
    [InlineData("I'm  here\n\n  ok", new[] { "I", "'m", " ", " here", "\n\n", " ", " ok" })]
    [InlineData("hi 😀😀!", new[] { "hi", " 😀😀!" })]
    [InlineData("中文abc日本語のテキスト", new[] { "中文", "abc", "日本語のテキスト" })]
    [InlineData("end.\r\n\tnext", new[] { "end", ".\r\n", "\tnext" })]
    [InlineData("x.com e\u0301t\u00e9", new[] { "x", ".com", " e\u0301t\u00e9" })]
    [InlineData("a   ", new[] { "a", "   " })]
    [InlineData("", new string[0])]
    public void SplitsLikeTheRegexSequence(string text, string[] expected)
    {
        Assert.Equal(expected, PreTokenizer.Split(text));
    }

    [Fact]
    public void PiecesCoverTheText()
    {
        const string text = "Mixed: 3.14159, ½ and Ⅻ;\u00a0nbsp\u3000x  \t\n end";
        Assert.Equal(text, string.Concat(PreTokenizer.Split(text)));
    }

    [Fact]
    public void ByteLevelAlphabetIsGpt2s()
    {
        Assert.Equal('Ġ', ByteLevel.ToChar((byte)' '));
        Assert.Equal('Ā', ByteLevel.ToChar(0));
        Assert.Equal('Ċ', ByteLevel.ToChar((byte)'\n'));
        Assert.Equal('a', ByteLevel.ToChar((byte)'a'));
        byte[] all = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        Assert.Equal(all, ByteLevel.Decode(ByteLevel.Encode(all)));
        byte[] order = ByteLevel.BytesInVocabularyOrder();
        Assert.Equal((byte)'!', order[0]);
        Assert.Equal(0xAD, order[^1]);
        Assert.Throws<ArgumentException>(() => ByteLevel.Decode("\u4e00"));
    }

    public static readonly string[] TrickyTexts =
    [
        "Hello, world! 12345 and 1,234.56 ²³ ½ Ⅻ", "日本語のテキストです。漢字とカタカナ", "emoji 😀👍🏽 done 🇺🇸",
        "tab\there  and\u00a0nbsp\u3000ideographic", "e\u0301 combining \u0301alone x\u0300\u0301y",
        "line1\r\nline2\n\n\n  indented\n\t\ttabs  \n", "trailing spaces   ", "   leading", "a\u2028b\u2029c\u0085d",
        "'s don't I'm .com ...\"quoted\" (paren) [x] {y} <z>", "\u0001ctrl\u007f\u200bzw",
        "über café naïve Ελληνικά русский עברית العربية हिन्दी", "$100 €50 ¥20 £10 ++ -- ** // ## @@",
        "x=1;y=2;\nif(a<b){c();}\n", "    \n    \n", "   !!!\n\n", "١٢٣ ٤٥٦", "ﾊﾝｶｸ half-width", "ℌ𝔢𝔩𝔩𝔬 math",
        "ǅ titlecase", "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    ];

    [Fact]
    public void EncodesLikeRustWithDeepSeekV3Vocabulary()
    {
        string path = Path.Combine(SharpSeek.Tests.Fixtures.Root, "deepseek-v3-tokenizer", "tokenizer.json");
        BpeModel model = BpeModel.Load(path);
        using var rust = new Tokenizers.DotNet.Tokenizer(path);
        foreach (string text in TrickyTexts)
        {
            uint[] expected = rust.Encode(text);
            Assert.Equal(expected.Select(id => (int)id).ToArray(), model.Encode(text));
            Assert.Equal(text, model.Decode(model.Encode(text)));
        }
    }
}
