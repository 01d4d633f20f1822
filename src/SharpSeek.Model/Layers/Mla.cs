// Multi-head Latent Attention (spec §3, DeepSeek-V3 inference/model.py MLA, llama.cpp src/models/deepseek2.cpp).
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

    public Mla(ModelConfig c)
    {
        _c = c;
        _scale = (float)c.SoftmaxScale;
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
        Span<float> q = _q.AsSpan(0, T * Nh * Dqk);

        // queries
        if (w.Wq is not null)
        {
            be.MatMul(w.Wq, x, T, q);
        }
        else
        {
            int Dq = _c.QLoraRank;
            Grow(ref _cq, T * Dq);
            Span<float> cq = _cq.AsSpan(0, T * Dq);
            be.MatMul(w.WqA!, x, T, cq);
            Ops.RmsNormRows(cq, w.QNorm, (float)ModelConfig.LatentNormEps, cq, T);
            be.MatMul(w.WqB!, cq, T, q);
        }

        // latents → cache; RoPE on q_pe of every head
        Span<float> kva = _kva.AsSpan(0, T * (R + Dr));
        be.MatMul(w.WkvA, x, T, kva);
        Span<float> latent = _latent.AsSpan(0, R + Dr);
        for (int t = 0; t < T; t++)
        {
            ReadOnlySpan<float> ct = cos.Slice(t * half, half), st = sin.Slice(t * half, half);
            Span<float> a = kva.Slice(t * (R + Dr), R + Dr);
            Ops.RmsNorm(a.Slice(0, R), w.KvNorm, (float)ModelConfig.LatentNormEps, latent.Slice(0, R));
            a.Slice(R, Dr).CopyTo(latent.Slice(R, Dr));
            RotaryEmbedding.Apply(latent.Slice(R, Dr), ct, st);
            caches[slots[t].Sequence].Layers[layer].Write(slots[t].Position, latent);
            for (int h = 0; h < Nh; h++)
                RotaryEmbedding.Apply(q.Slice((t * Nh + h) * Dqk + Dn, Dr), ct, st);
        }

        // attention, per sequence of the batch
        Span<float> o = _o.AsSpan(0, T * Nh * Dv);
        Span<bool> done = T <= 4096 ? stackalloc bool[T] : new bool[T];
        for (int t = 0; t < T; t++)
        {
            if (done[t])
                continue;
            int seq = slots[t].Sequence, n = 0, maxPos = 0;
            for (int u = t; u < T; u++)
            {
                if (slots[u].Sequence == seq)
                {
                    n++;
                    maxPos = Math.Max(maxPos, slots[u].Position);
                }
            }
            LatentCache cache = caches[seq].Layers[layer];
            bool naive = mode == AttentionMode.Naive || (mode == AttentionMode.Auto && NaiveIsCheaper(n, maxPos + 1));
            if (naive)
            {
                NaiveSequence(be, w, cache, slots, seq, t, maxPos + 1);
                for (int u = t; u < T; u++)
                    done[u] |= slots[u].Sequence == seq;
            }
            else
            {
                for (int u = t; u < T; u++)
                {
                    if (slots[u].Sequence == seq)
                    {
                        AbsorbedToken(be, w, cache, slots[u].Position, u);
                        done[u] = true;
                    }
                }
            }
        }
        be.MatMul(w.Wo, o, T, y);
    }

    /// <summary>
    /// Multiply-adds of the two forms for n new tokens over S positions: naive decompresses every cached position
    /// (S·Nh·R·(Dn+Dv)) then attends at width Dn+Dr+Dv; absorbed attends at width 2R+Dr and absorbs per token.
    /// </summary>
    private bool NaiveIsCheaper(int n, int S)
    {
        double Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dr = _c.QkRopeHeadDim, Dv = _c.VHeadDim, R = _c.KvLoraRank;
        double naive = S * Nh * R * (Dn + Dv) + (double)n * S * Nh * (Dn + Dr + Dv);
        double absorbed = n * Nh * R * (Dn + Dv) + (double)n * S * Nh * (2 * R + Dr);
        return naive < absorbed;
    }

    private static void Grow(ref float[] a, int n)
    {
        if (a.Length < n)
            a = new float[n];
    }
}
