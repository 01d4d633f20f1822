// DeepSeek-V3.2's lightning indexer (Layers/Indexer.cs, Tensors/IndexerKernels.cs) against scalar references written here
// from DeepSeek-V3.2-Exp inference/model.py and kernel.py, and the sparse MLA paths (prefill masks, decode gathers) against
// each other and against dense attention.
using SharpSeek.Model.Architecture;
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;
using SharpSeek.Tests;
using Xunit;

namespace SharpSeek.Model.Tests;

public sealed class IndexerTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sharpseek-indexer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
            Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A tiny V3.2 shape: 2 layers (one dense, one MoE) + MTP, an indexer of 4 heads x 32 keeping <paramref name="topK"/> positions.</summary>
    public static ModelConfig Tiny(int topK, IndexerPrecision precision = IndexerPrecision.Fp8) => new()
    {
        ModelType = "deepseek_v32",
        VocabSize = 96,
        HiddenSize = 64,
        IntermediateSize = 96,
        MoeIntermediateSize = 32,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        QLoraRank = 32,
        KvLoraRank = 32,
        QkNopeHeadDim = 16,
        QkRopeHeadDim = 8,
        VHeadDim = 16,
        NRoutedExperts = 4,
        NSharedExperts = 1,
        NumExpertsPerTok = 2,
        NGroup = 2,
        TopkGroup = 1,
        TopkMethod = TopKMethod.NoAuxTc,
        ScoringFunc = ScoringFunc.Sigmoid,
        NormTopkProb = true,
        RoutedScalingFactor = 2.5,
        FirstKDenseReplace = 1,
        NumNextnPredictLayers = 1,
        MaxPositionEmbeddings = 512,
        Indexer = new IndexerConfig(4, 32, topK),
        IndexerPrecision = precision,
    };

    private ModelWeights Load(ModelConfig c)
    {
        string dir = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        SyntheticModel.Write(c, dir, seed: 7);
        return WeightLoader.Load(dir, c);
    }

    private static int[] Ids(int n, int V)
    {
        var ids = new int[n];
        for (int i = 0; i < n; i++)
            ids[i] = (i * 37 + 11) % V;
        return ids;
    }

    // ---- kernels against their scalar references ----

    [Theory]
    [InlineData(8)]
    [InlineData(32)]
    [InlineData(128)]
    public void Hadamard_is_the_scaled_Sylvester_matrix(int n)
    {
        var rng = new Random(n);
        float[] x = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var want = new float[n];
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int j = 0; j < n; j++)
                s += (System.Numerics.BitOperations.PopCount((uint)(i & j)) % 2 == 0 ? 1 : -1) * x[j];
            want[i] = (float)(s / Math.Sqrt(n));
        }
        IndexerKernels.Hadamard(x);
        Numerics.AssertClose(want, x, 1e-5, "Hadamard");
        Assert.Throws<ArgumentException>(() => IndexerKernels.Hadamard(new float[12]));
    }

    // kernel.py act_quant (round_scale) written out: amax with floor 1e-4, scale 2^ceil(log2(amax/448)), x/scale clamped, e4m3
    private static (byte[] Q, float Scale) ActQuant(float[] x)
    {
        float amax = Math.Max(x.Max(v => Math.Abs(v)), 1e-4f);
        float scale = MathF.Pow(2, MathF.Ceiling(MathF.Log2(amax / 448f)));
        return (x.Select(v => Fp8E4M3.FromFloat(Math.Clamp(v / scale, -448f, 448f))).ToArray(), scale);
    }

    [Fact]
    public void Fp8_quantization_is_act_quant_with_ue8m0_scales()
    {
        var rng = new Random(3);
        foreach (float mag in new[] { 1e-6f, 0.01f, 1f, 37f, 5000f })
        {
            float[] x = Enumerable.Range(0, 128).Select(_ => mag * ((float)rng.NextDouble() * 2 - 1)).ToArray();
            (byte[] want, float wantScale) = ActQuant(x);
            var q = new byte[128];
            float scale = IndexerKernels.QuantizeBlock(x, q);
            Assert.Equal(wantScale, scale);
            Assert.Equal(want, q);
            Assert.Equal(MathF.Log2(scale), MathF.Round(MathF.Log2(scale))); // a power of two
        }
        Assert.Equal(0.5f, IndexerKernels.PowerOfTwoCeil(0.5f));
        Assert.Equal(1f, IndexerKernels.PowerOfTwoCeil(0.75f));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Key_cache_scores_match_the_scalar_reference(bool fp8)
    {
        const int D = 64, Hi = 3, n = 53;
        var rng = new Random(fp8 ? 1 : 2);
        float[] Rand(int k) => Enumerable.Range(0, k).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        var cache = new IndexerKeyCache(D, fp8);
        var keys = new float[n][];
        for (int s = 0; s < n; s++)
        {
            keys[s] = Rand(D);
            cache.Write(s, keys[s]);
        }
        float[] q = Rand(Hi * D), w = Rand(Hi);
        int groups = (n + 15) / 16;
        var scores = new float[groups * 16];
        cache.Scores(q, w, 0, groups, new float[D * 16], scores);
        var stored = new float[D];
        for (int s = 0; s < n; s++)
        {
            cache.Read(s, stored);
            if (!fp8)
                Assert.Equal(keys[s], stored);
            else
            {
                (byte[] qk, float sc) = ActQuant(keys[s]);
                Assert.Equal(qk.Select(b => Fp8E4M3.ToFloat(b) * sc).ToArray(), stored);
            }
            double want = 0;
            for (int h = 0; h < Hi; h++)
            {
                double dot = 0;
                for (int d = 0; d < D; d++)
                    dot += q[h * D + d] * stored[d];
                want += w[h] * Math.Max(dot, 0);
            }
            Assert.True(Math.Abs(want - scores[s]) < 1e-4, $"position {s}: {scores[s]} vs {want}");
        }
        Assert.Equal(n * IndexerKeyCache.BytesPerToken(D, fp8), cache.Bytes);
        IVariantCache copy = cache.Copy(20);
        cache.Truncate(10);
        Assert.Equal(10, cache.Length);
        Assert.Equal(20, copy.Length);
    }

    [Fact]
    public void TopK_keeps_the_highest_scores_lower_positions_first_on_ties()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 200; trial++)
        {
            int n = rng.Next(1, 300), k = rng.Next(1, 64);
            float[] s = Enumerable.Range(0, n).Select(_ => (float)rng.Next(0, 20)).ToArray(); // many ties
            var got = new int[Math.Min(k, n)];
            int count = IndexerKernels.TopK(s, k, got, new float[n]);
            int[] want = Enumerable.Range(0, n).OrderByDescending(i => s[i]).ThenBy(i => i).Take(k).Order().ToArray();
            Assert.Equal(want.Length, count);
            Assert.Equal(want, got);
        }
    }

    // ---- the indexer's selection against a scalar reference of model.py's Indexer ----

    [Theory]
    [InlineData(IndexerPrecision.Fp8)]
    [InlineData(IndexerPrecision.F32)]
    public void Selection_matches_a_scalar_reference_of_the_indexer(IndexerPrecision precision)
    {
        ModelConfig c = Tiny(topK: 5, precision);
        using ModelWeights weights = Load(c);
        const int T = 19;
        int H = c.HiddenSize, Dq = c.QLoraRank, half = c.QkRopeHeadDim / 2, Hi = c.Indexer!.Heads, D = c.Indexer.HeadDim;
        var rng = new Random(11);
        float[] x = Enumerable.Range(0, T * H).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        float[] cq = Enumerable.Range(0, T * Dq).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        var rope = new RotaryEmbedding(c);
        float[] cos = new float[T * half], sin = new float[T * half];
        for (int t = 0; t < T; t++)
            rope.CosSin(t, cos.AsSpan(t * half, half), sin.AsSpan(t * half, half));
        var slots = Enumerable.Range(0, T).Select(t => new TokenSlot(0, t, 0)).ToArray();
        var cache = new KvCache(c);
        var sel = new PositionSelection();
        AttentionWeights a = weights.Layers[1].Attn;
        c.GetAttentionVariant()!.CreateSelector().Select(ComputeBackend.Cpu, a, 1, slots, [cache], x, cq, cos, sin, sel);

        // reference: every q, k and weight from the definitions, then the scores and their top-k
        bool fp8 = precision == IndexerPrecision.Fp8;
        float[] Row(WeightMatrix m, ReadOnlySpan<float> v)
        {
            var y = new float[m.Rows];
            m.MatVec(v, y);
            return y;
        }
        var keys = new float[T][];
        var queries = new float[T][];
        var hw = new float[T][];
        for (int t = 0; t < T; t++)
        {
            float[] k = Row(a.Extensions.Matrix(TensorRole.IndexerWk), x.AsSpan(t * H, H));
            float[] g = a.Extensions.Vector(TensorRole.IndexerKNorm), b = a.Extensions.Vector(TensorRole.IndexerKNormBias);
            double mean = k.Average(), var = k.Select(v => (v - mean) * (v - mean)).Average();
            for (int d = 0; d < D; d++)
                k[d] = (float)((k[d] - mean) / Math.Sqrt(var + 1e-6)) * g[d] + b[d];
            RopeHalf(k, cos.AsSpan(t * half, half), sin.AsSpan(t * half, half));
            float[] q = Row(a.Extensions.Matrix(TensorRole.IndexerWqB), cq.AsSpan(t * Dq, Dq));
            for (int h = 0; h < Hi; h++)
                RopeHalf(q.AsSpan(h * D, D), cos.AsSpan(t * half, half), sin.AsSpan(t * half, half));
            if (fp8)
            {
                k = Fp8RoundTrip(Hadamard(k));
                for (int h = 0; h < Hi; h++)
                    Fp8RoundTrip(Hadamard(q.AsSpan(h * D, D).ToArray())).CopyTo(q, h * D);
            }
            keys[t] = k;
            queries[t] = q;
            hw[t] = Row(a.Extensions.Matrix(TensorRole.IndexerWeights), x.AsSpan(t * H, H)).Select(v => v / MathF.Sqrt(Hi) / MathF.Sqrt(D)).ToArray();
        }
        for (int t = 0; t < T; t++)
        {
            if (t + 1 <= c.Indexer.TopK)
            {
                Assert.True(sel.IsDense(t), $"slot {t} has at most top-k positions and must be dense");
                continue;
            }
            var scores = new double[t + 1];
            for (int s = 0; s <= t; s++)
            {
                for (int h = 0; h < Hi; h++)
                {
                    double dot = 0;
                    for (int d = 0; d < D; d++)
                        dot += queries[t][h * D + d] * keys[s][d];
                    scores[s] += hw[t][h] * Math.Max(dot, 0);
                }
            }
            int[] want = Enumerable.Range(0, t + 1).OrderByDescending(s => scores[s]).Take(c.Indexer.TopK).Order().ToArray();
            int[] got = sel.Positions(t).ToArray();
            // positions whose scores tie within rounding may swap; everything else must agree
            double kth = want.Select(s => scores[s]).Min();
            foreach (int s in got.Except(want).Concat(want.Except(got)))
                Assert.True(Math.Abs(scores[s] - kth) < 1e-4 * (1 + Math.Abs(kth)), $"slot {t}: position {s} selected differently (score {scores[s]}, k-th {kth})");
            Assert.Equal(want.Length, got.Length);
        }
    }

    private static void RopeHalf(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = cos.Length;
        for (int i = 0; i < half; i++)
        {
            float a = x[i], b = x[i + half];
            x[i] = a * cos[i] - b * sin[i];
            x[i + half] = a * sin[i] + b * cos[i];
        }
    }

    private static float[] Hadamard(float[] x)
    {
        int n = x.Length;
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int j = 0; j < n; j++)
                s += (System.Numerics.BitOperations.PopCount((uint)(i & j)) % 2 == 0 ? 1 : -1) * x[j];
            y[i] = (float)(s / Math.Sqrt(n));
        }
        return y;
    }

    private static float[] Fp8RoundTrip(float[] x)
    {
        (byte[] q, float s) = ActQuant(x);
        return q.Select(b => Fp8E4M3.ToFloat(b) * s).ToArray();
    }

    // ---- the model with sparse attention ----

    [Theory]
    [InlineData(IndexerPrecision.Fp8)]
    [InlineData(IndexerPrecision.F32)]
    public void Prefill_and_token_by_token_decode_agree_with_sparse_attention(IndexerPrecision precision)
    {
        ModelConfig c = Tiny(topK: 6, precision);
        using ModelWeights w = Load(c);
        var model = new Transformer(w);
        int[] ids = Ids(40, c.VocabSize);
        int V = c.VocabSize;
        float[] naive = model.Logits(ids, new ForwardOptions { Attention = AttentionMode.Naive });
        float[] absorbed = model.Logits(ids, new ForwardOptions { Attention = AttentionMode.Absorbed });
        Numerics.AssertClose(naive, absorbed, 1e-4, "naive (masked) vs absorbed (gathered) prefill");
        foreach (CacheType ct in new[] { CacheType.F32, CacheType.BF16 })
        {
            KvCache cache = model.CreateCache(ct);
            var step = new float[ids.Length * V];
            for (int t = 0; t < ids.Length; t++)
                model.Forward([new TokenSlot(0, t, ids[t])], [cache], [0], step.AsSpan(t * V, V));
            if (ct == CacheType.F32)
            {
                Numerics.AssertClose(naive, step, 1e-4, "token-by-token decode (F32 cache)");
            }
            else
            {
                // a bf16 latent moves the hidden states by ~0.4%, which may flip a near-tie of the selection (a discrete
                // change), so the reference is a prefill over a bf16 cache too: same cached values, same selection
                var all = new float[ids.Length * V];
                model.Forward(ids.Select((t, i) => new TokenSlot(0, i, t)).ToArray(), [model.CreateCache(ct)],
                              Enumerable.Range(0, ids.Length).ToArray(), all);
                Numerics.AssertClose(all, step, 1e-3, "token-by-token decode vs prefill (BF16 cache)");
            }
            long indexerBytes = c.NumHiddenLayers * (long)ids.Length * IndexerKeyCache.BytesPerToken(c.Indexer!.HeadDim, precision == IndexerPrecision.Fp8);
            Assert.Equal(ids.Length * (long)c.LatentDim * (ct == CacheType.F32 ? 4 : 2) * c.NumHiddenLayers + indexerBytes, cache.Bytes);
        }
    }

    [Fact]
    public void Selection_changes_the_logits_only_past_top_k_and_a_large_top_k_is_dense_attention()
    {
        ModelConfig sparse = Tiny(topK: 4);
        using ModelWeights w = Load(sparse);
        int[] ids = Ids(24, sparse.VocabSize);
        int V = sparse.VocabSize;
        // the same weights as plain V3 (MLA over every position; the indexer tensors unused)
        ModelConfig v3 = sparse with { ModelType = "deepseek_v3", Indexer = null };
        var dense = new ModelWeights { Config = v3, Embed = w.Embed, Layers = w.Layers, Norm = w.Norm, LmHead = w.LmHead, Mtp = w.Mtp };
        float[] d = new Transformer(dense).Logits(ids);
        float[] s = new Transformer(w).Logits(ids);
        // positions 0..3 see at most 4 positions: identical; later ones attend to 4 of their positions
        Numerics.AssertClose(d.AsSpan(0, 4 * V), s.AsSpan(0, 4 * V), 1e-5, "positions within top-k");
        double diff = Numerics.MaxAbsDiff(d.AsSpan(4 * V), s.AsSpan(4 * V));
        Assert.True(diff > 1e-2, $"sparse attention past top-k must change the logits (max |diff| {diff})");
        var wide = new ModelWeights { Config = sparse with { Indexer = sparse.Indexer! with { TopK = 64 } }, Embed = w.Embed, Layers = w.Layers, Norm = w.Norm, LmHead = w.LmHead, Mtp = w.Mtp };
        Numerics.AssertClose(d, new Transformer(wide).Logits(ids), 1e-5, "top-k beyond the sequence = dense attention");
    }

    [Fact]
    public void Batched_sequences_match_each_sequence_alone()
    {
        ModelConfig c = Tiny(topK: 5);
        using ModelWeights w = Load(c);
        var model = new Transformer(w);
        int V = c.VocabSize;
        int[] a = Ids(30, V), b = Ids(21, V).Select(i => (i + 5) % V).ToArray();
        float[] la = model.Logits(a), lb = model.Logits(b);
        KvCache[] caches = [model.CreateCache(), model.CreateCache()];
        // prefill both in one batch, then decode one token of each in one batch
        var slots = a.Take(29).Select((t, i) => new TokenSlot(0, i, t)).Concat(b.Take(20).Select((t, i) => new TokenSlot(1, i, t))).ToArray();
        var logits = new float[2 * V];
        model.Forward(slots, caches, [28, slots.Length - 1], logits);
        model.Forward([new TokenSlot(0, 29, a[29]), new TokenSlot(1, 20, b[20])], caches, [0, 1], logits);
        Numerics.AssertClose(la.AsSpan(29 * V, V), logits.AsSpan(0, V), 1e-4, "sequence a in a batch");
        Numerics.AssertClose(lb.AsSpan(20 * V, V), logits.AsSpan(V, V), 1e-4, "sequence b in a batch");
    }

    [Fact]
    public void Released_config_counts_transformers_parameters_and_caches_indexer_keys()
    {
        ModelConfig c = ModelConfig.Load(Path.Combine(Fixtures.Root, "configs", "deepseek-v3.2.json"));
        Assert.Equal(new IndexerConfig(64, 128, 2048), c.Indexer);
        Assert.Equal("deepseek-v3.2", c.GetArchitecture().Name);
        Assert.Same(ArchitectureDescriptor.For("deepseek_v32"), c.GetArchitecture());
        ModelStats s = ModelStats.Compute(c);
        Assert.Equal(671_877_929_216, s.ParametersTotal);
        Assert.Equal(61L * 13_959_424, s.AttentionVariantParameters);
        Assert.Equal(61L * (128 + 4), s.VariantCacheBytesPerToken);
        Assert.Contains("\"DeepseekV32ForCausalLM\"", c.ToJson());
        Assert.Equal(c.Indexer, ModelConfig.Parse(c.ToJson()).Indexer);
    }
}
