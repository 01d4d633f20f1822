// Prefill and decode throughput of a DeepSeek-V4 model on random token ids (the model needs no tokenizer): each run
// prefills a fresh cache with the prompt, then decodes greedily one token at a time; medians over the runs.
using System.Diagnostics;

namespace SharpSeek.Model.V4;

/// <summary>What <see cref="V4Bench.Run"/> measured.</summary>
public sealed record V4BenchResult(int PromptTokens, int GenTokens, int Runs, int Threads, double PrefillTokensPerS, double DecodeTokensPerS,
                                   long WeightBytesPerToken, long CacheBytes, double[] DecodeRuns);

/// <summary>Times V4 prefill and decode.</summary>
public static class V4Bench
{
    /// <summary>Runs <paramref name="runs"/> rounds of prefill (<paramref name="prompt"/> random ids) and decode (<paramref name="gen"/> tokens).</summary>
    public static V4BenchResult Run(V4Transformer model, int prompt, int gen, int runs, int threads, int seed = 1)
    {
        V4Config c = model.Config;
        var rng = new Random(seed);
        int[] ids = Enumerable.Range(0, prompt).Select(_ => rng.Next(2, c.VocabSize)).ToArray();
        var logits = new float[c.VocabSize];
        var prefill = new double[runs];
        var decode = new double[runs];
        long cacheBytes = 0;
        // a warm-up pass compiles every path
        {
            V4Cache w = model.CreateCache();
            model.Forward(ids.AsSpan(0, Math.Min(prompt, 8)), w, [Math.Min(prompt, 8) - 1], logits);
            model.Forward([System.Numerics.Tensors.TensorPrimitives.IndexOfMax<float>(logits)], w, [0], logits);
        }
        for (int r = 0; r < runs; r++)
        {
            V4Cache cache = model.CreateCache();
            var sw = Stopwatch.StartNew();
            model.Forward(ids, cache, [prompt - 1], logits);
            prefill[r] = prompt / sw.Elapsed.TotalSeconds;
            sw.Restart();
            for (int t = 0; t < gen; t++)
                model.Forward([System.Numerics.Tensors.TensorPrimitives.IndexOfMax<float>(logits)], cache, [0], logits);
            decode[r] = gen / sw.Elapsed.TotalSeconds;
            cacheBytes = cache.Bytes;
        }
        return new V4BenchResult(prompt, gen, runs, threads, ModelBench.Median(prefill), ModelBench.Median(decode), ActiveWeightBytes(model.Weights), cacheBytes, decode);
    }

    /// <summary>Weight bytes a decode step reads: everything but the embedding table and the unchosen routed experts.</summary>
    public static long ActiveWeightBytes(V4Weights w)
    {
        V4Config c = w.Config;
        long b = w.ByteSize - w.Embed.ByteSize;
        foreach (V4LayerWeights l in w.Layers)
        {
            long expert = l.ExpertGate[0].ByteSize + l.ExpertUp[0].ByteSize + l.ExpertDown[0].ByteSize;
            b -= (c.NRoutedExperts - c.NumExpertsPerTok) * expert;
        }
        return b;
    }
}
