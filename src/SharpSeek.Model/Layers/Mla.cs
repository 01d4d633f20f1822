// Multi-head Latent Attention (docs/deepseek-architecture.md §3, DeepSeek-V3 inference/model.py MLA, llama.cpp src/models/deepseek2.cpp).
// Every token's latent (c = kv_a_layernorm(W_kva x)[:R], k_pe = RoPE(W_kva x)[R:]) goes to the cache; attention
// then runs in one of two exact forms over that cache:
//   naive:    decompress k_nope, v = W_kvb c for the cached positions, per-head attention of width Dn+Dr;
//   absorbed: q̃ = W_UKᵀ q_nope, score = q̃·c + q_pe·k_pe, ō = Σ p c, o = W_UV ō (never decompresses the cache).
// This file: the projections, the latent cache writes and the choice of form per sequence; the two forms are
// Mla.Absorbed.cs and Mla.Naive.cs, their kernels SharpSeek.Tensors AttentionKernels, training Mla.Training.cs.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>Which MLA form to run.</summary>
public enum AttentionMode
{
    /// <summary>Whichever form needs fewer multiply-adds: naive for prefill chunks, absorbed for decode.</summary>
    Auto,
    /// <summary>Decompressed per-head keys and values.</summary>
    Naive,
    /// <summary>Weight-absorbed attention over the latent cache.</summary>
    Absorbed,
}

/// <summary>A token's place in a forward batch (docs/design.md seam 2).</summary>
/// <param name="Sequence">Index of the sequence (its cache) in the batch's cache list.</param>
/// <param name="Position">Absolute position in the sequence.</param>
/// <param name="Token">Token id.</param>
public readonly record struct TokenSlot(int Sequence, int Position, int Token);

/// <summary>MLA over a batch of token slots; holds its scratch buffers.</summary>
public sealed partial class Mla
{
    private readonly ModelConfig _c;
    private readonly float _scale;
    private float[] _q = [], _cq = [], _kva = [], _o = [], _latent = [], _kv = [], _c2 = [], _cc = [];
    private readonly IAttentionSelector? _selector; // the family's attention variant (V3.2's indexer), if any
    private readonly PositionSelection _sel = new();

    public Mla(ModelConfig c)
    {
        _c = c;
        _scale = (float)c.SoftmaxScale;
        _selector = c.GetAttentionVariant()?.CreateSelector();
    }

    /// <summary>
    /// x [T, H] (normalized) → y [T, H]. Writes each slot's latent into caches[slot.Sequence].Layers[layer]
    /// at slot.Position, then attends causally over positions ≤ slot.Position. cos/sin are [T, Dr/2].
    /// </summary>
    public void Forward(ComputeBackend be, AttentionWeights w, int layer, ReadOnlySpan<TokenSlot> slots,
                        IReadOnlyList<KvCache> caches, ReadOnlySpan<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin,
                        Span<float> y, AttentionMode mode)
    {
        int T = slots.Length, Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dr = _c.QkRopeHeadDim, Dv = _c.VHeadDim;
        int Dqk = Dn + Dr, R = _c.KvLoraRank, half = Dr / 2;
        Grow(ref _q, T * Nh * Dqk);
        Grow(ref _kva, T * (R + Dr));
        Grow(ref _o, T * Nh * Dv);
        Grow(ref _latent, R + Dr);
        Span<float> q = _q.AsSpan(0, T * Nh * Dqk), kva = _kva.AsSpan(0, T * (R + Dr));
        Span<float> cq = default;
        if (w.Wq is null)
        {
            Grow(ref _cq, T * _c.QLoraRank);
            cq = _cq.AsSpan(0, T * _c.QLoraRank); // normalized in place
        }

        // queries and latents; each latent → cache, RoPE on q_pe of every head
        Project(new InferenceOps(be), w, x, T, cq, default, cq, q, kva);
        Span<float> latent = _latent.AsSpan(0, R + Dr);
        for (int t = 0; t < T; t++)
        {
            Latent(kva.Slice(t * (R + Dr), R + Dr), w.KvNorm, cos.Slice(t * half, half), sin.Slice(t * half, half),
                   latent.Slice(0, R), latent.Slice(R, Dr), q.Slice(t * Nh * Dqk, Nh * Dqk), Dn);
            caches[slots[t].Sequence].Layers[layer].Write(slots[t].Position, latent);
        }
        // the attention variant caches its own state and picks the positions each slot attends to (else all)
        _sel.Reset(T, 0);
        _selector?.Select(be, w, layer, slots, caches, x, cq, cos, sin, _sel);
        // the naive form masks unselected positions by bitmap, built once per call when it first needs one (the
        // absorbed form reads the selected positions directly)
        bool masksNeeded = _sel.AnySparse;

        // attention, per sequence of the batch
        Span<float> o = _o.AsSpan(0, T * Nh * Dv);
        _absorbed.Clear(); // (left over only if a previous call threw)
        _totalChunks = 0;
        // the slots of each sequence, in one pass (a batched step holds one token of each of many sequences): groups
        // in order of first appearance, each a chain of slot indices through _nextSlot
        int G = GroupSlots(slots);
        for (int g = 0; g < G; g++)
        {
            int t = _groupFirst[g], seq = slots[t].Sequence, n = 0, maxPos = 0, attended = 0;
            for (int u = t; u >= 0; u = _nextSlot[u])
            {
                n++;
                maxPos = Math.Max(maxPos, slots[u].Position);
                attended = Math.Max(attended, _sel.IsDense(u) ? slots[u].Position + 1 : _sel.Positions(u).Length);
            }
            LatentCache cache = caches[seq].Layers[layer];
            bool naive = mode == AttentionMode.Naive || (mode == AttentionMode.Auto && NaiveIsCheaper(n, maxPos + 1, attended));
            if (naive)
            {
                if (masksNeeded)
                {
                    int last = 0;
                    foreach (TokenSlot s in slots)
                        last = Math.Max(last, s.Position);
                    _sel.BuildMasks(last + 1);
                    masksNeeded = false;
                }
                NaiveSequence(be, w, cache, slots, seq, t, maxPos + 1);
            }
            else
            {
                for (int u = t; u >= 0; u = _nextSlot[u])
                    AddAbsorbed(be, cache, slots[u].Position, u);
            }
        }
        RunAbsorbed(be, w);
        be.MatMul(w.Wo, o, T, y);
    }

    /// <summary>
    /// The projections of MLA, shared by inference and training (ILayerOps): q [T, Nh·(Dn+Dr)] = Wq x, or
    /// cqa = WqA x [T, Dq], cq = RMSNorm_q(cqa) [T, Dq] (may alias cqa; rstd [T] where the ops keep it), q = WqB cq;
    /// then kva [T, R+Dr] = WkvA x.
    /// </summary>
    public static void Project<TOps>(TOps ops, AttentionWeights w, ReadOnlySpan<float> x, int T, Span<float> cqa, Span<float> cqRstd,
                                     Span<float> cq, Span<float> q, Span<float> kva) where TOps : ILayerOps
    {
        if (w.Wq is not null)
        {
            ops.MatMul(w.Wq, x, T, q);
        }
        else
        {
            ops.MatMul(w.WqA!, x, T, cqa);
            ops.RmsNorm(cqa, w.QNorm, (float)ModelConfig.LatentNormEps, cqRstd, cq, T);
            ops.MatMul(w.WqB!, cq, T, q);
        }
        ops.MatMul(w.WkvA, x, T, kva);
    }

    /// <summary>
    /// Backward of <see cref="Project"/> (training, fp32 masters): dkva [N, R+Dr] and dq [N, Nh·(Dn+Dr)] → dx [N, H] (+=)
    /// and the weight gradients (+=), from the saved cqa, cqRstd, cq; dcq and dcqa [N, Dq] are scratch.
    /// </summary>
    public static void ProjectBackward(ComputeBackend? be, AttentionWeights w, AttentionWeights dw, ReadOnlySpan<float> x, int N,
                                       ReadOnlySpan<float> cqa, ReadOnlySpan<float> cqRstd, ReadOnlySpan<float> cq,
                                       ReadOnlySpan<float> dq, ReadOnlySpan<float> dkva, Span<float> dcq, Span<float> dcqa, Span<float> dx)
    {
        Linear.Backward(be, dkva, x, Linear.F32(w.WkvA), dx, Linear.F32(dw.WkvA).Data, N);
        if (w.Wq is not null)
        {
            Linear.Backward(be, dq, x, Linear.F32(w.Wq), dx, Linear.F32(dw.Wq!).Data, N);
        }
        else
        {
            int Dq = w.WqA!.Rows;
            Linear.Backward(be, dq, cq, Linear.F32(w.WqB!), dcq, Linear.F32(dw.WqB!).Data, N, accumulateDx: false);
            RmsNorm.Backward(be, dcq, Dq, cqa, Dq, w.QNorm, cqRstd, dcqa, Dq, dw.QNorm, N, accumulate: false);
            Linear.Backward(be, dcqa, x, Linear.F32(w.WqA!), dx, Linear.F32(dw.WqA!).Data, N);
        }
    }

    /// <summary>
    /// One token's latent and rotations, shared by inference and training: from its row kva [R+Dr] of WkvA x,
    /// c [R] = RMSNorm_kv(kva[:R]) and the shared rotary key k_pe [Dr] = RoPE(kva[R:]); RoPE on q_pe of every head of its
    /// queries q [Nh, Dn+Dr] in place. cos/sin [Dr/2] of its position. Returns c's rstd.
    /// </summary>
    public static float Latent(ReadOnlySpan<float> kva, ReadOnlySpan<float> kvNorm, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin,
                               Span<float> c, Span<float> kpe, Span<float> q, int Dn)
    {
        int R = c.Length, Dr = kpe.Length, Dqk = Dn + Dr;
        float rstd = Ops.RmsNorm(kva.Slice(0, R), kvNorm, (float)ModelConfig.LatentNormEps, c);
        kva.Slice(R, Dr).CopyTo(kpe);
        RotaryEmbedding.Apply(kpe, cos, sin);
        for (int h = 0; h < q.Length / Dqk; h++)
            RotaryEmbedding.Apply(q.Slice(h * Dqk + Dn, Dr), cos, sin);
        return rstd;
    }

    /// <summary>Backward of <see cref="Latent"/>'s rotations: dkpe [Dr] and q_pe of every head of dq [Nh, Dn+Dr] are rotated
    /// back in place (the norm's backward runs over all rows at once, <see cref="RmsNorm.Backward(ComputeBackend?, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, Span{float}, int, bool)"/>).</summary>
    public static void LatentBackward(Span<float> dkpe, Span<float> dq, int Dn, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int Dr = dkpe.Length, Dqk = Dn + Dr;
        RotaryEmbedding.Backward(dkpe, cos, sin);
        for (int h = 0; h < dq.Length / Dqk; h++)
            RotaryEmbedding.Backward(dq.Slice(h * Dqk + Dn, Dr), cos, sin);
    }

    /// <summary>
    /// Multiply-adds of the two forms for n new tokens over S positions: naive decompresses every cached position
    /// (S·Nh·R·(Dn+Dv)) then attends at width Dn+Dr+Dv (masking unselected positions); absorbed attends at width 2R+Dr
    /// over the positions each token attends to (at most <paramref name="attended"/>) and absorbs per token.
    /// </summary>
    private bool NaiveIsCheaper(int n, int S, int attended)
    {
        double Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dr = _c.QkRopeHeadDim, Dv = _c.VHeadDim, R = _c.KvLoraRank;
        double naive = S * Nh * R * (Dn + Dv) + (double)n * S * Nh * (Dn + Dr + Dv);
        double absorbed = n * Nh * R * (Dn + Dv) + (double)n * attended * Nh * (2 * R + Dr);
        return naive < absorbed;
    }

    private readonly Dictionary<int, int> _groupOf = [];
    private int[] _nextSlot = [], _groupFirst = [], _groupLast = [];

    // Groups the slots by sequence: returns the number of groups; _groupFirst[g] is the first slot of group g (groups
    // in order of their first slot), _nextSlot[u] the next slot of u's sequence after u, or -1.
    private int GroupSlots(ReadOnlySpan<TokenSlot> slots)
    {
        int T = slots.Length, G = 0;
        if (_nextSlot.Length < T)
        {
            _nextSlot = new int[T];
            _groupFirst = new int[T];
            _groupLast = new int[T];
        }
        _groupOf.Clear();
        for (int t = 0; t < T; t++)
        {
            _nextSlot[t] = -1;
            int seq = slots[t].Sequence;
            if (G > 0 && slots[_groupLast[G - 1]].Sequence == seq) // the common case: a run of one sequence's slots
            {
                _nextSlot[_groupLast[G - 1]] = t;
                _groupLast[G - 1] = t;
            }
            else if (_groupOf.TryGetValue(seq, out int g))
            {
                _nextSlot[_groupLast[g]] = t;
                _groupLast[g] = t;
            }
            else
            {
                _groupOf[seq] = G;
                _groupFirst[G] = t;
                _groupLast[G] = t;
                G++;
            }
        }
        return G;
    }

    private static void Grow(ref float[] a, int n)
    {
        if (a.Length < n)
            a = new float[n];
    }
}
