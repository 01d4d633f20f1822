// The `sharpseek bench` measurements on a fixture model: the accounting (weight bytes per decoded token, latent cache
// bytes) against hand counts, and every rate positive and finite.
using SharpSeek.Tensors;
using SharpSeek.Tests;

namespace SharpSeek.Model.Tests;

public sealed class ModelBenchTests
{
    [Fact]
    public void Paired_rounds_take_each_decode_round_against_the_higher_bandwidth_around_it()
    {
        // bandwidth passes alternate 10, 20, 30, ... GB/s; timed decode rounds run 100, 110, ... tokens/s
        double gbs = 0;
        var timed = new List<int>();
        int untimed = 0, round = 0;
        (double[] f, double[] bw) = ModelBench.Paired(n =>
        {
            if (n != ModelBench.PairedTokens)
            {
                untimed += n;
                return 1;
            }
            timed.Add(n);
            return 100 + 10 * round++;
        }, () => (gbs += 10) * 1e9, 1_000_000);
        Assert.Equal(ModelBench.PairedRounds, f.Length);
        Assert.Equal(ModelBench.PairedRounds, timed.Count);
        Assert.Equal(2 + 2 * ModelBench.PairedRounds, untimed); // one re-warm before the rounds, two tokens after each first pass
        for (int r = 0; r < f.Length; r++)
        {
            double higher = (2 * r + 2) * 10e9; // the pass after the round
            Assert.Equal(higher, bw[r]);
            Assert.Equal((100 + 10 * r) * 1e6 / higher, f[r], 12);
        }
    }

    [Fact]
    public void Accounting_matches_a_hand_count_and_rates_are_measured()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        ModelConfig c = w.Config;
        var model = new Transformer(w);
        BenchResult r = ModelBench.Run(model, new BenchOptions { PromptTokens = 8, GenTokens = 3, Runs = 1, SkipRoofline = true, CompareContext = 4 });

        // one embedding row, the head, every attention projection, dense MLPs, the gate, shared and k routed experts
        long want = (long)c.HiddenSize * 4 + (long)c.VocabSize * c.HiddenSize * 4;
        foreach (LayerWeights l in w.Layers)
        {
            AttentionWeights a = l.Attn;
            want += new[] { a.Wq, a.WqA, a.WqB, a.WkvA, a.WkvB, a.Wo }.Sum(m => m is null ? 0 : (long)m.Rows * m.Cols * 4);
            if (l.Dense is { } d)
                want += 3L * d.W1.Rows * d.W1.Cols * 4;
            if (l.Moe is { } moe)
                want += (long)moe.Gate.Rows * moe.Gate.Cols * 4 + (moe.Shared is { } s ? 3L * s.W1.Rows * s.W1.Cols * 4 : 0)
                        + c.NumExpertsPerTok * 3L * moe.Experts[0].W1.Rows * moe.Experts[0].W1.Cols * 4;
        }
        Assert.Equal(want, r.WeightBytesPerToken);
        // bf16 latent cache: (kv_lora_rank + qk_rope_head_dim) x 2 bytes per token per layer, after prompt + generated
        Assert.Equal((long)(c.KvLoraRank + c.QkRopeHeadDim) * 2 * c.NumHiddenLayers * (8 + 3), r.KvCacheBytes);
        Assert.True(r.PrefillTokensPerS > 0 && double.IsFinite(r.PrefillTokensPerS), $"prefill {r.PrefillTokensPerS}");
        Assert.True(r.DecodeTokensPerS > 0 && double.IsFinite(r.DecodeTokensPerS), $"decode {r.DecodeTokensPerS}");
        Assert.True(r.PrefillGflops > 0);

        Assert.True(r.PeakRssBytes > 0, "resident memory sampled after the run");
        Assert.Equal(4, r.CompareContextTokens);
        Assert.True(r.DecodeTokensPerSShortContext > 0 && r.DecodeTokensPerSLongContext > 0, "both contexts decoded");
        Assert.Equal(r.DecodeTokensPerSShortContext / r.DecodeTokensPerSLongContext, r.LongContextTimeRatio, 12);

        double matmul = ModelBench.MatmulRate(model, 8);
        Assert.True(matmul > 1e6 && double.IsFinite(matmul), $"matmul rate {matmul}");
        double stream = ModelBench.DecodeMatvecRate(model);
        Assert.True(stream > 1e6 && double.IsFinite(stream), $"decode matrix-vector stream {stream} B/s");
    }

    [Fact]
    public void Batched_decode_is_timed_against_one_sequence()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        var model = new Transformer(w);
        BenchResult r = ModelBench.Run(model, new BenchOptions { PromptTokens = 6, GenTokens = 2, Runs = 1, SkipRoofline = true, BatchSequences = 3 });
        Assert.Equal(3, r.BatchSequences);
        Assert.True(r.BatchDecodeTokensPerS > 0 && double.IsFinite(r.BatchDecodeTokensPerS), $"batched {r.BatchDecodeTokensPerS}");
        Assert.True(r.BatchSingleDecodeTokensPerS > 0 && double.IsFinite(r.BatchSingleDecodeTokensPerS), $"alone {r.BatchSingleDecodeTokensPerS}");
        Assert.Equal(r.BatchDecodeTokensPerS / r.BatchSingleDecodeTokensPerS, r.BatchSpeedup, 12);
        BenchResult none = ModelBench.Run(model, new BenchOptions { PromptTokens = 6, GenTokens = 2, Runs = 1, SkipRoofline = true });
        Assert.Equal(0, none.BatchSequences);
        Assert.Equal(0, none.BatchSpeedup);
    }
}
