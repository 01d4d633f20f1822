// MLA, absorbed form (decode): q̃ = W_UKᵀ q_nope, score = q̃·c + q_pe·k_pe, ō = Σ p c, o = W_UV ō, one query token
// over the latent cache without decompressing it (DeepSeek-V3 model.py attn_impl="absorb"). Kernels: AttentionKernels.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpSeek.Tensors;
using static SharpSeek.Tensors.AttentionKernels;

namespace SharpSeek.Model.Layers;

public sealed partial class Mla
{
    // ---- absorbed attention (decode): each query token over its latent cache, split by positions across workers ----
    // Per chunk of positions and every head: m = max score, l = Σ e^(score−m), ō = Σ e^(score−m)·c (flash-decoding);
    // the chunks are merged per head, then o^h = W_UV^h ō^h. Each cached row is converted once and used by all heads.
    // The absorbed tokens of a step (one per decoding sequence of a batch) run together, in three parallel phases
    // over all of them: absorb (per head: every token's q̃^h, so W_UK^h is read once for the step), attend (every
    // token's chunks), output (per head: merge and W_UV^h for every token). A token's chunks and sums are those it
    // has alone, so a batched step gives the same outputs as one sequence's.

    private AttentionWeights? _w;
    private readonly List<AbsorbedSlot> _absorbed = [];
    private int[] _chunkToken = [];
    private int _totalChunks;
    private float[] _qtAll = [], _partO = [], _partM = [], _partL = [], _rowScratch = [], _scoreScratch = [];
    private Action<int>? _absorbHead, _attendChunk, _outputHead;

    /// <summary>An absorbed query: its slot in the batch, its cache, the positions it attends (all of 0..Position, or
    /// a sparse selection of Attended), and its chunks [Chunk0, Chunk0 + Chunks) of ChunkLen positions.</summary>
    private record struct AbsorbedSlot(int Slot, LatentCache Cache, bool Sparse, int Attended, int Chunk0, int Chunks, int ChunkLen);

    /// <summary>Queues the absorbed attention of slot <paramref name="slot"/> (at <paramref name="pos"/>) for <see cref="RunAbsorbed"/>.</summary>
    private void AddAbsorbed(ComputeBackend be, LatentCache cache, int pos, int slot)
    {
        // a sparse slot attends to its selected positions only: those rows are gathered, the rest never read
        bool sparse = !_sel.IsDense(slot);
        int S = sparse ? _sel.Positions(slot).Length : pos + 1;
        // chunks of at least 32 positions, about two per worker
        int chunks = Math.Max(1, Math.Min(2 * be.Workers, S / 32));
        int chunkLen = ((S + chunks - 1) / chunks + Tile - 1) / Tile * Tile; // whole tiles, so that no tile straddles two cache blocks
        chunks = (S + chunkLen - 1) / chunkLen;
        _absorbed.Add(new AbsorbedSlot(slot, cache, sparse, S, _totalChunks, chunks, chunkLen));
        _totalChunks += chunks;
    }

    /// <summary>Runs the queued absorbed tokens (<see cref="AddAbsorbed"/>) into their rows of _o.</summary>
    private void RunAbsorbed(ComputeBackend be, AttentionWeights w)
    {
        int U = _absorbed.Count;
        if (U == 0)
            return;
        int Nh = _c.NumAttentionHeads, R = _c.KvLoraRank, Dr = _c.QkRopeHeadDim, C = _totalChunks;
        _w = w;
        Grow(ref _qtAll, U * Nh * (R + Dr));
        Grow(ref _partO, C * Nh * R);
        Grow(ref _partM, C * Nh);
        Grow(ref _partL, C * Nh);
        Grow(ref _rowScratch, C * (Tile + Nh) * (R + Dr));
        Grow(ref _scoreScratch, C * Nh * Tile);
        if (_chunkToken.Length < C)
            _chunkToken = new int[C];
        for (int u = 0; u < U; u++)
        {
            AbsorbedSlot a = _absorbed[u];
            _chunkToken.AsSpan(a.Chunk0, a.Chunks).Fill(u);
        }
        _absorbHead ??= AbsorbHead;
        _attendChunk ??= AttendChunk;
        _outputHead ??= OutputHead;
        be.For(Nh, _absorbHead);
        be.For(C, _attendChunk);
        be.For(Nh, _outputHead);
        _w = null;
        _absorbed.Clear();
        _totalChunks = 0;
    }

    /// <summary>Head h of every absorbed query [R + Dr]: q̃^h = W_UK^hᵀ q_nope^h, then q_pe^h, so that a score is one dot
    /// product with a cached latent row [c_kv | k_pe].</summary>
    private void AbsorbHead(int h)
    {
        int Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dr = _c.QkRopeHeadDim, Dv = _c.VHeadDim, R = _c.KvLoraRank;
        for (int u = 0; u < _absorbed.Count; u++)
        {
            int slot = _absorbed[u].Slot, at = (u * Nh + h) * (R + Dr);
            Span<float> qt = _qtAll.AsSpan(at, R);
            ReadOnlySpan<float> qNope = _q.AsSpan((slot * Nh + h) * (Dn + Dr), Dn);
            if (_w!.WkvB is IAbsorbedKvB split)
            {
                split.AbsorbQuery(h, qNope, qt);
            }
            else
            {
                qt.Clear();
                _w.WkvB.MatVecTransposedAdd(qNope, qt, h * (Dn + Dv), Dn);
            }
            _q.AsSpan((slot * Nh + h) * (Dn + Dr) + Dn, Dr).CopyTo(_qtAll.AsSpan(at + R, Dr));
        }
    }

    private unsafe void AttendChunk(int chunk)
    {
        int Nh = _c.NumAttentionHeads, Dr = _c.QkRopeHeadDim, R = _c.KvLoraRank, W = R + Dr;
        int u = _chunkToken[chunk];
        AbsorbedSlot a = _absorbed[u];
        int s0 = (chunk - a.Chunk0) * a.ChunkLen, s1 = Math.Min(a.Attended, s0 + a.ChunkLen);
        fixed (float* qt = &_qtAll[u * Nh * W], m = &_partM[chunk * Nh], l = &_partL[chunk * Nh], o = &_partO[chunk * Nh * R])
        fixed (float* rows = &_rowScratch[chunk * (Tile + Nh) * W], sp = &_scoreScratch[chunk * Nh * Tile])
        {
            if (a.Sparse)
                AttendPositions(qt, Nh, R, Dr, a.Cache, _sel.Positions(a.Slot).Slice(s0, s1 - s0), _scale, m, l, o, rows, sp);
            else
                AttendRange(qt, Nh, R, Dr, a.Cache, s0, s1, _scale, m, l, o, rows, sp);
        }
    }

    /// <summary>
    /// Absorbed attention of <paramref name="nh"/> query rows qt[h·(R+Dr) ..] over the cached positions [s0, s1), one
    /// tile of 8 positions at a time: the tile's rows are scored for every head (sp: nh·8 scratch), one online-softmax
    /// step for all heads, then every head's accumulator o[h·R ..] gains Σ e·c. m, l, o start at −∞, 0, 0 and end
    /// unnormalized (o/l is the attention output of the range). rows: (8 + nh)·(R+Dr) floats of scratch. A bf16 cache
    /// is read as bf16 in the products themselves (<see cref="AttendRangeBf16"/>) with AVX-512 and whole groups of 8
    /// heads, or without AVX-512 on AVX2; other caches have each tile's rows converted to fp32 once.
    /// </summary>
    public static unsafe void AttendRange(float* qt, int nh, int R, int Dr, LatentCache cache, int s0, int s1, float scale,
                                          float* m, float* l, float* o, float* rows, float* sp)
    {
        int W = R + Dr;
        new Span<float>(m, nh).Fill(float.NegativeInfinity);
        new Span<float>(l, nh).Clear();
        new Span<float>(o, nh * R).Clear();
        if (Bf16Path(cache, nh, R, Dr))
        {
            AttendRangeBf16(qt, nh, R, W, cache, s0, s1, scale, m, l, o, rows, sp, wide: true);
            return;
        }
        if (Bf16Avx2Path(cache, R, Dr))
        {
            AttendRangeBf16(qt, nh, R, W, cache, s0, s1, scale, m, l, o, rows, sp, wide: false);
            return;
        }
        for (int s = s0; s < s1; s += Tile)
        {
            int nb = Math.Min(Tile, s1 - s);
            ReadOnlySpan<float> tile = cache.Rows(s, nb, new Span<float>(rows, Tile * W));
            cache.Prefetch(s + Tile, Math.Min(Tile, s1 - s - Tile));
            fixed (float* rp = tile)
            {
                // score[h, j] = (q̃^h · c_j + q_pe^h · k_pe_j) · scale, then e[h, j] = e^(score − m_h) in place
                Scores(qt, nh, rp, nb, W, scale, sp);
                SoftmaxTile(sp, nh, nb, null, m, l, o, R, R);
                int h = 0;
                if (Vector512.IsHardwareAccelerated && R % 32 == 0)
                {
                    for (; h + 8 <= nh; h += 8)
                        AccumulateHeads8(o + h * R, R, rp, W, sp + h * Tile, nb);
                }
                if (nb == Tile)
                {
                    // two heads per pass over the tile's rows: the row loads, which bound the accumulation, are shared
                    for (; h + 2 <= nh; h += 2)
                        AccumulateRows2(o + h * R, o + (h + 1) * R, R, rp, W, new ReadOnlySpan<float>(sp + h * Tile, Tile), new ReadOnlySpan<float>(sp + (h + 1) * Tile, Tile));
                }
                for (; h < nh; h++)
                    AccumulateRows(o + h * R, R, rp, W, new ReadOnlySpan<float>(sp + h * Tile, Tile), nb);
            }
        }
    }

    /// <summary>
    /// <see cref="AttendRange"/> over the listed cached positions (sparse attention): each tile of 8 positions is gathered
    /// into <paramref name="rows"/> as fp32, then scored and accumulated as a contiguous tile.
    /// </summary>
    public static unsafe void AttendPositions(float* qt, int nh, int R, int Dr, LatentCache cache, ReadOnlySpan<int> positions, float scale,
                                              float* m, float* l, float* o, float* rows, float* sp)
    {
        int W = R + Dr;
        new Span<float>(m, nh).Fill(float.NegativeInfinity);
        new Span<float>(l, nh).Clear();
        new Span<float>(o, nh * R).Clear();
        for (int i = 0; i < positions.Length; i += Tile)
        {
            int nb = Math.Min(Tile, positions.Length - i);
            for (int j = 0; j < nb; j++)
            {
                var dst = new Span<float>(rows + j * W, W);
                ReadOnlySpan<float> row = cache.Row(positions[i + j], dst);
                if (!Unsafe.AreSame(ref MemoryMarshal.GetReference(row), ref MemoryMarshal.GetReference(dst)))
                    row.CopyTo(dst);
            }
            Scores(qt, nh, rows, nb, W, scale, sp);
            SoftmaxTile(sp, nh, nb, null, m, l, o, R, R);
            for (int h = 0; h < nh; h++)
                AccumulateRows(o + h * R, R, rows, W, new ReadOnlySpan<float>(sp + h * Tile, Tile), nb);
        }
    }

    /// <summary>Whether <see cref="AttendRange"/> takes the bf16 path: a bf16 cache, AVX-512, heads in groups of 8 and
    /// R, Dr multiples of 32.</summary>
    private static bool Bf16Path(LatentCache cache, int nh, int R, int Dr) =>
        cache.Type == CacheType.BF16 && Avx512F.IsSupported && nh % 8 == 0 && R % 32 == 0 && Dr % 32 == 0;

    /// <summary>Whether <see cref="AttendRange"/> takes the 256-bit bf16 path: a bf16 cache, AVX2 + FMA without AVX-512, R
    /// and Dr multiples of 16 (any number of heads).</summary>
    private static bool Bf16Avx2Path(LatentCache cache, int R, int Dr) =>
        cache.Type == CacheType.BF16 && !Avx512F.IsSupported && Bf16Avx2.IsSupported && R % 16 == 0 && Dr % 16 == 0;

    // The bf16 paths never write an fp32 copy of the rows: they are read as bf16 in the products (even / odd lanes), with
    // the queries permuted to match and the accumulators put back in order at the end; 512 bits wide (Bf16.EvenOdd: 32
    // values a step, 8 heads a block) or 256 (Bf16Avx2.EvenOdd: 16 values, 4 heads).

    private static unsafe void AttendRangeBf16(float* qt, int nh, int R, int W, LatentCache cache, int s0, int s1, float scale,
                                               float* m, float* l, float* o, float* scratch, float* sp, bool wide)
    {
        ushort* tileCopy = (ushort*)scratch; // a tile whose rows straddle two cache blocks is copied here (8·W bf16)
        float* qp = scratch + Tile * W;
        if (wide)
            Bf16.EvenOdd(qt, qp, nh * W);
        else
            Bf16Avx2.EvenOdd(qt, qp, nh * W);
        for (int s = s0; s < s1; s += Tile)
        {
            int nb = Math.Min(Tile, s1 - s);
            ReadOnlySpan<ushort> tile = cache.Bf16Rows(s, nb, new Span<ushort>(tileCopy, Tile * W));
            fixed (ushort* rp = tile)
            {
                if (wide)
                {
                    for (int g = 0; g < nh; g += 8)
                    {
                        for (int j = 0; j < nb; j += 2)
                            ScorePairHeads8(qp + g * W, W, rp + j * W, rp + Math.Min(j + 1, nb - 1) * W, scale, sp + g * Tile + j, j + 1 < nb);
                    }
                }
                else
                {
                    ScoresBf16Avx2(qp, nh, rp, nb, W, scale, sp);
                }
                SoftmaxTile(sp, nh, nb, null, m, l, o, R, R);
                if (wide)
                {
                    for (int g = 0; g < nh; g += 8)
                        AccumulateBf16Heads8(o + g * R, R, rp, W, sp + g * Tile, nb);
                }
                else
                {
                    AccumulateBf16Avx2(o, nh, R, rp, W, sp, nb);
                }
            }
        }
        if (wide)
            Bf16.Interleave(o, nh * R);
        else
            Bf16Avx2.Interleave(o, nh * R);
    }

    /// <summary>Merges the chunks of head h of every absorbed query and applies W_UV^h.</summary>
    private void OutputHead(int h)
    {
        int Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dv = _c.VHeadDim, R = _c.KvLoraRank;
        for (int u = 0; u < _absorbed.Count; u++)
        {
            AbsorbedSlot a = _absorbed[u];
            int c0 = a.Chunk0;
            float mMax = float.NegativeInfinity;
            for (int k = 0; k < a.Chunks; k++)
                mMax = Math.Max(mMax, _partM[(c0 + k) * Nh + h]);
            Span<float> ob = _partO.AsSpan((c0 * Nh + h) * R, R); // the first chunk's slot receives the merged sum
            float f0 = MathF.Exp(_partM[c0 * Nh + h] - mMax), L = _partL[c0 * Nh + h] * f0;
            TensorPrimitives.Multiply(ob, f0, ob);
            for (int k = 1; k < a.Chunks; k++)
            {
                float f = MathF.Exp(_partM[(c0 + k) * Nh + h] - mMax);
                L += _partL[(c0 + k) * Nh + h] * f;
                TensorPrimitives.MultiplyAdd(_partO.AsSpan(((c0 + k) * Nh + h) * R, R), f, ob, ob);
            }
            TensorPrimitives.Multiply(ob, 1f / L, ob);
            Span<float> o = _o.AsSpan((a.Slot * Nh + h) * Dv, Dv);
            if (_w!.WkvB is IAbsorbedKvB split)
                split.ApplyValue(h, ob, o);
            else
                _w.WkvB.MatVec(ob, o, h * (Dn + Dv) + Dn, Dv);
        }
    }
}
