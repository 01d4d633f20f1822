// The DeepSeek-V4 forward (DeepSeek's V4-Flash inference/model.py; docs/deepseek-v4.md): embeddings copied into Hc
// residual streams; per layer, hyper-connection mix -> RMSNorm -> attention -> hyper-connection update, the same around
// the MoE; a hyper-connection head collapses the streams before the final norm and the output head.
//
// Attention (one shared K=V head of width D): q = RMSNorm_noweight(wq_b(q_norm(wq_a x))) per head, kv = kv_norm(wkv x),
// RoPE on the last Dr dims (interleaved pairs); each query attends to the raw rows of its sliding window plus, in
// compressed layers, compressed rows (ratio 128: all visible ones; ratio 4: the indexer's top-k of the visible ones),
// with a learned per-head sink in the softmax's denominator; the output is de-rotated (inverse RoPE) and projected by
// the grouped low-rank wo_a then wo_b. Compressed row b pools tokens [b·ratio, (b+1)·ratio) (ratio 4: also the
// previous window, through the first half of the projections) with a softmax over the gated scores per dimension,
// then RMSNorm and RoPE at position b·ratio; it is visible to the query at position p when b < (p+1)/ratio.
//
// Arithmetic is fp32 as llama.cpp's; DeepSeek's reference additionally rounds the cached rows and the indexer's
// operands to fp8/fp4 (quantization-aware training), and rotates the indexer's operands by a Hadamard transform,
// which leaves its dot products unchanged.
using System.Numerics.Tensors;
using SharpSeek.Tensors;

namespace SharpSeek.Model.V4;

/// <summary>
/// Runs a DeepSeek-V4 model over one sequence at a time. Holds scratch buffers: not safe to call from several threads
/// at once (create one per thread over the same weights).
/// </summary>
public sealed class V4Transformer
{
    private readonly V4Config _c;
    private readonly V4Rope _mainRope, _compressRope;
    private float[] _x = [], _xNext = [], _xin = [], _xn = [], _y = [], _mix = [], _post = [], _comb = [], _rstd = [];
    private float[] _qr = [], _q = [], _kv = [], _o = [], _og = [], _oa = [], _ckv = [], _cscore = [], _iq = [], _iw = [];
    private float[] _scores = [], _gate = [], _up = [], _xs = [], _eo = [], _sel = [], _cos = [], _sin = [];
    private int[] _topk = [], _chosen = [];
    private float[] _weight = [], _iscore = [];

    /// <param name="precision">F32 (llama.cpp's arithmetic) or the reference's FP8/FP4 round trips of the cached rows and indexer operands.</param>
    public V4Transformer(V4Weights weights, ComputeBackend? backend = null, V4Precision precision = V4Precision.F32)
    {
        Weights = weights;
        _c = weights.Config;
        Backend = backend ?? ComputeBackend.Cpu;
        Precision = precision;
        _mainRope = new V4Rope(_c, compressed: false);
        _compressRope = new V4Rope(_c, compressed: true);
    }

    public V4Weights Weights { get; }
    public V4Config Config => _c;
    public V4Precision Precision { get; }
    public ComputeBackend Backend { get; }

    /// <summary>A new empty cache for one sequence.</summary>
    public V4Cache CreateCache() => new(_c);

    /// <summary>
    /// Runs the main model over <paramref name="ids"/> at positions cache.Length.. and appends them to the cache. Logits
    /// [logitRows.Length, V] are computed for the listed rows of the chunk.
    /// </summary>
    /// <param name="finalStreams">When not empty, receives the last layer's residual streams [T, Hc·H] (the input of the MTP layers).</param>
    public void Forward(ReadOnlySpan<int> ids, V4Cache cache, ReadOnlySpan<int> logitRows, Span<float> logits, Span<float> finalStreams = default)
    {
        int T = ids.Length, H = _c.HiddenSize, Hc = _c.HcMult;
        CheckChunk(ids, cache, logitRows, logits);
        if (!finalStreams.IsEmpty && finalStreams.Length < (long)T * Hc * H)
            throw new ArgumentException($"finalStreams needs {T} x {Hc * H} floats, has {finalStreams.Length}");
        int p0 = cache.Length;
        Grow(ref _x, T * Hc * H);
        Span<float> x = _x.AsSpan(0, T * Hc * H);
        for (int t = 0; t < T; t++)
        {
            Span<float> row = x.Slice(t * Hc * H, H);
            Weights.Embed.ReadRow(ids[t], row);
            for (int s = 1; s < Hc; s++)
                row.CopyTo(x.Slice((t * Hc + s) * H, H));
        }
        for (int l = 0; l < _c.NumHiddenLayers; l++)
            Block(Weights.Layers[l], l, ids, p0, cache.Layers[l]);
        cache.Length = p0 + T;
        if (!finalStreams.IsEmpty)
            _x.AsSpan(0, T * Hc * H).CopyTo(finalStreams);
        Output(Weights.Norm, T, logitRows, logits);
    }

    /// <summary>
    /// Runs MTP layer <paramref name="module"/>: row t pairs the main model's final streams at some position i
    /// (<paramref name="streams"/> [T, Hc·H]) with the next token t_{i+1} (<paramref name="nextIds"/>) and predicts t_{i+2}.
    /// Rows continue the module's own cache at cache.MtpLength. As llama.cpp, the streams collapse through the model's
    /// hyper-connection head (a deepseek4 file holds one) and the module's shared-head norm.
    /// </summary>
    public void ForwardMtp(int module, ReadOnlySpan<float> streams, ReadOnlySpan<int> nextIds, V4Cache cache, ReadOnlySpan<int> logitRows,
                           Span<float> logits, Span<float> moduleStreams = default)
    {
        int T = nextIds.Length, H = _c.HiddenSize, Hc = _c.HcMult;
        if ((uint)module >= (uint)Weights.Mtp.Length)
            throw new ArgumentOutOfRangeException(nameof(module), $"the model has {Weights.Mtp.Length} MTP layers");
        CheckChunk(nextIds, cache, logitRows, logits);
        if (streams.Length < (long)T * Hc * H)
            throw new ArgumentException($"streams needs {T} x {Hc * H} floats, has {streams.Length}");
        V4MtpWeights m = Weights.Mtp[module];
        float eps = (float)_c.RmsNormEps;
        Grow(ref _x, T * Hc * H);
        Span<float> x = _x.AsSpan(0, T * Hc * H);
        Span<float> e = H <= 4096 ? stackalloc float[H] : new float[H];
        // x_t[j] = eh_proj [enorm(embed(t_{i+1})), hnorm(h_t[j])] for each stream j
        Grow(ref _xn, T * Hc * 2 * H);
        Span<float> rows = _xn.AsSpan(0, T * Hc * 2 * H);
        for (int t = 0; t < T; t++)
        {
            Weights.Embed.ReadRow(nextIds[t], e);
            Ops.RmsNorm(e, m.ENorm, eps, e);
            for (int j = 0; j < Hc; j++)
            {
                Span<float> r = rows.Slice((t * Hc + j) * 2 * H, 2 * H);
                e.CopyTo(r);
                Ops.RmsNorm(streams.Slice((t * Hc + j) * H, H), m.HNorm, eps, r.Slice(H, H));
            }
        }
        Backend.MatMul(m.EhProj, rows, T * Hc, x);
        int layer = _c.NumHiddenLayers + module;
        Block(m.Layer, layer, nextIds, cache.MtpLength, cache.Layers[layer]);
        if (module == Weights.Mtp.Length - 1)
            cache.MtpLength += T;
        if (!moduleStreams.IsEmpty)
            _x.AsSpan(0, T * Hc * H).CopyTo(moduleStreams);
        Output(m.HeadNorm, T, logitRows, logits);
    }

    // a chunk's token ids in the vocabulary, its cache of this model, its logit rows inside the chunk and room for their logits
    private void CheckChunk(ReadOnlySpan<int> ids, V4Cache cache, ReadOnlySpan<int> logitRows, Span<float> logits)
    {
        int T = ids.Length, V = _c.VocabSize;
        if (T == 0)
            throw new ArgumentException("no tokens to run");
        if (cache.Config != _c)
            throw new ArgumentException("the cache belongs to another model configuration");
        if (logits.Length < (long)logitRows.Length * V)
            throw new ArgumentException($"logits needs {logitRows.Length} x {V} floats, has {logits.Length}");
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)V)
                throw new ArgumentException($"token id {id} outside the vocabulary of {V}");
        }
        foreach (int r in logitRows)
        {
            if ((uint)r >= (uint)T)
                throw new ArgumentOutOfRangeException(nameof(logitRows), $"logit row {r} outside the chunk of {T}");
        }
    }

    // the streams collapse through the hyper-connection head, then the norm and the output head, for the listed rows
    private void Output(float[] norm, int T, ReadOnlySpan<int> logitRows, Span<float> logits)
    {
        int H = _c.HiddenSize, Hc = _c.HcMult, V = _c.VocabSize;
        Grow(ref _xin, T * H);
        Grow(ref _sel, logitRows.Length * H);
        Span<float> sel = _sel.AsSpan(0, logitRows.Length * H);
        HcHead(_x.AsSpan(0, T * Hc * H), Weights.HcHeadFn, Weights.HcHeadBase, Weights.HcHeadScale[0], T, _xin.AsSpan(0, T * H));
        for (int i = 0; i < logitRows.Length; i++)
            Ops.RmsNorm(_xin.AsSpan(logitRows[i] * H, H), norm, (float)_c.RmsNormEps, sel.Slice(i * H, H));
        if (logitRows.Length > 0)
            Backend.MatMul(Weights.Head, sel, logitRows.Length, logits.Slice(0, logitRows.Length * V));
    }

    /// <summary>Uncached forward of one sequence: logits [ids.Length, V] for every position (a fresh cache).</summary>
    public float[] Logits(ReadOnlySpan<int> ids)
    {
        var rows = Enumerable.Range(0, ids.Length).ToArray();
        var logits = new float[(long)ids.Length * _c.VocabSize];
        Forward(ids, CreateCache(), rows, logits);
        return logits;
    }

    private void Block(V4LayerWeights w, int layer, ReadOnlySpan<int> ids, int p0, V4LayerCache cache)
    {
        int T = ids.Length, H = _c.HiddenSize;
        float eps = (float)_c.RmsNormEps;
        Grow(ref _xin, T * H);
        Grow(ref _xn, T * H);
        Grow(ref _y, T * H);
        Span<float> xin = _xin.AsSpan(0, T * H), xn = _xn.AsSpan(0, T * H), y = _y.AsSpan(0, T * H);

        HcPre(w.HcAttnFn, w.HcAttnBase, w.HcAttnScale, T, xin);
        Ops.RmsNormRows(xin, w.AttnNorm, eps, xn, T);
        Attention(w, layer, xn, p0, cache, T, y);
        HcPost(y, T);

        HcPre(w.HcFfnFn, w.HcFfnBase, w.HcFfnScale, T, xin);
        Ops.RmsNormRows(xin, w.FfnNorm, eps, xn, T);
        Moe(w, layer, xn, ids, T, y);
        HcPost(y, T);
    }

    // ---- hyper-connections ----

    /// <summary>
    /// mixes = fn · flat(X_t) / rms(flat(X_t)); pre = sigmoid(mixes[0..Hc)·s0 + base) + eps; post = 2·sigmoid(mixes[Hc..2Hc)·s1 + base);
    /// comb = Sinkhorn(softmax_rows(mixes[2Hc..)·s2 + base) + eps); xin_t = Σ_j pre_j X_t[j]. post and comb are kept for HcPost.
    /// </summary>
    private void HcPre(WeightMatrix fn, float[] hcBase, float[] scale, int T, Span<float> xin)
    {
        int H = _c.HiddenSize, Hc = _c.HcMult, M = _c.HcMixDim;
        float eps = (float)_c.HcEps;
        Span<float> x = _x.AsSpan(0, T * Hc * H);
        Grow(ref _mix, T * M);
        Grow(ref _post, T * Hc);
        Grow(ref _comb, T * Hc * Hc);
        Span<float> mix = _mix.AsSpan(0, T * M);
        Backend.MatMul(fn, x, T, mix);
        Span<float> pre = stackalloc float[Hc];
        for (int t = 0; t < T; t++)
        {
            ReadOnlySpan<float> xt = x.Slice(t * Hc * H, Hc * H);
            float rstd = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xt) / (Hc * H) + (float)_c.RmsNormEps);
            Span<float> m = mix.Slice(t * M, M);
            TensorPrimitives.Multiply(m, rstd, m);
            for (int j = 0; j < Hc; j++)
            {
                pre[j] = Sigmoid(m[j] * scale[0] + hcBase[j]) + eps;
                _post[t * Hc + j] = 2 * Sigmoid(m[Hc + j] * scale[1] + hcBase[Hc + j]);
            }
            Span<float> comb = _comb.AsSpan(t * Hc * Hc, Hc * Hc);
            for (int i = 0; i < Hc * Hc; i++)
                comb[i] = m[2 * Hc + i] * scale[2] + hcBase[2 * Hc + i];
            Sinkhorn(comb, Hc, _c.HcSinkhornIters, eps);
            Span<float> xo = xin.Slice(t * H, H);
            TensorPrimitives.Multiply(xt.Slice(0, H), pre[0], xo);
            for (int j = 1; j < Hc; j++)
                TensorPrimitives.MultiplyAdd(xt.Slice(j * H, H), pre[j], xo, xo);
        }
    }

    /// <summary>comb [Hc (source j), Hc (destination k)]: softmax over k, + eps, then columns and rows normalized in turn (iters in all).</summary>
    internal static void Sinkhorn(Span<float> comb, int hc, int iters, float eps)
    {
        for (int j = 0; j < hc; j++)
        {
            Span<float> row = comb.Slice(j * hc, hc);
            Ops.Softmax(row);
            TensorPrimitives.Add(row, eps, row);
        }
        NormalizeColumns(comb, hc, eps);
        for (int it = 1; it < iters; it++)
        {
            for (int j = 0; j < hc; j++)
            {
                Span<float> row = comb.Slice(j * hc, hc);
                TensorPrimitives.Multiply(row, 1f / (TensorPrimitives.Sum(row) + eps), row);
            }
            NormalizeColumns(comb, hc, eps);
        }
    }

    private static void NormalizeColumns(Span<float> comb, int hc, float eps)
    {
        for (int k = 0; k < hc; k++)
        {
            float s = 0;
            for (int j = 0; j < hc; j++)
                s += comb[j * hc + k];
            float inv = 1f / (s + eps);
            for (int j = 0; j < hc; j++)
                comb[j * hc + k] *= inv;
        }
    }

    /// <summary>X_t[k] ← post_k · y_t + Σ_j comb[j, k] · X_t[j].</summary>
    private void HcPost(ReadOnlySpan<float> y, int T)
    {
        int H = _c.HiddenSize, Hc = _c.HcMult;
        Grow(ref _xNext, T * Hc * H);
        Span<float> x = _x.AsSpan(0, T * Hc * H), xo = _xNext.AsSpan(0, T * Hc * H);
        for (int t = 0; t < T; t++)
        {
            ReadOnlySpan<float> comb = _comb.AsSpan(t * Hc * Hc, Hc * Hc);
            for (int k = 0; k < Hc; k++)
            {
                Span<float> dst = xo.Slice((t * Hc + k) * H, H);
                TensorPrimitives.Multiply(y.Slice(t * H, H), _post[t * Hc + k], dst);
                for (int j = 0; j < Hc; j++)
                    TensorPrimitives.MultiplyAdd(x.Slice((t * Hc + j) * H, H), comb[j * Hc + k], dst, dst);
            }
        }
        (_x, _xNext) = (_xNext, _x);
    }

    /// <summary>The final collapse: pre = sigmoid(fn · flat / rms · scale + base) + eps; out_t = Σ_j pre_j X_t[j].</summary>
    private void HcHead(ReadOnlySpan<float> x, WeightMatrix fn, float[] hcBase, float scale, int T, Span<float> xout)
    {
        int H = _c.HiddenSize, Hc = _c.HcMult;
        Grow(ref _mix, T * Hc);
        Span<float> mix = _mix.AsSpan(0, T * Hc);
        Backend.MatMul(fn, x, T, mix);
        for (int t = 0; t < T; t++)
        {
            ReadOnlySpan<float> xt = x.Slice(t * Hc * H, Hc * H);
            float rstd = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xt) / (Hc * H) + (float)_c.RmsNormEps);
            Span<float> xo = xout.Slice(t * H, H);
            xo.Clear();
            for (int j = 0; j < Hc; j++)
            {
                float pre = Sigmoid(mix[t * Hc + j] * rstd * scale + hcBase[j]) + (float)_c.HcEps;
                TensorPrimitives.MultiplyAdd(xt.Slice(j * H, H), pre, xo, xo);
            }
        }
    }

    private static float Sigmoid(float z) => 1f / (1f + MathF.Exp(-z));

    // ---- attention ----

    private void Attention(V4LayerWeights w, int layer, ReadOnlySpan<float> xn, int p0, V4LayerCache cache, int T, Span<float> y)
    {
        V4Config c = _c;
        int Nh = c.NumAttentionHeads, D = c.HeadDim, Dr = c.RopeHeadDim, Dq = c.QLoraRank, W = c.SlidingWindow;
        int ratio = c.Ratio(layer), half = Dr / 2;
        float eps = (float)c.RmsNormEps;
        V4Rope rope = ratio != 0 ? _compressRope : _mainRope;
        Grow(ref _qr, T * Dq);
        Grow(ref _q, T * Nh * D);
        Grow(ref _kv, T * D);
        Grow(ref _o, T * Nh * D);
        Grow(ref _cos, T * half);
        Grow(ref _sin, T * half);
        Span<float> qr = _qr.AsSpan(0, T * Dq), q = _q.AsSpan(0, T * Nh * D), kv = _kv.AsSpan(0, T * D);
        Span<float> cos = _cos.AsSpan(0, T * half), sin = _sin.AsSpan(0, T * half);
        for (int t = 0; t < T; t++)
            rope.CosSin(p0 + t, cos.Slice(t * half, half), sin.Slice(t * half, half));

        Backend.MatMul(w.WqA, xn, T, qr);
        for (int t = 0; t < T; t++)
            Ops.RmsNorm(qr.Slice(t * Dq, Dq), w.QNorm, eps, qr.Slice(t * Dq, Dq));
        Backend.MatMul(w.WqB, qr, T, q);
        Backend.MatMul(w.Wkv, xn, T, kv);
        for (int t = 0; t < T; t++)
        {
            ReadOnlySpan<float> ct = cos.Slice(t * half, half), st = sin.Slice(t * half, half);
            for (int h = 0; h < Nh; h++)
            {
                Span<float> qh = q.Slice((t * Nh + h) * D, D);
                float rstd = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(qh) / D + eps);
                TensorPrimitives.Multiply(qh, rstd, qh);
                Ops.RopeInterleaved(qh.Slice(D - Dr), ct, st);
            }
            Span<float> kt = kv.Slice(t * D, D);
            Ops.RmsNorm(kt, w.KvNorm, eps, kt);
            Ops.RopeInterleaved(kt.Slice(D - Dr), ct, st);
            if (Precision == V4Precision.Reference)
                V4Quantization.Fp8RoundTrip(kt.Slice(0, D - Dr));
        }

        // compressed rows first: a query sees the rows its own position completes
        int k = 0;
        if (ratio != 0)
        {
            int emitted = Compress(w.Compressor!, cache.Compressor!, xn, p0, T, cache, index: false);
            if (ratio == 4)
                Compress(w.Indexer!.Compressor, cache.IndexCompressor!, xn, p0, T, cache, index: true);
            cache.Commit(emitted);
            if (ratio == 4)
            {
                k = Math.Min(c.IndexTopK, cache.CompressedCount);
                Index(w.Indexer!, xn, qr, p0, T, cache, k, cos, sin);
            }
        }

        float scale = 1f / MathF.Sqrt(D);
        V4LayerCache lc = cache;
        float[] qa = _q, kva = _kv, oa = _o, sinks = w.Sinks;
        int[] topk = _topk;
        // work items of one token and up to 8 heads: each candidate row is read once for all the group's heads (the
        // rows of a long context do not fit L2; reading them once per head made decode memory-bound on them). With 8
        // heads and D a multiple of 32, tiles of 8 rows go through the absorbed-MLA kernels (4x4 register-blocked
        // scores, accumulators of 8 heads kept in registers across a tile)
        int hg = Math.Min(Nh, 8), groups = (Nh + hg - 1) / hg;
        bool tiles = HeadTiles && hg == AttentionKernels.Tile && D % 32 == 0;
        Backend.For(T * groups, i =>
        {
            int t = i / groups, h0 = i % groups * hg, nh = Math.Min(hg, Nh - h0), p = p0 + t;
            int first = Math.Max(0, p - W + 1);
            int nWin = p - first + 1;
            int nComp = ratio == 0 ? 0 : ratio == 4 ? Math.Min(k, (p + 1) / 4) : (p + 1) / ratio;
            int n = nWin + nComp;
            Span<float> s = n * nh <= 8192 ? stackalloc float[n * nh] : new float[n * nh]; // [head][row]
            if (tiles)
                TileScores(qa.AsSpan((t * Nh + h0) * D, 8 * D), s, n, nWin, first, scale, Row, CompRow);
            else
            {
                for (int j = 0; j < n; j++)
                {
                    ReadOnlySpan<float> row = j < nWin ? Row(first + j) : CompRow(j - nWin);
                    for (int h = 0; h < nh; h++)
                        s[h * n + j] = TensorPrimitives.Dot(qa.AsSpan((t * Nh + h0 + h) * D, D), row) * scale;
                }
            }
            for (int h = 0; h < nh; h++)
            {
                Span<float> sh = s.Slice(h * n, n);
                float sink = sinks[h0 + h], max = MathF.Max(TensorPrimitives.Max(sh), sink);
                TensorPrimitives.Subtract(sh, max, sh);
                TensorPrimitives.Exp(sh, sh);
                TensorPrimitives.Multiply(sh, 1f / (TensorPrimitives.Sum(sh) + MathF.Exp(sink - max)), sh);
                oa.AsSpan((t * Nh + h0 + h) * D, D).Clear();
            }
            if (tiles)
                TileValues(oa.AsSpan((t * Nh + h0) * D, 8 * D), s, n, nWin, first, Row, CompRow);
            else
            {
                for (int j = 0; j < n; j++)
                {
                    ReadOnlySpan<float> row = j < nWin ? Row(first + j) : CompRow(j - nWin);
                    for (int h = 0; h < nh; h++)
                    {
                        Span<float> oh = oa.AsSpan((t * Nh + h0 + h) * D, D);
                        TensorPrimitives.MultiplyAdd(row, s[h * n + j], oh, oh);
                    }
                }
            }

            ReadOnlySpan<float> Row(int pos) => pos >= p0 ? kva.AsSpan((pos - p0) * D, D) : lc.Raw.AsSpan(pos % W * D, D);

            ReadOnlySpan<float> CompRow(int j)
            {
                int b = ratio == 4 ? topk[t * k + j] : j;
                return lc.Compressed.AsSpan(b * D, D);
            }
        });

        // the window keeps the last W raw rows
        for (int pos = Math.Max(p0, p0 + T - W); pos < p0 + T; pos++)
            kv.Slice((pos - p0) * D, D).CopyTo(cache.Raw.AsSpan(pos % W * D, D));

        // de-rotate the outputs, then the grouped low-rank projection: group g's heads through rows g·Ro.. of wo_a
        Span<float> o = _o.AsSpan(0, T * Nh * D);
        for (int t = 0; t < T; t++)
        {
            ReadOnlySpan<float> ct = cos.Slice(t * half, half);
            Span<float> st = sin.Slice(t * half, half);
            TensorPrimitives.Negate(st, st);
            for (int h = 0; h < Nh; h++)
                Ops.RopeInterleaved(o.Slice((t * Nh + h) * D + D - Dr, Dr), ct, st);
        }
        int G = c.OGroups, Ro = c.OLoraRank, Dg = Nh * D / G;
        Grow(ref _og, T * Dg);
        Grow(ref _oa, T * G * Ro);
        Span<float> og = _og.AsSpan(0, T * Dg), oaSpan = _oa.AsSpan(0, T * G * Ro);
        for (int g = 0; g < G; g++)
        {
            for (int t = 0; t < T; t++)
                o.Slice(t * Nh * D + g * Dg, Dg).CopyTo(og.Slice(t * Dg, Dg));
            Backend.MatMul(w.WoA, og, T, oaSpan.Slice(g * Ro), G * Ro, g * Ro, Ro);
        }
        Backend.MatMul(w.WoB, oaSpan, T, y);
    }

    /// <summary>Whether 8-head groups use the tiled kernels (tests compare both forms).</summary>
    public bool HeadTiles { get; init; } = true;

    private delegate ReadOnlySpan<float> RowOf(int index);

    // s[h·n + j] = q_h · row_j · scale for the 8 heads of q [8, D], rows gathered 8 at a time into a contiguous tile
    private static unsafe void TileScores(ReadOnlySpan<float> q, Span<float> s, int n, int nWin, int first, float scale, RowOf row, RowOf comp)
    {
        int D = q.Length / 8;
        Span<float> rows = 8 * D <= 8192 ? stackalloc float[8 * D] : new float[8 * D];
        Span<float> sp = stackalloc float[64];
        fixed (float* qp = q, rp = rows, spp = sp)
        {
            for (int j0 = 0; j0 < n; j0 += 8)
            {
                int nb = Gather(rows, D, j0, n, nWin, first, row, comp);
                AttentionKernels.Scores(qp, D, 8, rp, D, nb, D, scale, spp, accumulate: false);
                for (int h = 0; h < 8; h++)
                    sp.Slice(h * 8, nb).CopyTo(s.Slice(h * n + j0, nb));
            }
        }
    }

    // candidates j0 .. j0+8 (window rows first, then compressed rows) copied into a contiguous tile; returns how many
    private static int Gather(Span<float> rows, int D, int j0, int n, int nWin, int first, RowOf row, RowOf comp)
    {
        int nb = Math.Min(8, n - j0);
        for (int j = 0; j < nb; j++)
            (j0 + j < nWin ? row(first + j0 + j) : comp(j0 + j - nWin)).CopyTo(rows.Slice(j * D, D));
        return nb;
    }

    // o_h += Σ_j s[h·n + j]·row_j for the 8 heads of o [8, D], a tile of 8 rows at a time with the 8 accumulators in registers
    private static unsafe void TileValues(Span<float> o, ReadOnlySpan<float> s, int n, int nWin, int first, RowOf row, RowOf comp)
    {
        int D = o.Length / 8;
        Span<float> rows = 8 * D <= 8192 ? stackalloc float[8 * D] : new float[8 * D];
        Span<float> e = stackalloc float[64];
        fixed (float* op = o, rp = rows, ep = e)
        {
            for (int j0 = 0; j0 < n; j0 += 8)
            {
                int nb = Gather(rows, D, j0, n, nWin, first, row, comp);
                for (int h = 0; h < 8; h++)
                    s.Slice(h * n + j0, nb).CopyTo(e.Slice(h * 8, nb));
                AttentionKernels.AccumulateHeads8(op, D, rp, D, ep, nb);
            }
        }
    }

    /// <summary>
    /// Feeds the chunk's tokens to a compressor; each completed window becomes a row (pooled, normed, rotated at the
    /// window's first position) written after the cache's committed rows.
    /// </summary>
    private int Compress(V4CompressorWeights cw, V4CompressorState st, ReadOnlySpan<float> xn, int p0, int T, V4LayerCache cache, bool index)
    {
        int ratio = st.Ratio, Wd = st.Width, C = st.Coff * Wd, Dr = _c.RopeHeadDim, half = Dr / 2;
        Grow(ref _ckv, T * C);
        Grow(ref _cscore, T * C);
        Span<float> kv = _ckv.AsSpan(0, T * C), score = _cscore.AsSpan(0, T * C);
        Backend.MatMul(cw.Wkv, xn, T, kv);
        Backend.MatMul(cw.Wgate, xn, T, score);
        int emitted = 0;
        cache.Reserve(cache.CompressedCount + T / ratio + 1);
        Span<float> cos = stackalloc float[half], sin = stackalloc float[half];
        Span<float> vals = stackalloc float[2 * ratio], scs = stackalloc float[2 * ratio];
        for (int t = 0; t < T; t++)
        {
            int p = p0 + t, slot = p % ratio, row = st.CurrentBase + slot;
            kv.Slice(t * C, C).CopyTo(st.Kv.AsSpan(row * C, C));
            TensorPrimitives.Add(score.Slice(t * C, C), cw.Ape.AsSpan(slot * C, C), st.Score.AsSpan(row * C, C));
            if ((p + 1) % ratio != 0)
                continue;
            int b = p / ratio;
            float[] dstArr = index ? cache.IndexKeys : cache.Compressed;
            Span<float> dst = dstArr.AsSpan((cache.CompressedCount + emitted) * Wd, Wd);
            bool overlap = st.Coff == 2;
            for (int d = 0; d < Wd; d++)
            {
                int n = 0;
                if (overlap && st.HasPrevious)
                {
                    for (int r = 0; r < ratio; r++)
                    {
                        vals[n] = st.Kv[r * C + d];
                        scs[n++] = st.Score[r * C + d];
                    }
                }
                int col = overlap ? Wd + d : d;
                for (int r = 0; r < ratio; r++)
                {
                    vals[n] = st.Kv[(st.CurrentBase + r) * C + col];
                    scs[n++] = st.Score[(st.CurrentBase + r) * C + col];
                }
                Span<float> sc = scs.Slice(0, n);
                Ops.Softmax(sc);
                dst[d] = TensorPrimitives.Dot(vals.Slice(0, n), sc);
            }
            Ops.RmsNorm(dst, cw.Norm, (float)_c.RmsNormEps, dst);
            _compressRope.CosSin(b * ratio, cos, sin);
            Ops.RopeInterleaved(dst.Slice(Wd - Dr), cos, sin);
            if (Precision == V4Precision.Reference)
            {
                if (index)
                    V4Quantization.RotateFp4(dst);
                else
                    V4Quantization.Fp8RoundTrip(dst.Slice(0, Wd - Dr));
            }
            if (overlap)
            {
                st.Kv.AsSpan(ratio * C, ratio * C).CopyTo(st.Kv);
                st.Score.AsSpan(ratio * C, ratio * C).CopyTo(st.Score);
                st.HasPrevious = true;
            }
            emitted++;
        }
        return emitted;
    }

    /// <summary>
    /// The lightning indexer: for each query t, scores I[t, b] = Σ_h w_h · relu(q_h · k_b) over the compressed rows it
    /// sees, and keeps the top k of them (all of them when fewer are visible) in _topk[t·k ..].
    /// </summary>
    private void Index(V4IndexerWeights w, ReadOnlySpan<float> xn, ReadOnlySpan<float> qr, int p0, int T, V4LayerCache cache, int k,
                       ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int In = _c.IndexHeads, Id = _c.IndexHeadDim, Dr = _c.RopeHeadDim, half = Dr / 2, n = cache.CompressedCount;
        Grow(ref _iq, T * In * Id);
        Grow(ref _iw, T * In);
        if (_topk.Length < T * Math.Max(k, 1))
            _topk = new int[T * Math.Max(k, 1)];
        Span<float> iq = _iq.AsSpan(0, T * In * Id), iw = _iw.AsSpan(0, T * In);
        Backend.MatMul(w.WqB, qr, T, iq);
        Backend.MatMul(w.Proj, xn, T, iw);
        TensorPrimitives.Multiply(iw, 1f / MathF.Sqrt((float)Id * In), iw);
        for (int t = 0; t < T; t++)
        {
            for (int h = 0; h < In; h++)
            {
                Span<float> qh = iq.Slice((t * In + h) * Id, Id);
                Ops.RopeInterleaved(qh.Slice(Id - Dr), cos.Slice(t * half, half), sin.Slice(t * half, half));
                if (Precision == V4Precision.Reference)
                    V4Quantization.RotateFp4(qh);
            }
        }
        if (k == 0)
            return;
        // scores [T, n]: work items of one token and up to 256 keys (a decode step spreads its keys over the workers),
        // the keys 8 at a time through the 4x4 register-blocked dot products; then each token's top k
        const int Chunk = 256;
        int chunks = (n + Chunk - 1) / Chunk;
        // tokens in blocks whose scores take at most 4M floats (a long context's [T, n] would not)
        int tb = Math.Max(1, Math.Min(T, (4 << 20) / Math.Max(n, 1)));
        Grow(ref _iscore, tb * n);
        float[] iqa = _iq, iwa = _iw, keys = cache.IndexKeys, score = _iscore;
        int[] topk = _topk;
        for (int tS = 0; tS < T; tS += tb)
        {
            int t0 = tS, tn = Math.Min(tb, T - tS);
            Backend.For(tn * chunks, i =>
            {
                int tl = i / chunks, t = t0 + tl, b0 = i % chunks * Chunk;
                int visible = Math.Min(n, (p0 + t + 1) / 4), b1 = Math.Min(visible, b0 + Chunk);
                Span<float> sp = stackalloc float[8 * 64];
                for (int b = b0; b < b1; b += 8)
                {
                    int nb = Math.Min(8, b1 - b);
                    for (int h0 = 0; h0 < In; h0 += 64)
                    {
                        int nh = Math.Min(64, In - h0);
                        unsafe
                        {
                            fixed (float* q = iqa, kp = keys, spp = sp)
                                AttentionKernels.Scores(q + ((long)t * In + h0) * Id, Id, nh, kp + (long)b * Id, Id, nb, Id, 1f, spp, accumulate: false);
                        }
                        for (int j = 0; j < nb; j++)
                        {
                            float acc = h0 == 0 ? 0 : score[tl * n + b + j];
                            for (int h = 0; h < nh; h++)
                                acc += iwa[t * In + h0 + h] * MathF.Max(0, sp[h * 8 + j]);
                            score[tl * n + b + j] = acc;
                        }
                    }
                }
            });
            Backend.For(tn, tl =>
            {
                int t = t0 + tl, visible = Math.Min(n, (p0 + t + 1) / 4);
                if (visible == 0)
                    return;
                Span<float> scratch = visible <= 2048 ? stackalloc float[visible] : new float[visible];
                IndexerKernels.TopK(score.AsSpan(tl * n, visible), Math.Min(k, visible), topk.AsSpan(t * k, k), scratch);
            });
        }
    }

    // ---- MoE ----

    /// <summary>
    /// scores = sqrt(softplus(gate · x)); experts: hash layers by the token's table row, others the top K of scores + bias;
    /// weights = the chosen scores, normalized to sum 1, times routed_scaling_factor; SwiGLU experts clamped at the layer's
    /// limits; plus the shared expert.
    /// </summary>
    private void Moe(V4LayerWeights w, int layer, ReadOnlySpan<float> xn, ReadOnlySpan<int> ids, int T, Span<float> y)
    {
        V4Config c = _c;
        int H = c.HiddenSize, E = c.NRoutedExperts, K = c.NumExpertsPerTok, I = c.MoeIntermediateSize, Is = I * c.NSharedExperts;
        Grow(ref _scores, T * E);
        Span<float> scores = _scores.AsSpan(0, T * E);
        Backend.MatMul(w.Gate, xn, T, scores);
        if (_chosen.Length < T * K)
        {
            _chosen = new int[T * K];
            _weight = new float[T * K];
        }
        int[] chosen = _chosen;
        float[] weight = _weight;
        Span<float> biased = E <= 1024 ? stackalloc float[E] : new float[E];
        Span<float> scratch = E <= 1024 ? stackalloc float[E] : new float[E];
        Span<int> top = stackalloc int[K];
        for (int t = 0; t < T; t++)
        {
            Span<float> s = scores.Slice(t * E, E);
            for (int e = 0; e < E; e++)
                s[e] = MathF.Sqrt(Softplus(s[e]));
            if (w.Tid2Eid is { } table)
                table.AsSpan(ids[t] * K, K).CopyTo(top);
            else
            {
                TensorPrimitives.Add(s, w.Bias!, biased);
                IndexerKernels.TopK(biased, K, top, scratch);

            }
            float sum = 0;
            for (int j = 0; j < K; j++)
                sum += s[top[j]];
            float mul = (float)c.RoutedScalingFactor / (c.NormTopkProb ? sum : 1f);
            for (int j = 0; j < K; j++)
            {
                chosen[t * K + j] = top[j];
                weight[t * K + j] = s[top[j]] * mul;
            }
        }

        // group the assignments by expert (Moe.Group), run each chosen expert over its rows, then per token the weighted
        // sum in ascending expert id (Moe.Combine), then the shared expert added (as llama.cpp: routed sum + shared).
        // With enough chosen experts to keep every worker busy, the experts run in parallel, each on one thread: one
        // dispatch instead of three per expert (a decode step's 18 small products)
        Grow(ref _count, E);
        Grow(ref _offset, E + 1);
        Grow(ref _slot, T * K);
        Grow(ref _pos, T * K);
        Grow(ref _active, E);
        Layers.Moe.Group(chosen.AsSpan(0, T * K), E, _count.AsSpan(0, E), _offset, _slot, _pos);
        int active = 0;
        for (int e = 0; e < E; e++)
        {
            if (_count[e] > 0)
                _active[active++] = e;
        }
        Grow(ref _eo, T * K * H);
        _moeLayer = w;
        _moeLimit = c.SwigluLimitRouted[layer];
        if (Backend.Workers > 1 && active >= 2 * Backend.Workers)
        {
            _runExpert ??= a => RunExpert(_active[a], ComputeBackend.Cpu);
            Backend.For(active, _runExpert);
        }
        else
        {
            for (int a = 0; a < active; a++)
                RunExpert(_active[a], Backend);
        }
        _moeLayer = null;
        for (int t = 0; t < T; t++)
            Layers.Moe.Combine(chosen.AsSpan(t * K, K), weight.AsSpan(t * K, K), _pos.AsSpan(t * K, K), _eo, y.Slice(t * H, H));

        Grow(ref _gate, T * Is);
        Grow(ref _up, T * Is);
        Grow(ref _xs, T * H);
        Swiglu(w.SharedGate, w.SharedUp, xn, T, Is, c.SwigluLimitShared[layer]);
        Backend.MatMul(w.SharedDown, _gate.AsSpan(0, T * Is), T, _xs.AsSpan(0, T * H));
        TensorPrimitives.Add(y.Slice(0, T * H), _xs.AsSpan(0, T * H), y.Slice(0, T * H));
    }

    private V4LayerWeights? _moeLayer;
    private float _moeLimit;
    private int[] _count = [], _offset = [], _slot = [], _pos = [], _active = [];
    private Action<int>? _runExpert;
    [ThreadStatic] private static float[]? t_xe, t_gate, t_up;

    // expert e over its grouped rows: gather, SwiGLU (clamped), down, into rows offset[e].. of _eo
    private void RunExpert(int e, ComputeBackend be)
    {
        V4LayerWeights w = _moeLayer!;
        int H = _c.HiddenSize, K = _c.NumExpertsPerTok, I = _c.MoeIntermediateSize, n = _count[e], j0 = _offset[e];
        float[] xe = Scratch(ref t_xe, n * H), g = Scratch(ref t_gate, n * I), u = Scratch(ref t_up, n * I);
        Layers.Moe.Gather(_xn, _slot.AsSpan(j0, n), K, H, xe);
        Span<float> gs = g.AsSpan(0, n * I), us = u.AsSpan(0, n * I);
        be.MatMul(w.ExpertGate[e], xe.AsSpan(0, n * H), n, gs);
        be.MatMul(w.ExpertUp[e], xe.AsSpan(0, n * H), n, us);
        ClampedSiluMul(gs, us, _moeLimit);
        be.MatMul(w.ExpertDown[e], gs, n, _eo.AsSpan(j0 * H, n * H));
    }

    private static float[] Scratch(ref float[]? a, int n)
    {
        if (a is null || a.Length < n)
            a = new float[Math.Max(n, 1024)];
        return a;
    }

    // _gate[0, n·I) = silu(min(g, L)) · clamp(u, -L, L) (no clamp when L is 0)
    private void Swiglu(WeightMatrix gate, WeightMatrix up, ReadOnlySpan<float> x, int n, int I, float limit)
    {
        Span<float> g = _gate.AsSpan(0, n * I), u = _up.AsSpan(0, n * I);
        Backend.MatMul(gate, x, n, g);
        Backend.MatMul(up, x, n, u);
        ClampedSiluMul(g, u, limit);
    }

    // g = silu(min(g, L)) · clamp(u, -L, L), as llama.cpp's swiglu_clamp (no clamp when L is 0)
    private static void ClampedSiluMul(Span<float> g, Span<float> u, float limit)
    {
        if (limit > 1e-6f)
        {
            TensorPrimitives.Min(g, limit, g);
            TensorPrimitives.Clamp(u, -limit, limit, u);
        }
        Ops.SiluMul(g, u);
    }

    private static float Softplus(float z) => z > 20 ? z : MathF.Log(1 + MathF.Exp(z));

    private static void Grow<TE>(ref TE[] a, int n)
    {
        if (a.Length < n)
            a = new TE[n];
    }
}

/// <summary>V4's RoPE: interleaved pairs on the last Dr dims; compressed layers use their own base and YaRN (no magnitude scaling).</summary>
public sealed class V4Rope
{
    private readonly double[] _freq;

    public V4Rope(V4Config c, bool compressed)
    {
        int dim = c.RopeHeadDim, half = dim / 2;
        double theta = compressed ? c.CompressRopeTheta : c.RopeTheta;
        _freq = new double[half];
        for (int i = 0; i < half; i++)
            _freq[i] = 1.0 / Math.Pow(theta, 2.0 * i / dim);
        if (compressed && c.HasYarn)
        {
            double CorrDim(double rot) => dim * Math.Log(c.YarnOriginalMaxPositions / (rot * 2 * Math.PI)) / (2 * Math.Log(theta));
            double low = Math.Max(Math.Floor(CorrDim(c.YarnBetaFast)), 0), high = Math.Min(Math.Ceiling(CorrDim(c.YarnBetaSlow)), dim - 1);
            if (low == high)
                high += 0.001;
            for (int i = 0; i < half; i++)
            {
                double ramp = Math.Clamp((i - low) / (high - low), 0, 1);
                double smooth = 1 - ramp;
                _freq[i] = _freq[i] / c.YarnFactor * (1 - smooth) + _freq[i] * smooth;
            }
        }
    }

    /// <summary>cos and sin of position <paramref name="pos"/> for each pair.</summary>
    public void CosSin(int pos, Span<float> cos, Span<float> sin)
    {
        for (int i = 0; i < _freq.Length; i++)
        {
            double a = pos * _freq[i];
            cos[i] = (float)Math.Cos(a);
            sin[i] = (float)Math.Sin(a);
        }
    }
}
