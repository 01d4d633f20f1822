// StreamingDecoder: pieces concatenate to Decode, and no piece ends inside a UTF-8 character.
namespace SharpSeek.Tokenizer.Tests;

public sealed class StreamingDecoderTests
{
    [Fact]
    public void Holds_back_a_character_split_across_tokens()
    {
        BpeTokenizer t = TestData.V3;
        int[] ids = t.Encode("🚀"); // four UTF-8 bytes that BPE leaves in more than one token
        Assert.True(ids.Length > 1);
        StreamingDecoder d = t.CreateStreamingDecoder();
        for (int i = 0; i < ids.Length - 1; i++)
            Assert.Equal("", d.Push(ids[i]));
        Assert.True(d.PendingByteCount > 0);
        Assert.Equal("🚀", d.Push(ids[^1]));
        Assert.Equal(0, d.PendingByteCount);
        Assert.Equal("", d.Flush());
    }

    [Fact]
    public void Pieces_of_real_text_concatenate_to_the_text()
    {
        BpeTokenizer t = TestData.V3;
        var rng = new Random(7);
        string[] added = t.AddedTokens.Select(a => a.Content).ToArray();
        for (int n = 0; n < 500; n++)
        {
            string text = RandomText.Next(rng, added);
            StreamingDecoder d = t.CreateStreamingDecoder();
            var sb = new System.Text.StringBuilder();
            foreach (int id in t.Encode(text))
            {
                string piece = d.Push(id);
                Assert.False(piece.Length > 0 && char.IsHighSurrogate(piece[^1]), "a piece ends inside a surrogate pair");
                Assert.DoesNotContain('\uFFFD', piece.Except(text));
                sb.Append(piece);
            }
            sb.Append(d.Flush());
            Assert.Equal(text, sb.ToString());
        }
    }

    [Fact]
    public void Random_ids_stream_to_what_decode_returns()
    {
        BpeTokenizer t = TestData.V3;
        var rng = new Random(9);
        for (int n = 0; n < 2000; n++)
        {
            var ids = new int[rng.Next(1, 30)];
            for (int i = 0; i < ids.Length; i++)
                ids[i] = rng.Next(3) == 0 ? rng.Next(0, 256) : rng.Next(0, t.VocabSize);
            bool skip = rng.Next(2) == 0;
            StreamingDecoder d = t.CreateStreamingDecoder(skip);
            string streamed = string.Concat(ids.Select(d.Push)) + d.Flush();
            Assert.Equal(t.Decode(ids, skip), streamed);
        }
    }

    [Fact]
    public void Skips_special_tokens_when_asked_and_reset_drops_pending_bytes()
    {
        BpeTokenizer t = TestData.V3;
        StreamingDecoder d = t.CreateStreamingDecoder(skipSpecialTokens: true);
        Assert.Equal("", d.Push(1));
        Assert.Equal("<｜User｜>", d.Push(128803)); // added but not special
        int[] rocket = t.Encode("🚀");
        d.Push(rocket[0]);
        d.Reset();
        Assert.Equal(0, d.PendingByteCount);
        Assert.Equal("Hello", d.Push(t.Encode("Hello")[0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Push(t.VocabSize));
    }
}
