// End-to-end timing of a loaded model (`sharpseek bench`): prefill and decode tokens/s (median of several runs
// after a warm-up), time to first token, weight bytes read per decoded token, and the machine's read bandwidth
// and arithmetic peaks measured in the same process, giving the fraction of each roofline reached.
using System.Diagnostics;
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;

namespace SharpSeek.Model;

/// <summary>Benchmark settings.</summary>
public sealed record BenchOptions
{
    public int PromptTokens { get; init; } = 512;
    public int GenTokens { get; init; } = 128;
    public int Runs { get; init; } = 3;
    public ulong Seed { get; init; } = 1;
    public CacheType Cache { get; init; } = CacheType.BF16;
    /// <summary>Tokens fed per prefill forward call (0: the whole prompt at once).</summary>
    public int PrefillChunk { get; init; }
    /// <summary>
    /// When &gt; 0: after the runs, decode on a second sequence of this many prompt tokens and on the last run's
    /// (PromptTokens-long) sequence in alternating rounds, so that both context lengths are timed in the same process
    /// and the same minutes of a shared host (the long-context ratio).
    /// </summary>
    public int CompareContext { get; init; }
    /// <summary>
    /// When &gt; 1: after the runs, this many sequences (each a distinct random prompt of PromptTokens) decode together,
    /// one token of each per forward call (as the batch scheduler runs them), in rounds alternating with one sequence
    /// decoding alone at the same context, so that the batched and single rates come from the same minutes.
    /// </summary>
    public int BatchSequences { get; init; }
    /// <summary>Skip the bandwidth/peak and matrix-product measurements (tests).</summary>
    public bool SkipRoofline { get; init; }
}

/// <summary>Benchmark results; JSON names follow the contract.</summary>
public sealed record BenchResult
{
    public required string Dtype { get; init; }
    public required int Threads { get; init; }
    public required int PromptTokens { get; init; }
    public required int GenTokens { get; init; }
    public required double PrefillTokensPerS { get; init; }
    public required double DecodeTokensPerS { get; init; }
    public required double TtftMs { get; init; }
    public required long WeightBytesPerToken { get; init; }
    public required double ReadBandwidthBytesPerS { get; init; }
    public required double RooflineFraction { get; init; }
    public required long PeakRssBytes { get; init; }
    public required double PrefillGflops { get; init; }
    public required double PeakGflops { get; init; }
    public required string PeakKind { get; init; }
    public required double PrefillPeakFraction { get; init; }
    /// <summary>The prefill matrix products alone (the model's own matrices at the token counts a prefill of
    /// PromptTokens gives them: P tokens for attention and dense/shared MLPs, P·k/E for a routed expert),
    /// GFLOP/s through the backend, input quantization included.</summary>
    public required double MatmulGflops { get; init; }
    /// <summary>MatmulGflops / PeakGflops.</summary>
    public required double MatmulPeakFraction { get; init; }
    /// <summary>The fp32 FMA peak measured in the same process, for every format (for bf16 and fp32 it is PeakGflops;
    /// prefill runs the fp32 GEMM over dequantized panels for every format from WeightMatrix.PackedMinTokens tokens).</summary>
    public double FmaPeakGflops { get; init; }
    /// <summary>MatmulGflops / FmaPeakGflops.</summary>
    public double MatmulFmaPeakFraction { get; init; }
    public required long KvCacheBytes { get; init; }
    /// <summary>
    /// Bytes per second the decode matrix-vector products stream when run alone, back to back through the backend
    /// (the matrices one token reads, WeightBytesPerToken of them): what the kernels and threads reach on this machine
    /// without the rest of a decode step. 0 when skipped.
    /// </summary>
    public double DecodeMatvecBytesPerS { get; init; }
    /// <summary>DecodeMatvecBytesPerS / ReadBandwidthBytesPerS: the kernels' own share of the roofline.</summary>
    public double DecodeMatvecFraction { get; init; }
    /// <summary>The share of a decode step spent outside those products: 1 − (their time alone per token) × decode tok/s.</summary>
    public double DecodeOtherFraction { get; init; }
    /// <summary>With <see cref="BenchOptions.CompareContext"/>: its context length, and the median decode tokens/s
    /// at it and at PromptTokens over the alternating rounds (0 otherwise).</summary>
    public int CompareContextTokens { get; init; }
    public double DecodeTokensPerSShortContext { get; init; }
    public double DecodeTokensPerSLongContext { get; init; }
    /// <summary>Time per decoded token at PromptTokens / at CompareContextTokens, from the paired rounds.</summary>
    public double LongContextTimeRatio { get; init; }
    /// <summary>With <see cref="BenchOptions.BatchSequences"/>: the sequences, the median aggregate decode tokens/s of
    /// the batch and of one sequence over the alternating rounds, and their ratio (0 otherwise).</summary>
    public int BatchSequences { get; init; }
    public double BatchDecodeTokensPerS { get; init; }
    public double BatchSingleDecodeTokensPerS { get; init; }
    public double BatchSpeedup { get; init; }
    /// <summary>
    /// The roofline fraction from paired rounds (0 when skipped): <see cref="ModelBench.PairedRounds"/> times, a decode
    /// round of <see cref="ModelBench.PairedTokens"/> tokens between two read-bandwidth passes, its fraction taken against
    /// the higher of those two; the median. On a shared host whose bandwidth moves by 2x within minutes this compares
    /// the decode with the bandwidth of the same seconds, where <see cref="RooflineFraction"/> compares the runs' median
    /// with the best pass before or after them.
    /// </summary>
    public double RooflineFractionPaired { get; init; }
    /// <summary>The paired rounds' fractions, in order.</summary>
    public double[] RooflineFractionPairedRounds { get; init; } = [];
    /// <summary>The paired rounds' read bandwidths (the higher of each round's two passes), bytes/s.</summary>
    public double[] ReadBandwidthPairedRounds { get; init; } = [];
    public required double[] DecodeTokensPerSRuns { get; init; }
    public required double[] PrefillTokensPerSRuns { get; init; }
}

/// <summary>Runs the benchmark.</summary>
public static class ModelBench
{
    public static BenchResult Run(Transformer model, BenchOptions o, Action<string>? log = null)
    {
        ModelConfig c = model.Config;
        int P = o.PromptTokens, G = o.GenTokens, V = c.VocabSize;
        if (P < 1 || G < 1 || o.Runs < 1)
            throw new ArgumentException("prompt tokens, generated tokens and runs must be >= 1");
        var rng = new Random((int)o.Seed);
        int[] prompt = Enumerable.Range(0, P).Select(_ => rng.Next(V)).ToArray();
        var logits = new float[V];

        KvCache? lastCache = null;
        int lastNext = 0, lastLength = 0;
        var one = new TokenSlot[1];

        // feeds prompt[0..promptLen) to a fresh cache in calls of o.PrefillChunk tokens (0: all at once)
        KvCache Prefill(int promptLen)
        {
            KvCache cache = model.CreateCache(o.Cache);
            int chunk = o.PrefillChunk > 0 ? o.PrefillChunk : promptLen;
            for (int start = 0; start < promptLen; start += chunk)
            {
                int n = Math.Min(chunk, promptLen - start);
                var slots = new TokenSlot[n];
                for (int i = 0; i < n; i++)
                    slots[i] = new TokenSlot(0, start + i, prompt[start + i]);
                model.Forward(slots, [cache], [n - 1], logits);
            }
            return cache;
        }

        // decodes `count` greedy tokens after `length` cached ones (advancing length and next); returns the seconds taken
        double Decode(KvCache cache, int count, ref int length, ref int next)
        {
            var sw = Stopwatch.StartNew();
            for (int g = 0; g < count; g++)
            {
                one[0] = new TokenSlot(0, length++, next);
                model.Forward(one, [cache], [0], logits);
                next = ArgMax(logits);
            }
            return sw.Elapsed.TotalSeconds;
        }

        (double prefill, double decode, double ttft, long cacheBytes) RunOnce(int promptLen, int gen)
        {
            var sw = Stopwatch.StartNew();
            KvCache cache = Prefill(promptLen);
            double prefillS = sw.Elapsed.TotalSeconds;
            int next = ArgMax(logits), length = promptLen;
            double ttftMs = sw.Elapsed.TotalMilliseconds;
            double decodeS = Decode(cache, gen, ref length, ref next);
            (lastCache, lastNext, lastLength) = (cache, next, length);
            return (promptLen / prefillS, gen / decodeS, ttftMs, cache.Bytes);
        }

        // decode tokens/s at a short context (a fresh sequence of `shortLen` prompt tokens) and at the long one (the
        // last run's sequence, continued), in alternating rounds
        (double Short, double Long) CompareContexts(int shortLen, KvCache longCache, int longLength, int longNext)
        {
            int shortLength = Math.Min(shortLen, P);
            KvCache shortCache = Prefill(shortLength);
            int shortNext = ArgMax(logits);
            return Alternating(n => n / Decode(shortCache, n, ref shortLength, ref shortNext),
                               n => n / Decode(longCache, n, ref longLength, ref longNext));
        }

        // aggregate decode tokens/s of o.BatchSequences sequences decoding together (one forward call per step over one
        // token of each; distinct random prompts of P tokens) and of one sequence alone (the runs' prompt), in
        // alternating rounds after a warm-up round of each
        (double Batch, double Single) BatchedDecode()
        {
            int N = o.BatchSequences;
            var caches = new KvCache[N];
            var next = new int[N];
            var rows = new int[N];
            var step = new TokenSlot[N];
            for (int s = 0; s < N; s++)
            {
                caches[s] = model.CreateCache(o.Cache);
                var slots = new TokenSlot[P];
                for (int i = 0; i < P; i++)
                    slots[i] = new TokenSlot(0, i, rng.Next(V));
                model.Forward(slots, [caches[s]], [P - 1], logits);
                next[s] = ArgMax(logits);
                rows[s] = s;
            }
            KvCache single = Prefill(P);
            int singleNext = ArgMax(logits), singleLength = P;
            var batchLogits = new float[(long)N * V];
            double BatchRound(int steps)
            {
                var sw = Stopwatch.StartNew();
                for (int g = 0; g < steps; g++)
                {
                    for (int s = 0; s < N; s++)
                        step[s] = new TokenSlot(s, caches[s].Length, next[s]);
                    model.Forward(step, caches, rows, batchLogits);
                    for (int s = 0; s < N; s++)
                        next[s] = ArgMax(batchLogits.AsSpan(s * V, V));
                }
                return (double)steps * N / sw.Elapsed.TotalSeconds;
            }
            BatchRound(4); // warm-up
            Decode(single, 4, ref singleLength, ref singleNext);
            return Alternating(BatchRound, n => n / Decode(single, n, ref singleLength, ref singleNext));
        }

        // the read bandwidth is measured before the runs and after them, the higher kept: on a shared host it drifts
        // within minutes, and a low reading would overstate the roofline fraction
        double bwBefore = 0;
        if (!o.SkipRoofline)
        {
            log?.Invoke("measuring read bandwidth");
            bwBefore = Roofline.ReadBandwidth(model.Backend.Workers);
        }
        // the warm-up gets prefill and decode JIT-compiled; it needs no long prompt (an 8K one took minutes). 64 decoded
        // tokens, not 8: tiered compilation (instrumented tier, then optimized in the background) was still going on in
        // the first measured run, which decoded 10-20% slower than the next ones
        log?.Invoke("warm-up");
        RunOnce(Math.Min(P, 512), Math.Min(G, 64));
        var prefills = new double[o.Runs];
        var decodes = new double[o.Runs];
        var ttfts = new double[o.Runs];
        long kvBytes = 0, peakRss = 0;
        for (int r = 0; r < o.Runs; r++)
        {
            (prefills[r], decodes[r], ttfts[r], kvBytes) = RunOnce(P, G);
            // resident memory sampled after each run, when the weights touched and the cache are at their largest
            // (the process's own peak would count the bench's 1 GiB bandwidth buffer)
            using (var self = Process.GetCurrentProcess())
                peakRss = Math.Max(peakRss, self.WorkingSet64);
            log?.Invoke($"run {r + 1}: prefill {prefills[r]:0.0} tok/s, decode {decodes[r]:0.00} tok/s");
        }
        (double shortTps, double longTps) = (0, 0);
        if (o.CompareContext > 0)
        {
            log?.Invoke($"decoding at {o.CompareContext} and at {lastLength} cached tokens in alternating rounds");
            (shortTps, longTps) = CompareContexts(o.CompareContext, lastCache!, lastLength, lastNext);
        }
        (double batchTps, double singleTps) = (0, 0);
        if (o.BatchSequences > 1)
        {
            log?.Invoke($"decoding {o.BatchSequences} sequences together and one alone in alternating rounds");
            (batchTps, singleTps) = BatchedDecode();
        }
        long bytesPerToken = DecodeWeightBytes(model.Weights);
        int threads = model.Backend.Workers;
        double[] pairedFractions = [], pairedBandwidths = [];
        if (!o.SkipRoofline)
        {
            log?.Invoke($"{PairedRounds} paired rounds: read bandwidth, {PairedTokens} decoded tokens, read bandwidth");
            // a fresh sequence of the runs' prompt length, so that the rounds decode at the runs' context lengths
            KvCache pairedCache = Prefill(P);
            int pairedNext = ArgMax(logits), pairedLength = P;
            using NativeBuffer passBuffer = Roofline.BandwidthBuffer(PairedPassBytes); // one buffer for the 16 passes
            (pairedFractions, pairedBandwidths) = Paired(n => n / Decode(pairedCache, n, ref pairedLength, ref pairedNext),
                                                         () => Roofline.ReadBandwidth(threads, passBuffer, 2), bytesPerToken);
        }
        double bw = 0, peak = 0, fmaPeak = 0;
        bool intFormat = model.Weights.Layers.Any(l => (l.Moe?.Experts[0].W1 ?? l.Dense!.W1).InputFormat != ActivationFormat.F32);
        if (!o.SkipRoofline)
        {
            log?.Invoke("measuring read bandwidth and arithmetic peak");
            bw = Math.Max(bwBefore, Roofline.ReadBandwidth(threads));
            fmaPeak = Roofline.FmaPeak(threads);
            peak = intFormat ? Roofline.Int8Peak(threads) : fmaPeak;
        }
        double matmul = 0, stream = 0;
        if (!o.SkipRoofline)
        {
            log?.Invoke("measuring the prefill matrix products");
            matmul = MatmulRate(model, P);
            log?.Invoke("measuring the decode matrix-vector products alone");
            stream = DecodeMatvecRate(model);
        }
        double prefillTps = Median(prefills), decodeTps = Median(decodes);
        double prefillFlops = PrefillFlops(c, P) * prefillTps / P;
        return new BenchResult
        {
            Dtype = DominantFormat(model.Weights).ToString(),
            Threads = threads,
            PromptTokens = P,
            GenTokens = G,
            PrefillTokensPerS = prefillTps,
            DecodeTokensPerS = decodeTps,
            TtftMs = Median(ttfts),
            WeightBytesPerToken = bytesPerToken,
            ReadBandwidthBytesPerS = bw,
            RooflineFraction = bw > 0 ? decodeTps * bytesPerToken / bw : 0,
            PeakRssBytes = peakRss,
            PrefillGflops = prefillFlops / 1e9,
            PeakGflops = peak / 1e9,
            PeakKind = intFormat ? "int8 maddubs OP/s" : "fp32 FMA FLOP/s",
            PrefillPeakFraction = peak > 0 ? prefillFlops / peak : 0,
            MatmulGflops = matmul / 1e9,
            MatmulPeakFraction = peak > 0 ? matmul / peak : 0,
            FmaPeakGflops = fmaPeak / 1e9,
            MatmulFmaPeakFraction = fmaPeak > 0 ? matmul / fmaPeak : 0,
            KvCacheBytes = kvBytes,
            DecodeMatvecBytesPerS = stream,
            DecodeMatvecFraction = bw > 0 ? stream / bw : 0,
            DecodeOtherFraction = stream > 0 ? 1 - bytesPerToken / stream * decodeTps : 0,
            CompareContextTokens = o.CompareContext,
            DecodeTokensPerSShortContext = shortTps,
            DecodeTokensPerSLongContext = longTps,
            LongContextTimeRatio = longTps > 0 ? shortTps / longTps : 0,
            BatchSequences = o.BatchSequences > 1 ? o.BatchSequences : 0,
            BatchDecodeTokensPerS = batchTps,
            BatchSingleDecodeTokensPerS = singleTps,
            BatchSpeedup = singleTps > 0 ? batchTps / singleTps : 0,
            RooflineFractionPaired = pairedFractions.Length > 0 ? Median(pairedFractions) : 0,
            RooflineFractionPairedRounds = pairedFractions,
            ReadBandwidthPairedRounds = pairedBandwidths,
            DecodeTokensPerSRuns = decodes,
            PrefillTokensPerSRuns = prefills,
        };
    }

    /// <summary>Two decode rates timed in alternating rounds on the same minutes of a shared host: 6 rounds of 8 steps,
    /// <paramref name="a"/> then <paramref name="b"/> (each runs the given steps and returns tokens/s); the medians.</summary>
    private static (double A, double B) Alternating(Func<int, double> a, Func<int, double> b)
    {
        const int Rounds = 6, PerRound = 8;
        var ra = new double[Rounds];
        var rb = new double[Rounds];
        for (int r = 0; r < Rounds; r++)
        {
            ra[r] = a(PerRound);
            rb[r] = b(PerRound);
        }
        return (Median(ra), Median(rb));
    }

    /// <summary>Rounds and decoded tokens per round of the paired roofline measurement.</summary>
    public const int PairedRounds = 8, PairedTokens = 16;

    /// <summary>Bytes each read-bandwidth pass of a paired round reads (a quarter of <see cref="Roofline.ReadBandwidth"/>'s
    /// default: a pass takes ~5-10 ms, beside a decode round of ~50 ms).</summary>
    private const long PairedPassBytes = 256L << 20;

    /// <summary>The paired rounds: per round, <paramref name="bandwidth"/> (bytes/s), 2 untimed tokens (a bandwidth pass
    /// evicts the caches), <see cref="PairedTokens"/> timed ones (<paramref name="decode"/>(n) decodes n and returns
    /// tokens/s), <paramref name="bandwidth"/> again; fraction = tokens/s · bytes per token / the higher bandwidth.</summary>
    public static (double[] Fractions, double[] Bandwidths) Paired(Func<int, double> decode, Func<double> bandwidth, long bytesPerToken)
    {
        var fractions = new double[PairedRounds];
        var bandwidths = new double[PairedRounds];
        decode(2); // the cache in use again after the other measurements
        for (int r = 0; r < PairedRounds; r++)
        {
            double before = bandwidth();
            decode(2); // untimed: what stays cached from token to token (the KV cache, norms, activations) is back
            double tps = decode(PairedTokens);
            double after = bandwidth();
            bandwidths[r] = Math.Max(before, after);
            fractions[r] = tps * bytesPerToken / bandwidths[r];
        }
        return (fractions, bandwidths);
    }

    /// <summary>Timed rounds per product in <see cref="MatmulRate"/>.</summary>
    public const int MatmulRounds = 5;

    /// <summary>FLOP/s of the prefill matrix products of one middle layer: the attention projections and the dense or
    /// shared MLP at <paramref name="prompt"/> tokens, a routed expert at its average share prompt·k/E tokens (counted E
    /// times). Each product runs through the backend after a warm-up call in <see cref="MatmulRounds"/> rounds of at least
    /// 0.2 s / rounds each, the fastest round's time per call kept; result = FLOPs / time.</summary>
    public static double MatmulRate(Transformer model, int prompt)
    {
        ModelConfig c = model.Config;
        LayerWeights l = model.Weights.Layers[model.Weights.Layers.Length / 2];
        var work = new List<(WeightMatrix W, int Tokens, int Count)>();
        AttentionWeights a = l.Attn;
        foreach (WeightMatrix? w in new[] { a.Wq, a.WqA, a.WqB, a.WkvA, a.Wo })
        {
            if (w is not null)
                work.Add((w, prompt, 1));
        }
        MlpWeights? dense = l.Dense ?? l.Moe?.Shared;
        if (dense is not null)
            work.AddRange([(dense.W1, prompt, 1), (dense.W3, prompt, 1), (dense.W2, prompt, 1)]);
        if (l.Moe is { } m)
        {
            int share = Math.Max(1, (int)Math.Round((double)prompt * c.NumExpertsPerTok / m.Experts.Length));
            MlpWeights e = m.Experts[0];
            work.AddRange([(e.W1, share, m.Experts.Length), (e.W3, share, m.Experts.Length), (e.W2, share, m.Experts.Length)]);
        }
        double flops = 0, seconds = 0;
        var rng = new Random(7);
        foreach ((WeightMatrix w, int tokens, int count) in work)
        {
            float[] x = new float[(long)tokens * w.Cols];
            for (int i = 0; i < x.Length; i++)
                x[i] = (float)(rng.NextDouble() * 2 - 1);
            float[] y = new float[(long)tokens * w.Rows];
            model.Backend.MatMul(w, x, tokens, y);
            // the fastest of several rounds, as the peaks it is compared with are (Roofline: fastest of 5 passes): on
            // a shared host a single 0.2 s timing landed on slow moments and halved the fraction from run to run
            double best = double.MaxValue;
            for (int round = 0; round < MatmulRounds; round++)
            {
                int reps = 0;
                var sw = Stopwatch.StartNew();
                do
                {
                    model.Backend.MatMul(w, x, tokens, y);
                    reps++;
                }
                while (sw.Elapsed.TotalSeconds < 0.2 / MatmulRounds);
                best = Math.Min(best, sw.Elapsed.TotalSeconds / reps);
            }
            flops += 2.0 * w.Rows * w.Cols * tokens * count;
            seconds += best * count;
        }
        return flops / seconds;
    }

    /// <summary>
    /// Bytes per second of the matrix-vector products of one decoded token (<see cref="DecodeMatrices"/>) run alone,
    /// back to back, each through the backend's row-parallel product. Best of several passes; every pass reads more
    /// than the caches hold for the benchmark model.
    /// </summary>
    public static double DecodeMatvecRate(Transformer model)
    {
        List<WeightMatrix> mats = DecodeMatrices(model.Weights).ToList();
        long bytes = mats.Sum(m => m.ByteSize);
        int maxCols = mats.Max(m => m.Cols), maxRows = mats.Max(m => m.Rows);
        var rng = new Random(11);
        float[] x = new float[maxCols], y = new float[maxRows];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(rng.NextDouble() * 2 - 1);
        double best = double.MaxValue;
        for (int pass = 0; pass < 6; pass++)
        {
            var sw = Stopwatch.StartNew();
            foreach (WeightMatrix m in mats)
                model.Backend.MatMul(m, x.AsSpan(0, m.Cols), 1, y.AsSpan(0, m.Rows));
            if (pass > 0) // the first pass compiles and faults pages in
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return bytes / best;
    }

    /// <summary>Bytes of weights one decoded token reads: one embedding row and every matrix of <see cref="DecodeMatrices"/>.</summary>
    public static long DecodeWeightBytes(ModelWeights w) => w.Embed.ByteSize / w.Embed.Rows + DecodeMatrices(w).Sum(m => m.ByteSize);

    /// <summary>
    /// The matrices one decoded token reads, in model order: per layer the attention projections, then the dense MLP or
    /// the router, the shared experts and K routed experts (a different K each layer, (layer·K + i) mod E, so that a
    /// pass over them comes from memory); then the head.
    /// </summary>
    public static IEnumerable<WeightMatrix> DecodeMatrices(ModelWeights w)
    {
        int layer = 0, k = w.Config.NumExpertsPerTok;
        foreach (LayerWeights l in w.Layers)
        {
            AttentionWeights a = l.Attn;
            foreach (WeightMatrix? m in new[] { a.Wq, a.WqA, a.WqB, a.WkvA, a.WkvB, a.Wo })
            {
                if (m is not null)
                    yield return m;
            }
            if (l.Dense is { } d)
            {
                foreach (WeightMatrix m in Mlp(d))
                    yield return m;
            }
            if (l.Moe is { } moe)
            {
                yield return moe.Gate;
                if (moe.Shared is { } sh)
                {
                    foreach (WeightMatrix m in Mlp(sh))
                        yield return m;
                }
                for (int i = 0; i < k; i++)
                {
                    foreach (WeightMatrix m in Mlp(moe.Experts[(layer * k + i) % moe.Experts.Length]))
                        yield return m;
                }
            }
            layer++;
        }
        yield return w.LmHead;

        static WeightMatrix[] Mlp(MlpWeights m) => [m.W1, m.W3, m.W2];
    }

    /// <summary>Useful FLOPs of a prefill of <paramref name="tokens"/> tokens with logits for the last one: matmuls plus naive attention.</summary>
    public static double PrefillFlops(ModelConfig c, int tokens)
    {
        ModelStats s = ModelStats.Compute(c);
        double head = 2.0 * c.VocabSize * c.HiddenSize;
        double matmul = tokens * (s.FlopsPerToken - head) + head;
        double attention = (double)tokens * (tokens + 1) / 2 * s.AttentionFlopsPerContextToken;
        double decompress = 2.0 * tokens * c.KvLoraRank * c.NumAttentionHeads * (c.QkNopeHeadDim + c.VHeadDim) * c.NumHiddenLayers;
        return matmul + attention + decompress;
    }

    private static WeightFormat DominantFormat(ModelWeights w) => (w.Layers.LastOrDefault(l => l.Moe is not null)?.Moe!.Experts[0].W1 ?? w.Layers[0].Dense!.W1).Format;

    internal static double Median(double[] v)
    {
        double[] s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++)
        {
            if (v[i] > v[best])
                best = i;
        }
        return best;
    }
}
