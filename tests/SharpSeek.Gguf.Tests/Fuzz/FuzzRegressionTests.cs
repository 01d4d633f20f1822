// One test per fuzzer finding (FuzzTests, bench/fuzz/run.sh): the input reduced to its cause, refused with an
// InvalidDataException or NotSupportedException naming the file instead of the crash or allocation the fuzzer saw.
using System.Text;
using System.Text.Json.Nodes;
using SharpSeek.Model;
using SharpSeek.Tokenizer;

namespace SharpSeek.Gguf.Tests;

public sealed class FuzzRegressionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string ConfigJson() => File.ReadAllText(Path.Combine(SharpSeek.Tests.Fixtures.Hf("v3-tiny"), "config.json"));

    private static T Refused<T>(Action load, string path) where T : Exception
    {
        T e = Assert.Throws<T>(load);
        Assert.Contains(path, e.Message);
        return e;
    }

    // finding: ArgumentException "An item with the same key has already been added" (JsonNode builds objects lazily)
    [Fact]
    public void Config_json_with_a_duplicate_key_is_invalid_data()
    {
        string json = ConfigJson().Replace("\"hidden_size\"", "\"moe_intermediate_size\": 7, \"hidden_size\"", StringComparison.Ordinal);
        var e = Refused<InvalidDataException>(() => ModelConfig.Parse(json, "dup/config.json"), "dup/config.json");
        Assert.Contains("duplicate", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    // finding: InvalidOperationException "Cannot read incomplete UTF-16 JSON text as string with missing low surrogate"
    [Fact]
    public void Config_json_with_an_unpaired_surrogate_escape_is_invalid_data()
    {
        string json = ConfigJson().Replace("\"deepseek_v3\"", "\"deepseek_v3\\ud800\"", StringComparison.Ordinal);
        Refused<InvalidDataException>(() => ModelConfig.Parse(json, "surrogate/config.json"), "surrogate/config.json");
    }

    // finding: OverflowException in WeightLoader.BuildLayer (a GGUF head_count of 536870916 times the head width)
    [Fact]
    public void A_head_count_whose_matrices_overflow_is_invalid_data_in_gguf_and_config_json()
    {
        ModelConfig c = ModelConfig.Load(SharpSeek.Tests.Fixtures.Hf("v3-tiny"));
        var g = new SharpSeek.Formats.Gguf.GgufWriter();
        SharpSeek.Model.Gguf.GgufExport.WriteMetadata(g, c with { NumAttentionHeads = 536_870_916 }, SharpSeek.Model.Gguf.GgufFileType.Q8_0, "overflow");
        string path = _dir.File("overflow.gguf");
        g.Save(path);
        using (var m = SharpSeek.Model.Gguf.GgufModel.Open(path))
            Assert.Contains("num_attention_heads", Refused<InvalidDataException>(() => _ = m.Config, path).Message);
        string json = ConfigJson().Replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 536870916", StringComparison.Ordinal);
        Assert.NotEqual(ConfigJson(), json);
        Refused<InvalidDataException>(() => ModelConfig.Parse(json, "heads/config.json"), "heads/config.json");
    }

    // finding: 800 MB and 8 GB allocated for a 790-byte config.json whose num_nextn_predict_layers was 10^8 / 10^9
    // (per-layer arrays sized before any tensor was looked up); the same for num_hidden_layers
    [Theory]
    [InlineData("num_nextn_predict_layers", 1, 100_000_000)]
    [InlineData("num_hidden_layers", 3, 1_000_000_007)]
    public void Layer_counts_beyond_any_model_are_invalid_data_before_anything_is_allocated(string field, int was, int value)
    {
        string json = ConfigJson().Replace($"\"{field}\": {was}", $"\"{field}\": {value}", StringComparison.Ordinal);
        Assert.NotEqual(ConfigJson(), json);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Refused<InvalidDataException>(() => ModelConfig.Parse(json, "layers/config.json"), "layers/config.json");
        Assert.Contains(field, e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10 << 20, "allocated more than 10 MB");
    }

    private string Tokenizer(Action<JsonObject> edit)
    {
        JsonObject o = JsonNode.Parse(FixtureModels.ByteLevelTokenizerJson())!.AsObject();
        edit(o);
        string path = _dir.File("tokenizer.json");
        File.WriteAllText(path, o.ToJsonString());
        return path;
    }

    [Fact]
    public void The_unmutated_tokenizer_loads() => BpeTokenizer.Load(Tokenizer(_ => { }));

    // findings: InvalidOperationException from JsonElement accessors on a value of the wrong kind
    [Theory]
    [InlineData("normalizer")]
    [InlineData("decoder")]
    [InlineData("model.type")]
    [InlineData("pre_tokenizer.type")]
    [InlineData("pre_tokenizer.pretokenizers.0")]
    public void Tokenizer_json_fields_of_the_wrong_kind_are_refused(string field)
    {
        string path = Tokenizer(o =>
        {
            string[] parts = field.Split('.');
            JsonNode parent = o;
            foreach (string p in parts[..^1])
                parent = int.TryParse(p, out int i) ? parent[i]! : parent[p]!;
            if (int.TryParse(parts[^1], out int k))
                parent[k] = 5;
            else
                parent[parts[^1]] = 5;
        });
        Exception e = Assert.ThrowsAny<Exception>(() => BpeTokenizer.Load(path));
        Assert.True(e is NotSupportedException or InvalidDataException, $"{field}: {e}");
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Tokenizer_json_added_token_id_as_a_string_is_invalid_data()
    {
        string path = Tokenizer(o => o["added_tokens"]![0]!["id"] = "0");
        Refused<InvalidDataException>(() => BpeTokenizer.Load(path), path);
    }

    // finding: InvalidOperationException "Cannot transcode invalid UTF-8 JSON text to UTF-16 string" (a vocabulary key)
    [Fact]
    public void Tokenizer_json_with_invalid_utf8_is_invalid_data()
    {
        string path = Tokenizer(_ => { });
        byte[] b = File.ReadAllBytes(path);
        int at = Encoding.UTF8.GetString(b).IndexOf("\"vocab\":{\"", StringComparison.Ordinal) + 10;
        b[at] = 0xFE;
        File.WriteAllBytes(path, b);
        Refused<InvalidDataException>(() => BpeTokenizer.Load(path), path);
    }

    // findings: InvalidOperationException "Cannot read incomplete UTF-16 JSON text" in a vocabulary key, an added token,
    // a pre-tokenizer step (strings are unescaped on access)
    [Theory]
    [InlineData("\"model\":")]
    [InlineData("\"content\":\"")]
    [InlineData("\"pattern\":{\"Regex\":\"")]
    public void Tokenizer_json_with_an_unpaired_surrogate_escape_is_invalid_data(string before)
    {
        string path = Tokenizer(_ => { });
        string text = File.ReadAllText(path);
        int at = text.IndexOf(before, StringComparison.Ordinal);
        Assert.True(at >= 0, before);
        at += before.Length;
        if (before == "\"model\":")
            at = text.IndexOf("\"vocab\":{\"", at, StringComparison.Ordinal) + 10;
        File.WriteAllText(path, text[..at] + "\\ud800" + text[at..]);
        Refused<InvalidDataException>(() => BpeTokenizer.Load(path), path);
    }

    // findings: IndexOutOfRangeException (an id of int.MaxValue overflowed the array size) and a 17 GB allocation
    // (a sparse id sized the id -> token arrays)
    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(1_000_000_000)]
    public void Tokenizer_json_ids_far_beyond_the_token_count_are_invalid_data(int id)
    {
        string vocabPath = Tokenizer(o => o["model"]!["vocab"]!["he"] = id);
        Refused<InvalidDataException>(() => BpeTokenizer.Load(vocabPath), vocabPath);
        string addedPath = Tokenizer(o => o["added_tokens"]![1]!["id"] = id);
        Refused<InvalidDataException>(() => BpeTokenizer.Load(addedPath), addedPath);
    }
}
