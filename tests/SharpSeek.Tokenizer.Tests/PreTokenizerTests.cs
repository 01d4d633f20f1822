// The public pieces that BPE training uses: the DeepSeek-V3 pre-tokenizer on hand-checked splits, the GPT-2
// byte alphabet, plain-text encoding, and ids equal to the Rust tokenizer's on the V3 tokenizer.json.
namespace SharpSeek.Tokenizer.Tests;

public sealed class PreTokenizerTests
{
    private static readonly PreTokenizer V3 = new(PreTokenizerKind.DeepSeekV3);

    private static List<string> Split(string text)
    {
        var ranges = new List<Range>();
        V3.Split(text, ranges);
        return ranges.Select(r => text[r]).ToList();
    }

    [Theory]
    [InlineData("Hello, world! 12345", new[] { "Hello", ",", " world", "!", " ", "123", "45" })]
    [InlineData("I'm  here\n\n  ok", new[] { "I", "'m", " ", " here", "\n\n", " ", " ok" })]
    [InlineData("hi 😀😀!", new[] { "hi", " 😀😀!" })]
    [InlineData("中文abc日本語のテキスト", new[] { "中文", "abc", "日本語のテキスト" })]
    [InlineData("テキスト・データ", new[] { "テキスト", "・", "データ" })]
    [InlineData("end.\r\n\tnext", new[] { "end", ".\r\n", "\tnext" })]
    [InlineData("x.com e\u0301t\u00e9", new[] { "x", ".com", " e\u0301t\u00e9" })]
    [InlineData("a   ", new[] { "a", "   " })]
    [InlineData("", new string[0])]
    public void Splits_like_the_regex_sequence(string text, string[] expected)
    {
        Assert.Equal(expected, Split(text));
    }

    [Fact]
    public void Pieces_cover_the_text_and_are_appended()
    {
        const string text = "Mixed: 3.14159, ½ and Ⅻ;\u00a0nbsp\u3000x  \t\n end";
        Assert.Equal(text, string.Concat(Split(text)));
        var ranges = new List<Range> { 0..1 };
        V3.Split("ab cd", ranges);
        Assert.Equal([0..1, 0..2, 2..5], ranges);
        Assert.Equal(PreTokenizerKind.DeepSeekV3, V3.Kind);
        Assert.Throws<ArgumentNullException>(() => V3.Split("x", (List<Range>)null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PreTokenizer((PreTokenizerKind)7));
    }

    [Fact]
    public void V3_split_patterns_are_the_ones_the_loader_recognises()
    {
        System.Text.Json.JsonElement steps = TestData.ReadJson("deepseek-v3-tokenizer", "tokenizer.json")
            .GetProperty("pre_tokenizer").GetProperty("pretokenizers");
        List<string> patterns = steps.EnumerateArray().Where(s => s.GetProperty("type").GetString() == "Split")
            .Select(s => s.GetProperty("pattern").GetProperty("Regex").GetString()!).ToList();
        Assert.Equal(patterns, PreTokenizer.DeepSeekV3SplitPatterns);
    }

    [Fact]
    public void Byte_level_alphabet_is_gpt2s()
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
        Assert.Equal(all, order.Order().ToArray());
        for (int i = 1; i < 256; i++)
            Assert.True(ByteLevel.ToChar(order[i - 1]) < ByteLevel.ToChar(order[i]));
        Assert.Throws<ArgumentException>(() => ByteLevel.Decode("\u4e00"));
    }

    [Fact]
    public void Encodes_like_rust_with_the_deepseek_v3_vocabulary()
    {
        BpeTokenizer ours = TestData.V3;
        foreach (string text in TrickyTexts.All)
        {
            int[] expected = Oracle.Encode(Oracle.V3, text);
            Assert.Equal(expected, ours.Encode(text));
            Assert.Equal(expected, ours.EncodePlainText(text));
            Assert.Equal(text, ours.Decode(ours.Encode(text)));
        }
    }

    [Fact]
    public void Plain_text_encoding_matches_no_added_token()
    {
        BpeTokenizer t = TestData.V3;
        const string text = "a<｜User｜>b<think>c<｜end▁of▁sentence｜>";
        int[] plain = t.EncodePlainText(text);
        Assert.DoesNotContain(plain, id => t.AddedTokens.Any(a => a.Id == id));
        Assert.Equal(text, t.Decode(plain));
        Assert.Contains(t.TokenToId("<｜User｜>")!.Value, t.Encode(text));
        Assert.Empty(t.EncodePlainText(""));
        Assert.Throws<ArgumentNullException>(() => t.EncodePlainText(null!));
    }
}
