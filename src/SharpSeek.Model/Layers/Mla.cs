// Multi-head Latent Attention (spec §3, DeepSeek-V3 inference/model.py MLA, llama.cpp src/models/deepseek2.cpp).
// Every token's latent (c = kv_a_layernorm(W_kva x)[:R], k_pe = RoPE(W_kva x)[R:]) goes to the cache; attention
// then runs in one of two exact forms over that cache:
//   naive:    decompress k_nope, v = W_kvb c for the cached positions, per-head attention of width Dn+Dr;
//   absorbed: q̃ = W_UKᵀ q_nope, score = q̃·c + q_pe·k_pe, ō = Σ p c, o = W_UV ō (never decompresses the cache).
using System.Numerics.Tensors;
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>Which MLA form to run.</summary>
public enum AttentionMode
{
    /// <summary>Naive for a sequence with several new tokens (prefill), absorbed for one (decode).</summary>
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
public sealed class Mla
{
    private readonly ModelConfig _c;
    private readonly float _scale;
    private float[] _q = [], _cq = [], _kva = [], _o = [], _latent = [], _qt = [], _ob = [], _scores = [], _kv = [], _c2 = [], _cc = [];

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
            bool naive = mode == AttentionMode.Naive || (mode == AttentionMode.Auto && n > 1);
            if (naive)
                NaiveSequence(be, w, cache, slots, seq, t, maxPos + 1, q, o, done);
            else
            {
                for (int u = t; u < T; u++)
                {
                    if (slots[u].Sequence == seq)
                    {
                        Absorbed(w, cache, slots[u].Position, q.Slice(u * Nh * Dqk, Nh * Dqk), o.Slice(u * Nh * Dv, Nh * Dv));
                        done[u] = true;
                    }
                }
            }
        }
        be.MatMul(w.Wo, o, T, y);
    }

    /// <summary>Absorbed attention of one query token at <paramref name="pos"/>: q [Nh, Dn+Dr] → o [Nh, Dv].</summary>
    private void Absorbed(AttentionWeights w, LatentCache cache, int pos, ReadOnlySpan<float> q, Span<float> o)
    {
        int Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dr = _c.QkRopeHeadDim, Dv = _c.VHeadDim, R = _c.KvLoraRank;
        int S = pos + 1;
        Grow(ref _qt, R);
        Grow(ref _ob, R);
        Grow(ref _scores, S);
        Span<float> qt = _qt.AsSpan(0, R), ob = _ob.AsSpan(0, R), scores = _scores.AsSpan(0, S);
        for (int h = 0; h < Nh; h++)
        {
            ReadOnlySpan<float> qn = q.Slice(h * (Dn + Dr), Dn), qpe = q.Slice(h * (Dn + Dr) + Dn, Dr);
            int rowK = h * (Dn + Dv);
            qt.Clear();
            w.WkvB.MatVecTransposedAdd(qn, qt, rowK, Dn);               // q̃ = W_UKᵀ q_nope  [R]
            for (int s = 0; s < S; s++)
                scores[s] = (cache.Dot(s, 0, qt) + cache.Dot(s, R, qpe)) * _scale;
            Ops.Softmax(scores);
            ob.Clear();
            for (int s = 0; s < S; s++)
                cache.AddScaled(s, 0, scores[s], ob);                  // ō = Σ p c  [R]
            w.WkvB.MatVec(ob, o.Slice(h * Dv, Dv), rowK + Dn, Dv);      // o = W_UV ō  [Dv]
        }
    }

    /// <summary>Naive attention for the slots of sequence <paramref name="seq"/> (from index <paramref name="first"/>), over S cached positions.</summary>
    private void NaiveSequence(ComputeBackend be, AttentionWeights w, LatentCache cache, ReadOnlySpan<TokenSlot> slots, int seq,
                               int first, int S, ReadOnlySpan<float> q, Span<float> o, Span<bool> done)
    {
        int Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dr = _c.QkRopeHeadDim, Dv = _c.VHeadDim, R = _c.KvLoraRank;
        int Dqk = Dn + Dr, W = Dn + Dv;
        Grow(ref _c2, S * (R + Dr));
        Grow(ref _kv, S * Nh * W);
        Grow(ref _scores, S);
        Span<float> lat = _c2.AsSpan(0, S * (R + Dr));
        for (int s = 0; s < S; s++)
            cache.Read(s, lat.Slice(s * (R + Dr), R + Dr));
        // [k_nope ; v] for every cached position: kv [S, Nh·(Dn+Dv)] = c [S, R] · W_kvbᵀ
        Span<float> kv = _kv.AsSpan(0, S * Nh * W);
        Grow(ref _cc, S * R);
        Span<float> cOnly = _cc.AsSpan(0, S * R);
        for (int s = 0; s < S; s++)
            lat.Slice(s * (R + Dr), R).CopyTo(cOnly.Slice(s * R, R));
        be.MatMul(w.WkvB, cOnly, S, kv);
        for (int u = first; u < slots.Length; u++)
        {
            if (slots[u].Sequence != seq)
                continue;
            done[u] = true;
            int n = slots[u].Position + 1;
            Span<float> scores = _scores.AsSpan(0, n);
            for (int h = 0; h < Nh; h++)
            {
                ReadOnlySpan<float> qn = q.Slice((u * Nh + h) * Dqk, Dn), qpe = q.Slice((u * Nh + h) * Dqk + Dn, Dr);
                for (int s = 0; s < n; s++)
                {
                    float dot = TensorPrimitives.Dot(qn, kv.Slice((s * Nh + h) * W, Dn))
                              + TensorPrimitives.Dot(qpe, lat.Slice(s * (R + Dr) + R, Dr));
                    scores[s] = dot * _scale;
                }
                Ops.Softmax(scores);
                Span<float> oh = o.Slice((u * Nh + h) * Dv, Dv);
                oh.Clear();
                for (int s = 0; s < n; s++)
                    TensorPrimitives.MultiplyAdd(kv.Slice((s * Nh + h) * W + Dn, Dv), scores[s], oh, oh);
            }
        }
    }

    private static void Grow(ref float[] a, int n)
    {
        if (a.Length < n)
            a = new float[n];
    }
}
