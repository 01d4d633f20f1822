// DeepSeek-V3.2's lightning indexer (DeepSeek Sparse Attention; DeepSeek-V3.2-Exp inference/model.py Indexer, after the
// 2025-11-17 RoPE fix), an attention variant (AttentionVariant.cs). Per layer, for every token t:
//   q_t = W_idx_qb · cq_t  [Hi, Di]   (cq: MLA's normalized query latent)       k_t = LayerNorm(W_idx_k · x_t) [Di]
//   RoPE on the first Dr dims of each q head and of k, half-split (not interleaved like MLA's)
//   fp8 precision (the reference): q, k ← Hadamard(·)·Di^-1/2, then e4m3 with a power-of-two scale per 128 values
//   w_t = W_idx_w · x_t · Hi^-1/2 · Di^-1/2  [Hi]
//   score(t, s) = Σ_h w_t[h] · relu(q_t[h] · k_s)  for cached s ≤ t;   MLA attends to the top index_topk positions.
// The keys are cached per sequence (fp8 + scales, or f32), in groups of 16 positions (IndexerKernels' layout). While a
// query has at most index_topk positions, the selection is all of them (dense). Kernels: SharpSeek.Tensors IndexerKernels.
using SharpSeek.Model.Architecture;
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>The V3.2 lightning indexer: selects the cached positions MLA attends to.</summary>
public sealed partial class Indexer : IAttentionVariant
{
    /// <summary>LayerNorm epsilon of k_norm (model.py LayerNorm default).</summary>
    public const float KNormEps = 1e-6f;

    private readonly ModelConfig _c;

    public Indexer(ModelConfig c)
    {
        _c = c;
        Config = c.Indexer ?? throw new ArgumentException($"{c.ModelType} has no indexer settings (index_n_heads, index_head_dim, index_topk)");
        Fp8 = c.IndexerPrecision == IndexerPrecision.Fp8;
    }

    public IndexerConfig Config { get; }

    /// <summary>True when q and k are rotated and quantized to FP8 as in DeepSeek's reference.</summary>
    public bool Fp8 { get; }

    public IVariantCache CreateCache(int layer, CacheType type) => new IndexerKeyCache(Config.HeadDim, Fp8);

    public IAttentionSelector CreateSelector() => new Selector(_c, this);

    public long CacheBytesPerToken(CacheType type) => IndexerKeyCache.BytesPerToken(Config.HeadDim, Fp8);

    public string Description =>
        $"lightning indexer (DSA): {Config.Heads} heads x {Config.HeadDim}, top {Config.TopK} positions, keys {(Fp8 ? "fp8 e4m3 + scales" : "f32")}";

    public IReadOnlyDictionary<string, object> Settings => new Dictionary<string, object>
    {
        ["kind"] = "indexer",
        ["heads"] = Config.Heads,
        ["head_dim"] = Config.HeadDim,
        ["top_k"] = Config.TopK,
        ["precision"] = Fp8 ? "fp8" : "f32",
    };

    /// <summary>
    /// One token's key from its row kx = W_idx_k x [Di]: LayerNorm (weight, bias), RoPE on the first Dr dims (half-split),
    /// then for fp8 the Hadamard rotation. In place.
    /// </summary>
    public static void Key(Span<float> kx, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool fp8)
    {
        LayerNorm(kx, weight, bias, KNormEps);
        IndexerKernels.RopeHalfSplit(kx, cos, sin);
        if (fp8)
            IndexerKernels.Hadamard(kx);
    }

    /// <summary>
    /// One token's queries q [Hi·Di] in place: RoPE on the first Dr dims of every head (half-split), then for fp8 the
    /// Hadamard rotation and the quantization round trip (the values the FP8 scoring multiplies).
    /// </summary>
    public static void Queries(Span<float> q, int Hi, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, bool fp8)
    {
        int D = q.Length / Hi;
        for (int h = 0; h < Hi; h++)
        {
            Span<float> qh = q.Slice(h * D, D);
            IndexerKernels.RopeHalfSplit(qh, cos, sin);
            if (fp8)
            {
                IndexerKernels.Hadamard(qh);
                IndexerKernels.QuantizeDequantize(qh, qh);
            }
        }
    }

    /// <summary>LayerNorm over x in place: (x − mean)/sqrt(var + eps) · weight + bias (biased variance, fp32).</summary>
    public static void LayerNorm(Span<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps)
    {
        int n = x.Length;
        float mean = System.Numerics.Tensors.TensorPrimitives.Sum(x) / n, var = 0;
        foreach (float v in x)
            var += (v - mean) * (v - mean);
        float rstd = 1f / MathF.Sqrt(var / n + eps);
        for (int i = 0; i < n; i++)
            x[i] = (x[i] - mean) * rstd * weight[i] + bias[i];
    }

    private sealed class Selector(ModelConfig c, Indexer ix) : IAttentionSelector
    {
        private float[]? _q, _k, _w, _scores, _work;
        private IndexerKeyCache? _cache;
        private int _slot, _chunkGroups;
        private Action<int>? _scoreChunk, _selectSlot;
        private TokenSlot[] _slotBuf = []; // the batch's slots, for the workers (kept: no allocation per call)
        private ReadOnlyMemory<TokenSlot> _slots;
        private IReadOnlyList<KvCache>? _caches;
        private int _layer;
        private PositionSelection? _sel;

        [ThreadStatic] private static float[]? t_scores, t_work, t_tile;


        public void Select(ComputeBackend be, AttentionWeights w, int layer, ReadOnlySpan<TokenSlot> slots, IReadOnlyList<KvCache> caches,
                           ReadOnlySpan<float> x, ReadOnlySpan<float> cq, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, PositionSelection sel)
        {
            IndexerConfig cfg = ix.Config;
            int T = slots.Length, Hi = cfg.Heads, D = cfg.HeadDim, half = c.QkRopeHeadDim / 2;
            Grow(ref _q, T * Hi * D);
            Grow(ref _k, T * D);
            Grow(ref _w, T * Hi);
            Span<float> q = _q.AsSpan(0, T * Hi * D), k = _k.AsSpan(0, T * D), wt = _w.AsSpan(0, T * Hi);
            ExtensionTensors e = w.Extensions;
            be.MatMul(e.Matrix(TensorRole.IndexerWqB), cq, T, q);
            be.MatMul(e.Matrix(TensorRole.IndexerWk), x, T, k);
            be.MatMul(e.Matrix(TensorRole.IndexerWeights), x, T, wt);
            float[] kw = e.Vector(TensorRole.IndexerKNorm), kb = e.Vector(TensorRole.IndexerKNormBias);
            // the reference rotates with unit-magnitude frequencies; MLA's tables carry YaRN's attention factor (1 for
            // released configs), which is divided out here
            float unit = 1f / (float)c.RopeAttentionFactor;
            Span<float> cs = stackalloc float[2 * half];
            float wScale = 1f / MathF.Sqrt(Hi) / MathF.Sqrt(D);
            for (int t = 0; t < T; t++)
            {
                System.Numerics.Tensors.TensorPrimitives.Multiply(cos.Slice(t * half, half), unit, cs.Slice(0, half));
                System.Numerics.Tensors.TensorPrimitives.Multiply(sin.Slice(t * half, half), unit, cs.Slice(half, half));
                Span<float> kt = k.Slice(t * D, D);
                Key(kt, kw, kb, cs.Slice(0, half), cs.Slice(half, half), ix.Fp8);
                Cache(caches, slots[t], layer).Write(slots[t].Position, kt);
                Queries(q.Slice(t * Hi * D, Hi * D), Hi, cs.Slice(0, half), cs.Slice(half, half), ix.Fp8);
                System.Numerics.Tensors.TensorPrimitives.Multiply(wt.Slice(t * Hi, Hi), wScale, wt.Slice(t * Hi, Hi));
            }

            // selection: dense while a query has at most index_topk positions
            sel.Reset(T, cfg.TopK);
            int sparse = 0;
            for (int t = 0; t < T; t++)
            {
                if (slots[t].Position + 1 > cfg.TopK)
                    sparse++;
            }
            if (sparse == 0)
                return;
            if (_slotBuf.Length < T)
                _slotBuf = new TokenSlot[T];
            slots.CopyTo(_slotBuf);
            _slots = _slotBuf.AsMemory(0, T);
            _caches = caches;
            _layer = layer;
            _sel = sel;
            if (sparse == 1 && be.Workers > 1)
            {
                // decode: one query, its positions split across the workers
                for (int t = 0; t < T; t++)
                {
                    if (slots[t].Position + 1 > cfg.TopK)
                        SelectSplit(be, t);
                }
            }
            else
            {
                _selectSlot ??= SelectSlot;
                be.For(T, _selectSlot);
            }
            _slots = default;
            _caches = null;
            _sel = null;
        }

        private IndexerKeyCache Cache(IReadOnlyList<KvCache> caches, TokenSlot s, int layer) =>
            caches[s.Sequence].Extensions[layer] as IndexerKeyCache
            ?? throw new InvalidOperationException($"the cache of sequence {s.Sequence} has no indexer keys for layer {layer}");

        // one slot's scores and top-k on one worker (prefill: slots in parallel)
        private void SelectSlot(int t)
        {
            TokenSlot s = _slots.Span[t];
            int S = s.Position + 1, K = ix.Config.TopK;
            if (S <= K)
                return;
            IndexerKeyCache cache = Cache(_caches!, s, _layer);
            int groups = (S + IndexerKernels.Group - 1) / IndexerKernels.Group;
            Grow(ref t_scores, groups * IndexerKernels.Group);
            Grow(ref t_work, S);
            Grow(ref t_tile, ix.Config.HeadDim * IndexerKernels.Group);
            Span<float> scores = t_scores.AsSpan(0, groups * IndexerKernels.Group);
            cache.Scores(Query(t), Weights(t), 0, groups, t_tile, scores);
            Finish(t, scores.Slice(0, S), t_work!);
        }

        // one slot's scores split by key groups across the workers, then its top-k (decode)
        private void SelectSplit(ComputeBackend be, int t)
        {
            int S = _slots.Span[t].Position + 1, groups = (S + IndexerKernels.Group - 1) / IndexerKernels.Group;
            Grow(ref _scores, groups * IndexerKernels.Group);
            Grow(ref _work, S);
            _cache = Cache(_caches!, _slots.Span[t], _layer);
            _slot = t;
            int chunks = Math.Min(groups, 4 * be.Workers);
            _chunkGroups = (groups + chunks - 1) / chunks;
            _scoreChunk ??= ScoreChunk;
            be.For((groups + _chunkGroups - 1) / _chunkGroups, _scoreChunk);
            _cache = null;
            Finish(t, _scores.AsSpan(0, S), _work!);
        }

        private void ScoreChunk(int chunk)
        {
            int S = _slots.Span[_slot].Position + 1, groups = (S + IndexerKernels.Group - 1) / IndexerKernels.Group;
            int g0 = chunk * _chunkGroups, g1 = Math.Min(groups, g0 + _chunkGroups);
            Grow(ref t_tile, ix.Config.HeadDim * IndexerKernels.Group);
            _cache!.Scores(Query(_slot), Weights(_slot), g0, g1 - g0, t_tile,
                           _scores!.AsSpan(g0 * IndexerKernels.Group, (g1 - g0) * IndexerKernels.Group));
        }

        private ReadOnlySpan<float> Query(int t) => _q.AsSpan(t * ix.Config.Heads * ix.Config.HeadDim, ix.Config.Heads * ix.Config.HeadDim);

        private ReadOnlySpan<float> Weights(int t) => _w.AsSpan(t * ix.Config.Heads, ix.Config.Heads);

        private void Finish(int t, ReadOnlySpan<float> scores, float[] work)
        {
            int n = IndexerKernels.TopK(scores, ix.Config.TopK, _sel!.Buffer(t), work);
            _sel.SetCount(t, n);
        }

        private static void Grow(ref float[]? a, int n)
        {
            if (a is null || a.Length < n)
                a = new float[n];
        }

    }
}

/// <summary>
/// One sequence's indexer keys for one layer: per position Di values, fp8 e4m3 with one power-of-two scale per block
/// (as the reference's k_cache and k_scale_cache) or f32, in blocks of 256 positions laid out [group of 16][d][16].
/// </summary>
public sealed class IndexerKeyCache : IVariantCache
{
    private const int BlockTokens = 256;
    private readonly int _d, _bs, _nb;
    private readonly bool _fp8;
    private readonly List<byte[]> _q = [];
    private readonly List<float[]> _s = [], _f = [];

    public IndexerKeyCache(int headDim, bool fp8)
    {
        _d = headDim;
        _fp8 = fp8;
        _bs = IndexerKernels.BlockOf(headDim);
        _nb = headDim / _bs;
    }

    /// <summary>Bytes per cached position: Di fp8 values and their fp32 scales, or Di fp32 values.</summary>
    public static long BytesPerToken(int headDim, bool fp8) => fp8 ? headDim + 4L * (headDim / IndexerKernels.BlockOf(headDim)) : 4L * headDim;

    public int Length { get; private set; }

    public long Bytes => Length * BytesPerToken(_d, _fp8);

    /// <summary>Stores the key of <paramref name="position"/> (≤ Length: append or overwrite).</summary>
    public void Write(int position, ReadOnlySpan<float> key)
    {
        if ((uint)position > (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(position), $"position {position} leaves a gap after {Length} cached keys");
        int block = position / BlockTokens, g = position % BlockTokens / IndexerKernels.Group, j = position % IndexerKernels.Group;
        int G = IndexerKernels.Group;
        if (_fp8)
        {
            while (_q.Count <= block)
            {
                _q.Add(new byte[BlockTokens * _d]);
                _s.Add(new float[BlockTokens * _nb]);
            }
            Span<byte> q = stackalloc byte[IndexerKernels.QuantBlock];
            byte[] qb = _q[block];
            float[] sb = _s[block];
            for (int b = 0; b < _nb; b++)
            {
                sb[(g * _nb + b) * G + j] = IndexerKernels.QuantizeBlock(key.Slice(b * _bs, _bs), q);
                for (int i = 0; i < _bs; i++)
                    qb[(g * _d + b * _bs + i) * G + j] = q[i];
            }
        }
        else
        {
            while (_f.Count <= block)
                _f.Add(new float[BlockTokens * _d]);
            float[] fb = _f[block];
            for (int d = 0; d < _d; d++)
                fb[(g * _d + d) * G + j] = key[d];
        }
        if (position == Length)
            Length++;
    }

    /// <summary>The stored key of a position as fp32 (dequantized for fp8).</summary>
    public void Read(int position, Span<float> key)
    {
        if ((uint)position >= (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(position));
        int block = position / BlockTokens, g = position % BlockTokens / IndexerKernels.Group, j = position % IndexerKernels.Group;
        int G = IndexerKernels.Group;
        for (int d = 0; d < _d; d++)
        {
            key[d] = _fp8
                ? Fp8E4M3.ToFloat(_q[block][(g * _d + d) * G + j]) * _s[block][(g * _nb + d / _bs) * G + j]
                : _f[block][(g * _d + d) * G + j];
        }
    }

    /// <summary>
    /// Index scores of one query (q [Hi·Di], head weights w [Hi]) over the key groups [g0, g0 + groups) (16 positions
    /// each; positions past Length score garbage the caller ignores). tile: Di·16 floats of scratch.
    /// </summary>
    public void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> w, int g0, int groups, Span<float> tile, Span<float> scores)
    {
        int perBlock = BlockTokens / IndexerKernels.Group, G = IndexerKernels.Group;
        for (int g = g0; g < g0 + groups;)
        {
            int block = g / perBlock, first = g % perBlock, n = Math.Min(perBlock - first, g0 + groups - g);
            Span<float> dst = scores.Slice((g - g0) * G, n * G);
            if (_fp8)
                IndexerKernels.ScoresFp8(q, w, _d, _q[block].AsSpan(first * _d * G, n * _d * G), _s[block].AsSpan(first * _nb * G, n * _nb * G), n, tile, dst);
            else
                IndexerKernels.ScoresF32(q, w, _d, _f[block].AsSpan(first * _d * G, n * _d * G), n, dst);
            g += n;
        }
    }

    public void Truncate(int length)
    {
        if ((uint)length > (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(length));
        Length = length;
    }

    public IVariantCache Copy(int length)
    {
        if ((uint)length > (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(length));
        var copy = new IndexerKeyCache(_d, _fp8);
        int blocks = (length + BlockTokens - 1) / BlockTokens;
        for (int b = 0; b < blocks; b++)
        {
            if (_fp8)
            {
                copy._q.Add((byte[])_q[b].Clone());
                copy._s.Add((float[])_s[b].Clone());
            }
            else
            {
                copy._f.Add((float[])_f[b].Clone());
            }
        }
        copy.Length = length;
        return copy;
    }
}
