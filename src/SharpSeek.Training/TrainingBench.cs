// Training throughput measurement: steps of forward + backward + AdamW on fixed random batches after warm-up,
// reported as tokens/s and model-FLOPs utilisation against a measured FMA peak (a register-resident FMA loop on
// every worker thread, the same way llm.c-style benchmarks bound a CPU).
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SharpSeek.Model;
using SharpSeek.Tensors;

namespace SharpSeek.Training;

/// <summary>Result of <see cref="TrainingBench.Run"/>.</summary>
/// <param name="BestSecondsPerStep">The fastest timed step (less sensitive to other load on a shared machine than the mean).</param>
/// <param name="AllocatedBytesPerStep">Managed bytes allocated per timed step (all threads).</param>
public sealed record TrainingBenchResult(double TokensPerSecond, double SecondsPerStep, double FlopsPerToken, double PeakFlops,
                                         double Mfu, double FirstLoss, double LastLoss, double BestSecondsPerStep, double AllocatedBytesPerStep);

/// <summary>Times training steps and measures the machine's fp32 FMA peak.</summary>
public static class TrainingBench
{
    /// <summary>
    /// Training FLOPs per token: 3 × (2 × active matmul weights per token + causal attention 2·Nh·(Dqk+Dv)·(T+1)/2 per
    /// layer), counting the main model and, when <paramref name="mtp"/>, the MTP modules (embedding lookups excluded).
    /// </summary>
    public static double FlopsPerToken(ModelConfig c, int T, bool mtp)
    {
        long H = c.HiddenSize, Nh = c.NumAttentionHeads, Dqk = c.QkHeadDim, Dv = c.VHeadDim, R = c.KvLoraRank, Dr = c.QkRopeHeadDim;
        long attn = (c.QLoraRank > 0 ? H * c.QLoraRank + c.QLoraRank * Nh * Dqk : H * Nh * Dqk) + H * (R + Dr) + R * Nh * (c.QkNopeHeadDim + Dv) + Nh * Dv * H;
        long moe = H * c.NRoutedExperts + 3L * H * c.MoeIntermediateSize * (c.NumExpertsPerTok + c.NSharedExperts);
        long dense = 3L * H * c.IntermediateSize;
        double attnScore = 2.0 * Nh * (Dqk + Dv) * (T + 1) / 2;
        double fwd = 0;
        int layers = c.NumHiddenLayers + (mtp ? c.NumNextnPredictLayers : 0);
        for (int l = 0; l < layers; l++)
        {
            bool isMoe = l >= c.NumHiddenLayers || c.IsMoeLayer(l);
            fwd += 2.0 * (attn + (isMoe ? moe : dense)) + attnScore;
        }
        fwd += 2.0 * H * c.VocabSize;
        if (mtp)
            fwd += c.NumNextnPredictLayers * (2.0 * 2 * H * H + 2.0 * H * c.VocabSize);
        return 3 * fwd;
    }

    /// <summary>Runs <paramref name="warmup"/> + <paramref name="steps"/> AdamW steps on random tokens; times the last ones.</summary>
    public static TrainingBenchResult Run(ModelParameters p, TrainingModelOptions o, int warmup, int steps, int[] inputs, int[] targets, double peak)
    {
        var model = new TrainingModel(p, o);
        var opt = new AdamW(p.Trainable, new AdamWOptions());
        double first = 0, last = 0, best = double.MaxValue;
        long alloc0 = 0;
        var sw = new Stopwatch();
        for (int s = 0; s < warmup + steps; s++)
        {
            if (s == warmup)
            {
                alloc0 = GC.GetTotalAllocatedBytes(precise: true);
                sw.Start();
            }
            double t0 = sw.Elapsed.TotalSeconds;
            p.ZeroGrad(o.Backend);
            double loss = model.ForwardBackward(inputs, targets).Total;
            opt.Update(o.Backend, 1e-3, 1.0);
            if (s >= warmup)
                best = Math.Min(best, sw.Elapsed.TotalSeconds - t0);
            if (s == 0) first = loss;
            last = loss;
        }
        double sec = sw.Elapsed.TotalSeconds / steps;
        double alloc = (GC.GetTotalAllocatedBytes(precise: true) - alloc0) / (double)steps;
        double tps = o.BatchSize * o.SequenceLength / sec;
        double fpt = FlopsPerToken(p.Config, o.SequenceLength, o.MtpLambda > 0);
        return new TrainingBenchResult(tps, sec, fpt, peak, tps * fpt / peak, first, last, best, alloc);
    }

    /// <summary>
    /// fp32 FLOP/s of an FMA loop (12 independent accumulators) on <paramref name="threads"/> threads at once: the best of
    /// three runs of <paramref name="seconds"/>/3 each (other load on the machine only ever lowers a run).
    /// </summary>
    public static double MeasureFmaPeak(int threads, double seconds = 0.6)
    {
        double best = 0;
        for (int trial = 0; trial < 3; trial++)
            best = Math.Max(best, MeasureFmaOnce(threads, seconds / 3));
        return best;
    }

    private static double MeasureFmaOnce(int threads, double seconds)
    {
        FmaLoop(1000);
        long iters = 1;
        var t0 = Stopwatch.StartNew();
        while (t0.Elapsed.TotalSeconds < 0.05)
        {
            FmaLoop(iters);
            iters *= 2;
        }
        iters = (long)(iters * seconds / Math.Max(t0.Elapsed.TotalSeconds, 1e-3));
        var workers = new Thread[threads];
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < threads; i++)
        {
            workers[i] = new Thread(() => FmaLoop(iters));
            workers[i].Start();
        }
        foreach (Thread w in workers)
            w.Join();
        double lanes = Vector512.IsHardwareAccelerated ? 16 : 8;
        return threads * iters * 12 * lanes * 2 / sw.Elapsed.TotalSeconds;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float FmaLoop(long iters)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> m = Vector512.Create(0.999999f), c = Vector512.Create(1e-6f);
            Vector512<float> a0 = m, a1 = m, a2 = m, a3 = m, a4 = m, a5 = m, a6 = m, a7 = m, a8 = m, a9 = m, a10 = m, a11 = m;
            for (long i = 0; i < iters; i++)
            {
                a0 = Vector512.FusedMultiplyAdd(a0, m, c); a1 = Vector512.FusedMultiplyAdd(a1, m, c);
                a2 = Vector512.FusedMultiplyAdd(a2, m, c); a3 = Vector512.FusedMultiplyAdd(a3, m, c);
                a4 = Vector512.FusedMultiplyAdd(a4, m, c); a5 = Vector512.FusedMultiplyAdd(a5, m, c);
                a6 = Vector512.FusedMultiplyAdd(a6, m, c); a7 = Vector512.FusedMultiplyAdd(a7, m, c);
                a8 = Vector512.FusedMultiplyAdd(a8, m, c); a9 = Vector512.FusedMultiplyAdd(a9, m, c);
                a10 = Vector512.FusedMultiplyAdd(a10, m, c); a11 = Vector512.FusedMultiplyAdd(a11, m, c);
            }
            return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }
        else
        {
            Vector256<float> m = Vector256.Create(0.999999f), c = Vector256.Create(1e-6f);
            Vector256<float> a0 = m, a1 = m, a2 = m, a3 = m, a4 = m, a5 = m, a6 = m, a7 = m, a8 = m, a9 = m, a10 = m, a11 = m;
            for (long i = 0; i < iters; i++)
            {
                a0 = Vector256.FusedMultiplyAdd(a0, m, c); a1 = Vector256.FusedMultiplyAdd(a1, m, c);
                a2 = Vector256.FusedMultiplyAdd(a2, m, c); a3 = Vector256.FusedMultiplyAdd(a3, m, c);
                a4 = Vector256.FusedMultiplyAdd(a4, m, c); a5 = Vector256.FusedMultiplyAdd(a5, m, c);
                a6 = Vector256.FusedMultiplyAdd(a6, m, c); a7 = Vector256.FusedMultiplyAdd(a7, m, c);
                a8 = Vector256.FusedMultiplyAdd(a8, m, c); a9 = Vector256.FusedMultiplyAdd(a9, m, c);
                a10 = Vector256.FusedMultiplyAdd(a10, m, c); a11 = Vector256.FusedMultiplyAdd(a11, m, c);
            }
            return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }
    }
}
