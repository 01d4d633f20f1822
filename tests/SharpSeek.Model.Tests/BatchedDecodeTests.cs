// A batched decode step (one token of each of several sequences in one Transformer.Forward, as the BatchScheduler and
// GenerateBatch run it) against each sequence decoded alone: for bf16 weights the logits are bit-identical, whatever the
// other sequences' lengths (attention split into different numbers of chunks) and with two worker threads (with AVX-512;
// without it, equal within 1e-4).
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;
using Xunit;

namespace SharpSeek.Model.Tests;

public sealed class BatchedDecodeTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sharpseek-batched-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
            Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A small V3 shape with widths in whole groups of 32 (the bf16 kernels' fast paths) and 8 heads (the bf16
    /// cache's attention path): 3 layers, one dense, MTP.</summary>
    private static ModelConfig Small() => new()
    {
        ModelType = "deepseek_v3",
        VocabSize = 160,
        HiddenSize = 96,
        IntermediateSize = 160,
        MoeIntermediateSize = 64,
        NumHiddenLayers = 3,
        NumAttentionHeads = 8,
        QLoraRank = 64,
        KvLoraRank = 64,
        QkNopeHeadDim = 16,
        QkRopeHeadDim = 32,
        VHeadDim = 16,
        NRoutedExperts = 8,
        NSharedExperts = 1,
        NumExpertsPerTok = 3,
        NGroup = 2,
        TopkGroup = 1,
        TopkMethod = TopKMethod.NoAuxTc,
        ScoringFunc = ScoringFunc.Sigmoid,
        NormTopkProb = true,
        RoutedScalingFactor = 2.5,
        FirstKDenseReplace = 1,
        MaxPositionEmbeddings = 512,
    };

    [Theory]
    [InlineData(CacheType.F32, 3)]
    [InlineData(CacheType.BF16, 3)]
    // four experts a token: a token alone also runs its routed experts in parallel (Moe does so from two experts a
    // worker), each expert's products inline on the worker that takes it
    [InlineData(CacheType.BF16, 4)]
    public void Batched_decode_gives_each_sequence_the_logits_it_has_alone(CacheType cacheType, int expertsPerToken)
    {
        ModelConfig c = Small() with { NumExpertsPerTok = expertsPerToken };
        SyntheticModel.Write(c, _dir, seed: 3);
        using ModelWeights w = WeightLoader.Load(_dir, c);
        Assert.Equal(WeightFormat.BF16, w.LmHead.Format);
        using var be = new ThreadedBackend(2);
        var batched = new Transformer(w, be);
        var alone = new Transformer(w, be);
        int V = c.VocabSize;
        // prompts of 1, 9, 70 and 150 tokens: one to five chunks of positions per token with two workers
        int[] lengths = [1, 9, 70, 150];
        int n = lengths.Length;
        var prompts = lengths.Select((len, s) => Enumerable.Range(0, len).Select(i => (i * 31 + s * 17 + 5) % V).ToArray()).ToArray();
        KvCache[] batchCaches = [.. lengths.Select(_ => batched.CreateCache(cacheType))];
        KvCache[] aloneCaches = [.. lengths.Select(_ => alone.CreateCache(cacheType))];
        var logits = new float[V];
        for (int s = 0; s < n; s++)
        {
            TokenSlot[] slots = [.. prompts[s].Select((t, i) => new TokenSlot(0, i, t))];
            batched.Forward(slots, [batchCaches[s]], [slots.Length - 1], logits);
            alone.Forward(slots, [aloneCaches[s]], [slots.Length - 1], logits);
        }
        int[] next = [.. lengths.Select((_, s) => (s * 13 + 1) % V)];
        // bit-identical where the bf16 products run their AVX-512 kernel (every width here is a multiple of 32); the
        // narrower fallbacks sum in other orders
        float tolerance = System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? 0 : 1e-4f;
        var batchLogits = new float[n * V];
        var aloneLogits = new float[V];
        for (int step = 0; step < 6; step++)
        {
            TokenSlot[] slots = [.. Enumerable.Range(0, n).Select(s => new TokenSlot(s, batchCaches[s].Length, next[s]))];
            batched.Forward(slots, batchCaches, [.. Enumerable.Range(0, n)], batchLogits);
            for (int s = 0; s < n; s++)
            {
                alone.Forward([new TokenSlot(0, aloneCaches[s].Length, next[s])], [aloneCaches[s]], [0], aloneLogits);
                ReadOnlySpan<float> got = batchLogits.AsSpan(s * V, V);
                float maxDiff = 0;
                for (int i = 0; i < V; i++)
                    maxDiff = Math.Max(maxDiff, Math.Abs(got[i] - aloneLogits[i]));
                Assert.True(maxDiff <= tolerance, $"step {step}, sequence {s} ({batchCaches[s].Length} cached): batched logits differ from alone, max |diff| {maxDiff}");
                next[s] = FixtureModelTests.ArgMax(aloneLogits);
            }
        }
    }
}
