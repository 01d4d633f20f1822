// DeepSeek-V3.2 against llama.cpp (de3ff81, deepseek32) as the oracle: tests/fixtures/llama-cpp/deepseek32 holds a random
// V3.2 model whose indexer keeps 8 of up to 48 positions and llama.cpp's logits for every position (make.sh there). The
// ids are a 16-token prompt and the greedy continuation, so llama.cpp's argmax says whether it generates the same.
// llama.cpp scores the indexer in f32, hence IndexerPrecision.F32 here. 16 indexer heads keep exact score ties (all
// ReLUs zero, which torch.topk and ggml's partial_sort break arbitrarily) improbable.
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model.Gguf;
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;
using SharpSeek.Tests;
using Xunit;

namespace SharpSeek.Model.Tests;

public sealed class DeepSeek32OracleTests
{
    private static readonly string Dir = Path.Combine(Fixtures.Root, "llama-cpp", "deepseek32");
    private const int Prompt = 16;

    private static int[] Ids() => File.ReadAllText(Path.Combine(Dir, "ids.txt")).Trim().Split(',').Select(int.Parse).ToArray();

    private static float[] Reference(int T, int V)
    {
        using Checkpoint r = Checkpoint.FromFiles(Dir, [Path.Combine(Dir, "reference.safetensors")], null);
        return r.ReadFloats("logits", T, V);
    }

    private static ModelConfig Config() => ModelConfig.Load(Dir) with { IndexerPrecision = IndexerPrecision.F32 };

    [Fact]
    public void Prefill_logits_match_llama_cpp_at_every_position()
    {
        ModelConfig c = Config();
        using ModelWeights w = WeightLoader.Load(Dir, c);
        int[] ids = Ids();
        Assert.True(ids.Length > c.Indexer!.TopK * 4, "the fixture must be longer than top-k for the selection to matter");
        float[] want = Reference(ids.Length, c.VocabSize);
        var model = new Transformer(w);
        Numerics.AssertClose(want, model.Logits(ids), 1e-3, "deepseek32 prefill (auto) vs llama.cpp");
        Numerics.AssertClose(want, model.Logits(ids, new ForwardOptions { Attention = AttentionMode.Absorbed }), 1e-3, "deepseek32 absorbed vs llama.cpp");
    }

    [Fact]
    public void Token_by_token_decode_on_two_threads_matches_llama_cpp_and_generates_the_same()
    {
        ModelConfig c = Config();
        using ModelWeights w = WeightLoader.Load(Dir, c);
        using var be = new ThreadedBackend(2); // the decode path splits a query's index scores across workers
        var model = new Transformer(w, be);
        int[] ids = Ids();
        int V = c.VocabSize;
        float[] want = Reference(ids.Length, V);
        KvCache cache = model.CreateCache();
        var logits = new float[ids.Length * V];
        // the prompt in one chunk, then one token at a time
        TokenSlot[] pre = ids.Take(Prompt).Select((t, i) => new TokenSlot(0, i, t)).ToArray();
        model.Forward(pre, [cache], Enumerable.Range(0, Prompt).ToArray(), logits);
        var generated = new List<int>();
        for (int t = Prompt; t < ids.Length; t++)
        {
            generated.Add(ArgMax(logits.AsSpan((t - 1) * V, V)));
            model.Forward([new TokenSlot(0, t, ids[t])], [cache], [0], logits.AsSpan(t * V, V));
        }
        Numerics.AssertClose(want, logits, 1e-3, "deepseek32 cached decode vs llama.cpp");
        Assert.Equal(ids.Skip(Prompt).ToArray(), generated.ToArray());
        for (int t = Prompt - 1; t < ids.Length - 1; t++)
            Assert.Equal(ids[t + 1], ArgMax(want.AsSpan(t * V, V))); // llama.cpp's greedy choice is the same token
    }

    [Fact]
    public void Gguf_written_by_convert_loads_back_with_the_same_logits()
    {
        ModelConfig c = Config();
        using ModelWeights w = WeightLoader.Load(Dir, c);
        string path = Path.Combine(Path.GetTempPath(), $"sharpseek-ds32-{Guid.NewGuid():N}.gguf");
        try
        {
            GgufExport.Write(w, path, GgufFileType.F32, tokenizerJson: null);
            using GgufModelFile f = GgufModel.Open(path);
            Assert.Equal("deepseek_v32", f.Config.ModelType);
            Assert.Equal(c.Indexer, f.Config.Indexer);
            using ModelWeights g = f.LoadWeights(new LoadOptions { IndexerPrecision = IndexerPrecision.F32 });
            int[] ids = Ids();
            Numerics.AssertClose(Reference(ids.Length, c.VocabSize), new Transformer(g).Logits(ids), 1e-3, "deepseek32 GGUF round trip vs llama.cpp");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void The_selection_changes_the_logits_against_dense_attention()
    {
        ModelConfig c = Config();
        using ModelWeights w = WeightLoader.Load(Dir, c);
        var dense = new ModelWeights { Config = c with { ModelType = "deepseek_v3", Indexer = null }, Embed = w.Embed, Layers = w.Layers, Norm = w.Norm, LmHead = w.LmHead };
        int[] ids = Ids();
        float[] want = Reference(ids.Length, c.VocabSize);
        float[] d = new Transformer(dense).Logits(ids);
        int V = c.VocabSize, k = c.Indexer!.TopK;
        Numerics.AssertClose(want.AsSpan(0, k * V), d.AsSpan(0, k * V), 1e-3, "positions within top-k attend densely");
        double diff = Numerics.MaxAbsDiff(want.AsSpan(k * V), d.AsSpan(k * V));
        Assert.True(diff > 0.05, $"dense attention past top-k should differ from llama.cpp's sparse logits (max |diff| {diff})");
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++)
        {
            if (x[i] > x[best])
                best = i;
        }
        return best;
    }
}
