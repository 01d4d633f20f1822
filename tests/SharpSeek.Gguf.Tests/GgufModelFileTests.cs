// GgufModel.Open: one parse of a GGUF file gives the configuration, the tokenizer and the weights, exactly as the
// separate static loaders do, and the mapping lives until both the file object and every loaded model are disposed.
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tensors;
using SharpSeek.Tests;
using SharpSeek.Tokenizer;

namespace SharpSeek.Gguf.Tests;

public sealed class GgufModelFileTests(ConvertedFixtures files) : IClassFixture<ConvertedFixtures>
{
    private static int[] Ids(ModelConfig c) => Enumerable.Range(0, 7).Select(i => (i * 37 + 5) % c.VocabSize).ToArray();

    [Fact]
    public void Config_tokenizer_and_weights_come_from_one_open_file()
    {
        string path = files.Gguf("v3-tiny", GgufFileType.Q8_0);
        ModelConfig config = GgufModel.LoadConfig(path);
        BpeTokenizer tokenizer = GgufModel.LoadTokenizer(path)!;
        float[] want = FixtureModels.SharpSeekLogits(path, Ids(config));
        using GgufModelFile m = GgufModel.Open(path);
        Assert.Equal(path, m.Path);
        Assert.Equal(config with { EosTokenIds = [] }, m.Config with { EosTokenIds = [] });
        Assert.Equal(config.EosTokenIds, m.Config.EosTokenIds);
        Assert.Same(m.Config, m.Config);
        Assert.Equal(tokenizer.Encode("hello world"), m.Tokenizer!.Encode("hello world"));
        using ModelWeights w = m.LoadWeights();
        Assert.Same(m.Config, w.Config);
        Assert.Equal(want, new Transformer(w).Logits(Ids(config)));
    }

    [Fact]
    public void Weights_outlive_the_file_object_and_the_file_outlives_disposed_weights()
    {
        string path = files.Gguf("v2-lite-tiny", GgufFileType.BF16);
        ModelConfig c = GgufModel.LoadConfig(path);
        var f32 = new LoadOptions { Dtype = WeightFormat.F32 };
        float[] want;
        using (ModelWeights w = GgufModel.Load(path, c, f32))
            want = new Transformer(w).Logits(Ids(c));
        ModelWeights first, second;
        using (GgufModelFile m = GgufModel.Open(path))
        {
            first = m.LoadWeights();
            first.Dispose(); // the file stays open for the next load
            second = m.LoadWeights(c, f32);
        }
        Assert.Throws<ObjectDisposedException>(() => DisposedFile(path).File);
        using (second)
            Assert.Equal(want, new Transformer(second).Logits(Ids(c)));
    }

    [Fact]
    public void A_file_without_tokenizer_metadata_has_a_null_tokenizer_and_bad_configs_fail_on_first_use()
    {
        using var dir = new TempDir();
        string bare = dir.File("bare.gguf");
        SampleGguf.Writer().Save(bare);
        using GgufModelFile m = GgufModel.Open(bare);
        Assert.Null(m.Tokenizer);
        Assert.Throws<NotSupportedException>(() => m.Config);
        Assert.Throws<NotSupportedException>(() => m.LoadWeights());
    }

    private static GgufModelFile DisposedFile(string path)
    {
        GgufModelFile m = GgufModel.Open(path);
        m.Dispose();
        return m;
    }
}
