// tests/fixtures/tokenizer/encode_cases.json: ids from Hugging Face tokenizers 0.23.2 (no special tokens added)
// and the decoded text, for the DeepSeek-V3 tokenizer.
using System.Text.Json;

namespace SharpSeek.Tokenizer.Tests;

public sealed class EncodeCaseTests
{
    public static TheoryData<int> CaseIndices()
    {
        var data = new TheoryData<int>();
        int n = TestData.ReadJson("tokenizer", "encode_cases.json").GetProperty("cases").GetArrayLength();
        for (int i = 0; i < n; i++)
            data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void Ids_and_decoded_text_match_the_reference(int index)
    {
        JsonElement c = TestData.ReadJson("tokenizer", "encode_cases.json").GetProperty("cases")[index];
        string text = c.GetProperty("text").GetString()!;
        int[] want = TestData.Ints(c.GetProperty("ids"));

        int[] got = TestData.V3.Encode(text);

        Assert.Equal(want, got);
        Assert.Equal(c.GetProperty("decoded").GetString(), TestData.V3.Decode(got));
        Assert.Equal(text, TestData.V3.Decode(got)); // byte-level BPE round-trips exactly
    }

    [Fact]
    public void Encoding_with_special_tokens_adds_bos_as_tokenizer_config_asks()
    {
        BpeTokenizer t = TestData.V3;
        Assert.Equal(0, t.BosId);
        Assert.Equal(1, t.EosId);
        Assert.Equal([0, 19923, 14, 2058, 3], t.Encode("Hello, world!", addSpecialTokens: true));
        Assert.Equal([19923, 14, 2058, 3], t.Encode("Hello, world!"));
    }

    [Fact]
    public void Vocabulary_lookups()
    {
        BpeTokenizer t = TestData.V3;
        Assert.Equal(128815, t.VocabSize);
        Assert.Equal(128803, t.TokenToId("<｜User｜>"));
        Assert.Equal("<｜User｜>", t.IdToToken(128803));
        Assert.Equal(19923, t.TokenToId("Hello"));
        Assert.Equal("ĠHello", t.IdToToken(45948));
        Assert.Null(t.TokenToId("no such token here"));
        Assert.Null(t.IdToToken(-1));
        Assert.Null(t.IdToToken(t.VocabSize));
        Assert.True(t.IsSpecial(0));
        Assert.False(t.IsSpecial(128803)); // <｜User｜> is an added token but not special
        Assert.Contains(t.SpecialTokens, a => a.Content == "<｜end▁of▁sentence｜>");
        Assert.Equal(818, t.AddedTokens.Count);
        Assert.Equal(PreTokenizerKind.DeepSeekV3, t.PreTokenizer);
    }

    [Fact]
    public void Decode_skips_special_tokens_only_when_asked()
    {
        BpeTokenizer t = TestData.V3;
        int[] ids = t.Encode("<｜begin▁of▁sentence｜><｜User｜>Hi<｜end▁of▁sentence｜>");
        Assert.Equal([0, 128803, 23166, 1], ids);
        Assert.Equal("<｜begin▁of▁sentence｜><｜User｜>Hi<｜end▁of▁sentence｜>", t.Decode(ids));
        Assert.Equal("<｜User｜>Hi", t.Decode(ids, skipSpecialTokens: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([t.VocabSize]));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([-1]));
    }
}
