// The tokenizer section: the DeepSeek-V3 tokenizer.json written into GGUF and read back encodes every fixture case
// to the Hugging Face ids, both with our tokenizer and with llama.cpp's (vocabulary-only load).
using System.Text.Json;
using SharpSeek.Formats.Gguf;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tests;
using SharpSeek.Tokenizer;

namespace SharpSeek.Gguf.Tests;

public sealed class GgufTokenizerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _gguf;
    private static readonly string TokenizerDir = Path.Combine(Fixtures.Root, "deepseek-v3-tokenizer");

    public GgufTokenizerTests()
    {
        // a vocabulary-only file with the real V3 metadata, as llama.cpp's --vocab-only loads it
        ModelConfig c = ModelConfig.Load(Path.Combine(Fixtures.Root, "configs", "deepseek-v3.json"));
        var w = new GgufWriter();
        GgufExport.WriteMetadata(w, c, GgufFileType.BF16, "DeepSeek-V3 vocabulary");
        GgufTokenizer.Write(w, Path.Combine(TokenizerDir, "tokenizer.json"), c.VocabSize, c.BosTokenId, c.EosTokenIds[0]);
        _gguf = _dir.File("v3-vocab.gguf");
        w.Save(_gguf);
    }

    public void Dispose() => _dir.Dispose();

    private static IEnumerable<(string Text, int[] Ids)> Cases()
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Root, "tokenizer", "encode_cases.json")));
        foreach (JsonElement e in doc.RootElement.GetProperty("cases").EnumerateArray())
            yield return (e.GetProperty("text").GetString()!, e.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray());
    }

    [Fact]
    public void Metadata_follows_the_llama_cpp_converter()
    {
        using GgufFile f = GgufFile.Open(_gguf);
        Assert.Equal("gpt2", f.GetString("tokenizer.ggml.model"));
        Assert.Equal("deepseek-v3", f.GetString("tokenizer.ggml.pre"));
        string[] tokens = f.GetStringArray("tokenizer.ggml.tokens")!;
        int[] types = f.GetInt32Array("tokenizer.ggml.token_type")!;
        // INT32 elements, as gguf-py writes them: current llama.cpp refuses any other type for token_type
        Assert.Equal(GgufValueType.Int32, f.Get("tokenizer.ggml.token_type")!.ElementType);
        Assert.Equal(129280, tokens.Length);
        Assert.Equal(tokens.Length, types.Length);
        Assert.Equal("<｜begin▁of▁sentence｜>", tokens[0]);
        Assert.Equal(GgufTokenizer.Control, types[0]);
        Assert.Equal(GgufTokenizer.Normal, types[1000]);
        Assert.Equal("[PAD129279]", tokens[^1]); // padded to vocab_size
        Assert.Equal(GgufTokenizer.Unused, types[^1]);
        Assert.Equal(127741, f.GetStringArray("tokenizer.ggml.merges")!.Length);
        Assert.Equal(0L, f.GetInteger("tokenizer.ggml.bos_token_id"));
        Assert.Equal(1L, f.GetInteger("tokenizer.ggml.eos_token_id"));
        Assert.Equal(GgufValueType.UInt32, f.Get("tokenizer.ggml.bos_token_id")!.Type);
        Assert.Contains("bos_token", f.GetString("tokenizer.chat_template"));
    }

    [Fact]
    public void Tokenizer_read_back_encodes_like_Hugging_Face()
    {
        using GgufFile f = GgufFile.Open(_gguf);
        BpeTokenizer t = GgufTokenizer.Load(f)!;
        BpeTokenizer hf = BpeTokenizer.LoadFromDirectory(TokenizerDir);
        Assert.Equal(PreTokenizerKind.DeepSeekV3, t.PreTokenizer);
        Assert.Equal(hf.BosId, t.BosId);
        Assert.Equal(hf.EosId, t.EosId);
        Assert.Equal(hf.Config!.ChatTemplate, t.Config!.ChatTemplate);
        Assert.Equal(hf.Config.AddBosToken, t.Config.AddBosToken);
        int n = 0;
        foreach ((string text, int[] ids) in Cases())
        {
            Assert.Equal(ids, t.Encode(text));
            Assert.Equal(hf.Decode(ids), t.Decode(ids));
            n++;
        }
        Assert.True(n >= 10, $"only {n} cases");
        Assert.Equal(hf.Encode("<｜User｜>hi<｜Assistant｜>"), t.Encode("<｜User｜>hi<｜Assistant｜>"));
    }

    [Fact]
    public void Model_level_entry_point_reads_the_tokenizer()
    {
        BpeTokenizer? t = GgufModel.LoadTokenizer(_gguf);
        Assert.NotNull(t);
        Assert.Equal([19923, 14, 2058, 3], t!.Encode("Hello, world!"));
    }

    [Fact]
    public void Model_paths_resolve_to_the_gguf_or_directory_tokenizer()
    {
        Assert.NotNull(GgufModel.TryLoadTokenizerFor(_gguf));
        Assert.NotNull(GgufModel.TryLoadTokenizerFor(TokenizerDir));
        Assert.Null(GgufModel.TryLoadTokenizerFor(_dir.Path));
        BpeTokenizer fromGguf = GgufModel.LoadTokenizerFor(_gguf), fromDir = GgufModel.LoadTokenizerFor(TokenizerDir);
        Assert.Equal(fromDir.Encode("Hello, world! <think>x</think>"), fromGguf.Encode("Hello, world! <think>x</think>"));

        var w = new GgufWriter();
        w.Add("general.architecture", "deepseek2");
        string bare = _dir.File("bare.gguf");
        w.Save(bare);
        Assert.Null(GgufModel.TryLoadTokenizerFor(bare));
        var e = Assert.Throws<InvalidDataException>(() => GgufModel.LoadTokenizerFor(bare));
        Assert.Contains("bare.gguf", e.Message);
    }

    [Fact]
    public void Llama_cpp_tokenizes_the_written_vocabulary_like_Hugging_Face()
    {
        var mismatches = new List<string>();
        foreach ((string text, int[] ids) in Cases())
        {
            int[] got = LlamaCpp.Tokenize(_gguf, text);
            if (!got.SequenceEqual(ids))
                mismatches.Add($"'{text}': llama.cpp [{string.Join(",", got)}], HF [{string.Join(",", ids)}]");
        }
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }

    [Fact]
    public void A_file_without_tokenizer_reads_as_none_and_unsupported_models_are_refused()
    {
        var w = new GgufWriter();
        w.Add("general.architecture", "deepseek2");
        using var ms = new MemoryStream();
        w.WriteTo(ms);
        using (GgufFile f = GgufFile.FromMemory(ms.ToArray(), "none.gguf"))
            Assert.Null(GgufTokenizer.Load(f));
        var s = new GgufWriter();
        s.Add("tokenizer.ggml.model", "llama");
        using var ms2 = new MemoryStream();
        s.WriteTo(ms2);
        using GgufFile g = GgufFile.FromMemory(ms2.ToArray(), "spm.gguf");
        var e = Assert.Throws<NotSupportedException>(() => GgufTokenizer.Load(g));
        Assert.Contains("spm.gguf", e.Message);
    }
}
