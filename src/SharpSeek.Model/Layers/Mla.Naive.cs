// MLA, naive form (prefill): decompress k_nope and v = W_kvb c for the cached positions, then per-head causal attention
// of width Dn+Dr in flash-attention order (DeepSeek-V3 model.py attn_impl="naive"). Kernels: AttentionKernels.
using System.Numerics.Tensors;
using SharpSeek.Tensors;
using static SharpSeek.Tensors.AttentionKernels;

namespace SharpSeek.Model.Layers;

public sealed partial class Mla
{
    // ---- naive attention (prefill): decompress k_nope and v for the cached positions, heads in parallel ----

    private TokenSlot[] _naiveSlots = [];
    private int _naiveCount;
    private float[][] _naiveScratch = []; // per head: NaiveHead's query rows, accumulators and scores
    private Action<int>? _naiveHead;

    /// <summary>Naive attention for the slots of sequence <paramref name="seq"/> (from index <paramref name="first"/>), over S cached positions.</summary>
    private void NaiveSequence(ComputeBackend be, AttentionWeights w, LatentCache cache, ReadOnlySpan<TokenSlot> slots, int seq, int first, int S)
    {
        int Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dr = _c.QkRopeHeadDim, Dv = _c.VHeadDim, R = _c.KvLoraRank;
        int W = Dn + Dv;
        Grow(ref _c2, S * (R + Dr));
        Grow(ref _kv, S * Nh * W);
        Grow(ref _cc, S * R);
        Span<float> lat = _c2.AsSpan(0, S * (R + Dr));
        for (int s = 0; s < S; s++)
            cache.Read(s, lat.Slice(s * (R + Dr), R + Dr));
        // [k_nope ; v] for every cached position: kv [S, Nh·(Dn+Dv)] = c [S, R] · W_kvbᵀ
        Span<float> cOnly = _cc.AsSpan(0, S * R);
        for (int s = 0; s < S; s++)
            lat.Slice(s * (R + Dr), R).CopyTo(cOnly.Slice(s * R, R));
        be.MatMul(w.WkvB, cOnly, S, _kv.AsSpan(0, S * Nh * W));

        // the slots of this sequence (as global slot indices) for the per-head workers
        if (_naiveSlots.Length < slots.Length)
            _naiveSlots = new TokenSlot[slots.Length];
        _naiveCount = 0;
        for (int u = first; u < slots.Length; u++)
        {
            if (slots[u].Sequence == seq)
                _naiveSlots[_naiveCount++] = new TokenSlot(u, slots[u].Position, 0); // Sequence field holds the slot index
        }
        if (_naiveScratch.Length < Nh)
            _naiveScratch = new float[Nh][];
        int scratch = QueryBlock * (Dn + Dr + Dv + Tile);
        for (int h = 0; h < Nh; h++)
        {
            if (_naiveScratch[h] is null || _naiveScratch[h].Length < scratch)
                _naiveScratch[h] = new float[scratch];
        }
        _naiveHead ??= NaiveHead;
        be.For(Nh, _naiveHead);
    }

    /// <summary>Query slots per block of <see cref="NaiveHead"/>: the key and value rows of a tile of 8 positions are read
    /// once for this many queries (flash-attention order) instead of once per query.</summary>
    private const int QueryBlock = 8;

    private unsafe void NaiveHead(int h)
    {
        int Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dr = _c.QkRopeHeadDim, Dv = _c.VHeadDim, R = _c.KvLoraRank;
        int Dqk = Dn + Dr, W = Dn + Dv;
        // per-head scratch (sized by the config, so not on the stack): query rows, accumulators, scores
        Span<float> qb = _naiveScratch[h].AsSpan(0, QueryBlock * Dqk);
        Span<float> ob = _naiveScratch[h].AsSpan(QueryBlock * Dqk, QueryBlock * Dv);
        Span<float> sp = _naiveScratch[h].AsSpan(QueryBlock * (Dqk + Dv), QueryBlock * Tile);
        float* m = stackalloc float[QueryBlock], l = stackalloc float[QueryBlock];
        int* n = stackalloc int[QueryBlock], valid = stackalloc int[QueryBlock];
        fixed (float* kv = _kv, lat = _c2, q = qb, o = ob, s = sp)
        {
            for (int i0 = 0; i0 < _naiveCount; i0 += QueryBlock)
            {
                int nq = Math.Min(QueryBlock, _naiveCount - i0), nmax = 0;
                for (int i = 0; i < nq; i++)
                {
                    int u = _naiveSlots[i0 + i].Sequence;
                    n[i] = _naiveSlots[i0 + i].Position + 1;
                    nmax = Math.Max(nmax, n[i]);
                    _q.AsSpan((u * Nh + h) * Dqk, Dqk).CopyTo(qb.Slice(i * Dqk, Dqk));
                }
                new Span<float>(m, QueryBlock).Fill(float.NegativeInfinity);
                new Span<float>(l, QueryBlock).Clear();
                ob.Clear();
                for (int s0 = 0; s0 < nmax; s0 += Tile)
                {
                    int nb = Math.Min(Tile, nmax - s0);
                    // score = (q_nope·k_nope + q_pe·k_pe)·scale for every query of the block and position of the tile
                    Scores(q, Dqk, nq, kv + ((long)s0 * Nh + h) * W, Nh * W, nb, Dn, _scale, s, false);
                    Scores(q + Dn, Dqk, nq, lat + (long)s0 * (R + Dr) + R, R + Dr, nb, Dr, _scale, s, true);
                    for (int i = 0; i < nq; i++)
                    {
                        valid[i] = n[i] - s0; // causal: positions < n[i]
                        int u = _naiveSlots[i0 + i].Sequence;
                        if (!_sel.IsDense(u))
                        {
                            // sparse attention: positions the slot did not select score −∞
                            for (int j = 0; j < nb; j++)
                            {
                                if (!_sel.IsSelected(u, s0 + j))
                                    s[i * Tile + j] = float.NegativeInfinity;
                            }
                        }
                    }
                    SoftmaxTile(s, nq, nb, valid, m, l, o, Dv, Dv);
                    for (int i = 0; i < nq; i++)
                    {
                        // weights past a query's last position are 0, so its rows of the tile add nothing
                        if (valid[i] > 0)
                            AccumulateRows(o + i * Dv, Dv, kv + ((long)s0 * Nh + h) * W + Dn, Nh * W, new ReadOnlySpan<float>(s + i * Tile, Tile), nb);
                    }
                }
                for (int i = 0; i < nq; i++)
                {
                    int u = _naiveSlots[i0 + i].Sequence;
                    TensorPrimitives.Multiply(ob.Slice(i * Dv, Dv), 1f / l[i], _o.AsSpan((u * Nh + h) * Dv, Dv));
                }
            }
        }
    }
}
