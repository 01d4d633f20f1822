// Loading: clear errors for bad files, and the in-memory and GGUF-shaped constructors give the same ids.
using System.Text.Json.Nodes;

namespace SharpSeek.Tokenizer.Tests;

public sealed class LoadingTests
{
    [Fact]
    public void Missing_file_and_directory_are_reported()
    {
        var e = Assert.Throws<FileNotFoundException>(() => BpeTokenizer.Load("/no/such/tokenizer.json"));
        Assert.Contains("/no/such/tokenizer.json", e.Message, StringComparison.Ordinal);
        Assert.Throws<DirectoryNotFoundException>(() => BpeTokenizer.LoadFromDirectory("/no/such/dir"));
        string empty = Directory.CreateTempSubdirectory("sharpseek-tok").FullName;
        try
        {
            var f = Assert.Throws<FileNotFoundException>(() => BpeTokenizer.Load(empty));
            Assert.Contains("no tokenizer.json", f.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    public static TheoryData<string, string, Type> BadFiles() => new()
    {
        { "{ not json", "not valid JSON", typeof(InvalidDataException) },
        { "[]", "expected a JSON object", typeof(InvalidDataException) },
        { """{"pre_tokenizer": null}""", "missing object field 'model'", typeof(InvalidDataException) },
        { """{"model": {"type": "Unigram", "vocab": []}}""", "model.type 'Unigram' is not supported", typeof(NotSupportedException) },
        { """{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}""", "pre_tokenizer", typeof(NotSupportedException) },
        { """{"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": {"type": "NFC"}}""", "normalizer", typeof(NotSupportedException) },
        { """{"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}}""", "model.byte_fallback", typeof(NotSupportedException) },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void Malformed_or_unsupported_files_name_the_file_and_field(string json, string message, Type exception)
    {
        string path = Path.Combine(Path.GetTempPath(), $"sharpseek-bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        try
        {
            Exception e = Assert.Throws(exception, () => BpeTokenizer.Load(path));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains(message, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("vocab", """{"a": "x"}""", "model.vocab['a'] must be a non-negative integer id")]
    [InlineData("merges", """["a b c"]""", "model.merges[0] 'a b c' is not two tokens")]
    [InlineData("merges", """["Ġ QQXQQXQQ"]""", "merge 0 uses 'QQXQQXQQ', which is not in the vocabulary")]
    public void Broken_vocabulary_or_merges_are_reported(string field, string value, string message)
    {
        JsonNode root = JsonNode.Parse(File.ReadAllText(TestData.TokenizerJsonPath))!;
        root["model"]![field] = JsonNode.Parse(value);
        string path = Oracle.WriteTemp(root);
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => BpeTokenizer.Load(path));
            Assert.Contains(message, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Merges_in_pair_form_and_ignore_merges_load()
    {
        JsonNode root = JsonNode.Parse(File.ReadAllText(TestData.TokenizerJsonPath))!;
        var pairs = new JsonArray();
        foreach (JsonNode? m in root["model"]!["merges"]!.AsArray())
        {
            string[] parts = m!.GetValue<string>().Split(' ');
            pairs.Add(new JsonArray(parts[0], parts[1]));
        }
        root["model"]!["merges"] = pairs;
        root["model"]!["ignore_merges"] = true;
        string path = Oracle.WriteTemp(root);
        try
        {
            BpeTokenizer ours = BpeTokenizer.Load(path);
            using var reference = new Tokenizers.DotNet.Tokenizer(path);
            var rng = new Random(3);
            for (int i = 0; i < 300; i++)
            {
                string text = RandomText.Next(rng, ["<｜User｜>"]);
                Assert.Equal(Oracle.Encode(reference, text), ours.Encode(text));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Gguf_shaped_vocabulary_gives_the_same_ids()
    {
        BpeTokenizer v3 = TestData.V3;
        // tokenizer.ggml.tokens / merges / token_type as llama.cpp's converter writes them for DeepSeek-V3
        var tokens = new string[v3.VocabSize];
        var types = new int[v3.VocabSize];
        for (int id = 0; id < tokens.Length; id++)
        {
            tokens[id] = v3.IdToToken(id)!;
            types[id] = 1;
        }
        foreach (AddedToken t in v3.AddedTokens)
            types[t.Id] = t.Special ? 3 : 4;
        JsonNode root = JsonNode.Parse(File.ReadAllText(TestData.TokenizerJsonPath))!;
        string[] merges = root["model"]!["merges"]!.AsArray().Select(m => m!.GetValue<string>()).ToArray();

        BpeTokenizer gguf = BpeTokenizer.CreateFromGguf(tokens, merges, types,
            BpeTokenizer.ParsePreTokenizer("deepseek-v3"), v3.Config);

        Assert.Equal(v3.VocabSize, gguf.VocabSize);
        Assert.Equal(v3.BosId, gguf.BosId);
        var rng = new Random(21);
        string[] added = v3.AddedTokens.Select(a => a.Content).ToArray();
        for (int i = 0; i < 500; i++)
        {
            string text = RandomText.Next(rng, added);
            Assert.Equal(v3.Encode(text), gguf.Encode(text));
        }
        Assert.True(gguf.IsSpecial(1));
        Assert.False(gguf.IsSpecial(128803));
        Assert.Throws<NotSupportedException>(() => BpeTokenizer.ParsePreTokenizer("llama3"));
        Assert.Throws<InvalidDataException>(() => BpeTokenizer.CreateFromGguf(tokens, ["a b c"], types, PreTokenizerKind.DeepSeekV3));
        Assert.Throws<InvalidDataException>(() => BpeTokenizer.CreateFromGguf(tokens, merges, [1, 2], PreTokenizerKind.DeepSeekV3));
    }

    [Fact]
    public void In_memory_vocabulary_with_both_pre_tokenizers()
    {
        // a toy byte-level vocabulary: the 256 byte chars, "ab", "abc" and one added token
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 256; b++)
            vocab[ByteLevel.ByteToChar[b].ToString()] = b;
        vocab["ab"] = 256;
        vocab["abc"] = 257;
        AddedToken eot = new(258, "<eot>", Special: true);
        foreach (PreTokenizerKind kind in Enum.GetValues<PreTokenizerKind>())
        {
            BpeTokenizer t = BpeTokenizer.Create(vocab, [("a", "b"), ("ab", "c")], [eot], kind);
            Assert.Equal(259, t.VocabSize);
            Assert.Equal([257, 'x', 258, 256], t.Encode("abcx<eot>ab"));
            Assert.Equal("abcx", t.Decode([257, 'x', 258], skipSpecialTokens: true));
        }
        Assert.Equal([256, 'c'], BpeTokenizer.Create(vocab, [("a", "b")], [], PreTokenizerKind.DeepSeekV3).Encode("abc"));
        Assert.Throws<InvalidDataException>(() => BpeTokenizer.Create(vocab, [("a", "q q")], [], PreTokenizerKind.DeepSeekV3));
    }

    [Fact]
    public void Encoding_from_several_threads_gives_the_same_ids()
    {
        BpeTokenizer t = TestData.V3;
        var rng = new Random(17);
        string[] inputs = Enumerable.Range(0, 400).Select(_ => RandomText.Next(rng, ["<｜User｜>"])).ToArray();
        int[][] want = inputs.Select(s => t.Encode(s)).ToArray();
        Parallel.For(0, inputs.Length * 4, i => Assert.Equal(want[i % inputs.Length], t.Encode(inputs[i % inputs.Length])));
    }

    [Fact]
    public void Lone_surrogates_encode_as_the_replacement_character()
    {
        BpeTokenizer t = TestData.V3;
        Assert.Equal(t.Encode("a\uFFFDb"), t.Encode("a\uD800b"));
        Assert.Equal(t.Encode("\uFFFD\uFFFD"), t.Encode("\uDC00\uD800"));
    }
}
