// Multi-head Latent Attention in its naive (decompressed) form for training (spec §3.2, DeepSeek-V3 model.py MLA
// with attn_impl="naive"), over B sequences of S positions (rows n = b·S + s):
//   q = W_qb RMSNorm_qa(W_qa x)  (or q = W_q x);  q_pe ← RoPE(q_pe)
//   a = W_kva x;  c = RMSNorm_kva(a[:R]);  k_pe = RoPE(a[R:]) (one key shared by all heads)
//   [k_nope; v] = W_kvb c;  p = softmax_causal(σ (q_nope·k_nope + q_pe·k_pe));  o = p v;  y = W_o o
// Forward keeps every intermediate for Backward (activations preallocated for one [B, S] shape). Attention
// runs per (sequence, head) on strided views of q, kv and k_pe with the GEMM kernels, in row blocks that skip
// the masked upper triangle. The shared k_pe gradient is summed over heads in a fixed order.
using SharpSeek.Model;
using SharpSeek.Tensors;
using SharpSeek.Training.Kernels;

namespace SharpSeek.Training.Layers;

/// <summary>Saved activations of one MLA layer for a [B, S] batch.</summary>
public sealed class AttentionActivations
{
    public AttentionActivations(ModelConfig c, int B, int S)
    {
        int N = B * S, Nh = c.NumAttentionHeads;
        this.B = B;
        this.S = S;
        int Dq = c.QLoraRank;
        Cqa = new float[N * Dq];
        CqRstd = new float[Dq > 0 ? N : 0];
        Cq = new float[N * Dq];
        Q = new float[N * Nh * c.QkHeadDim];
        Kva = new float[N * (c.KvLoraRank + c.QkRopeHeadDim)];
        CRstd = new float[N];
        C = new float[N * c.KvLoraRank];
        Kpe = new float[N * c.QkRopeHeadDim];
        Kv = new float[N * Nh * (c.QkNopeHeadDim + c.VHeadDim)];
        P = new float[(long)B * Nh * S * S];
        O = new float[N * Nh * c.VHeadDim];
    }

    public int B { get; }
    public int S { get; }
    /// <summary>W_qa x before q_a_layernorm [N, Dq].</summary>
    public float[] Cqa { get; }
    public float[] CqRstd { get; }
    /// <summary>Normalized query latent [N, Dq].</summary>
    public float[] Cq { get; }
    /// <summary>Queries after RoPE [N, Nh, Dn+Dr].</summary>
    public float[] Q { get; }
    /// <summary>W_kva x [N, R+Dr] (before norm and RoPE).</summary>
    public float[] Kva { get; }
    public float[] CRstd { get; }
    /// <summary>Normalized KV latent [N, R].</summary>
    public float[] C { get; }
    /// <summary>Rotated shared key [N, Dr].</summary>
    public float[] Kpe { get; }
    /// <summary>[k_nope; v] per head [N, Nh, Dn+Dv].</summary>
    public float[] Kv { get; }
    /// <summary>Attention probabilities [B, Nh, S, S] (lower triangle).</summary>
    public float[] P { get; }
    /// <summary>Attention output before W_o [N, Nh·Dv].</summary>
    public float[] O { get; }
}

/// <summary>Forward and backward of naive MLA with causal attention.</summary>
public sealed unsafe class Attention
{
    private const int Block = 64; // query rows per causal block
    private readonly ModelConfig _c;
    private readonly float _scale;
    // backward scratch
    private readonly float[] _dO, _dQ, _dKv, _dKpeHeads, _dC, _dKva, _dCq, _dCqa;
    private AttentionActivations? _a;
    private float* _cos, _sin;
    private float* _dOp, _dQp, _dKvp, _dKpeHp;
    private readonly Action<int> _fwdHead, _bwdHead;

    public Attention(ModelConfig c, int B, int S)
    {
        _c = c;
        _scale = (float)c.SoftmaxScale;
        int N = B * S, Nh = c.NumAttentionHeads;
        _dO = new float[N * Nh * c.VHeadDim];
        _dQ = new float[N * Nh * c.QkHeadDim];
        _dKv = new float[N * Nh * (c.QkNopeHeadDim + c.VHeadDim)];
        _dKpeHeads = new float[(long)Nh * N * c.QkRopeHeadDim];
        _dC = new float[N * c.KvLoraRank];
        _dKva = new float[N * (c.KvLoraRank + c.QkRopeHeadDim)];
        _dCq = new float[N * c.QLoraRank];
        _dCqa = new float[N * c.QLoraRank];
        _fwdHead = ForwardHead;
        _bwdHead = BackwardHead;
    }

    /// <summary>
    /// x [N, H] (normalized input) → y [N, H]. cos/sin [S, Dr/2] hold the rotation of positions 0..S-1.
    /// </summary>
    public void Forward(ComputeBackend be, AttentionWeights w, ReadOnlySpan<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin,
                        AttentionActivations a, Span<float> y)
    {
        ModelConfig c = _c;
        int B = a.B, S = a.S, N = B * S, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim;
        int Dqk = Dn + Dr, R = c.KvLoraRank, half = Dr / 2;
        float latentEps = (float)ModelConfig.LatentNormEps;

        // queries
        if (w.Wq is not null)
        {
            Linear.Forward(be, x, Params.F32(w.Wq), a.Q, N);
        }
        else
        {
            Linear.Forward(be, x, Params.F32(w.WqA!), a.Cqa, N);
            RmsNorm.Forward(a.Cqa, w.QNorm, latentEps, a.CqRstd, a.Cq, N);
            Linear.Forward(be, a.Cq, Params.F32(w.WqB!), a.Q, N);
        }

        // latent, shared rotary key, RoPE on every head's q_pe
        Linear.Forward(be, x, Params.F32(w.WkvA), a.Kva, N);
        for (int n = 0; n < N; n++)
        {
            int s = n % S;
            ReadOnlySpan<float> ct = cos.Slice(s * half, half), st = sin.Slice(s * half, half);
            a.CRstd[n] = Ops.RmsNorm(a.Kva.AsSpan(n * (R + Dr), R), w.KvNorm, latentEps, a.C.AsSpan(n * R, R));
            Span<float> kpe = a.Kpe.AsSpan(n * Dr, Dr);
            a.Kva.AsSpan(n * (R + Dr) + R, Dr).CopyTo(kpe);
            Ops.RopeInterleaved(kpe, ct, st);
            for (int h = 0; h < Nh; h++)
                Ops.RopeInterleaved(a.Q.AsSpan((n * Nh + h) * Dqk + Dn, Dr), ct, st);
        }
        Linear.Forward(be, a.C, Params.F32(w.WkvB), a.Kv, N);

        // causal attention per (sequence, head)
        fixed (float* pc = cos, ps = sin)
        {
            _a = a;
            _cos = pc;
            _sin = ps;
            be.For(B * Nh, _fwdHead);
            _a = null;
        }
        Linear.Forward(be, a.O, Params.F32(w.Wo), y, N);
    }

    private void ForwardHead(int task)
    {
        AttentionActivations a = _a!;
        ModelConfig c = _c;
        int S = a.S, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim, Dv = c.VHeadDim;
        int Dqk = Dn + Dr, W = Dn + Dv;
        int b = task / Nh, h = task % Nh;
        fixed (float* q = a.Q, kv = a.Kv, kpe = a.Kpe, p = a.P, o = a.O)
        {
            float* qh = q + (long)b * S * Nh * Dqk + h * Dqk;       // [S, Dqk], row stride Nh·Dqk
            float* kh = kv + (long)b * S * Nh * W + h * W;          // k_nope [S, Dn], v at +Dn, row stride Nh·W
            float* kp = kpe + (long)b * S * Dr;                      // [S, Dr]
            float* ph = p + (long)task * S * S;                      // [S, S]
            float* oh = o + (long)b * S * Nh * Dv + h * Dv;          // [S, Dv], row stride Nh·Dv
            for (int t0 = 0; t0 < S; t0 += Block)
            {
                int t1 = Math.Min(S, t0 + Block), m = t1 - t0;
                float* prow = ph + (long)t0 * S;
                // scores[t, s] = q_nope·k_nope + q_pe·k_pe for s < t1
                Gemm.Run(GemmKind.NT, m, t1, Dn, qh + (long)t0 * Nh * Dqk, Nh * Dqk, kh, Nh * W, prow, S, accumulate: false);
                Gemm.Run(GemmKind.NT, m, t1, Dr, qh + (long)t0 * Nh * Dqk + Dn, Nh * Dqk, kp, Dr, prow, S, accumulate: true);
                for (int t = t0; t < t1; t++)
                {
                    Span<float> row = new(ph + (long)t * S, t1);
                    Span<float> live = row.Slice(0, t + 1);
                    System.Numerics.Tensors.TensorPrimitives.Multiply(live, _scale, live);
                    Ops.Softmax(live);
                    row.Slice(t + 1).Clear(); // masked: s > t
                }
                // o = p v
                Gemm.Run(GemmKind.NN, m, Dv, t1, prow, S, kh + Dn, Nh * W, oh + (long)t0 * Nh * Dv, Nh * Dv, accumulate: false);
            }
        }
    }

    /// <summary>
    /// dy [N, H] → dx [N, H] (+=) and weight gradients (+=), from the activations of the matching Forward.
    /// </summary>
    public void Backward(ComputeBackend be, AttentionWeights w, AttentionWeights dw, ReadOnlySpan<float> x,
                         ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, AttentionActivations a, ReadOnlySpan<float> dy, Span<float> dx)
    {
        ModelConfig c = _c;
        int B = a.B, S = a.S, N = B * S, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim, Dv = c.VHeadDim;
        int Dqk = Dn + Dr, R = c.KvLoraRank, half = Dr / 2, W = Dn + Dv;

        // y = W_o o
        Span<float> dO = _dO.AsSpan(0, N * Nh * Dv);
        dO.Clear();
        Linear.Backward(be, dy, a.O, Params.F32(w.Wo), dO, Params.F32(dw.Wo).Data, N);

        // attention per (sequence, head): dq (overwritten), dkv and per-head dk_pe (accumulated)
        Span<float> dKv = _dKv.AsSpan(0, N * Nh * W);
        dKv.Clear();
        Span<float> dKpeH = _dKpeHeads.AsSpan(0, Nh * N * Dr);
        dKpeH.Clear();
        fixed (float* pdo = _dO, pdq = _dQ, pdkv = _dKv, pdkh = _dKpeHeads)
        {
            _a = a;
            _dOp = pdo;
            _dQp = pdq;
            _dKvp = pdkv;
            _dKpeHp = pdkh;
            be.For(B * Nh, _bwdHead);
            _a = null;
        }

        // dk_pe = Σ_h (heads in order), then undo RoPE; q_pe gradients undo RoPE too
        Span<float> dKva = _dKva.AsSpan(0, N * (R + Dr));
        dKva.Clear();
        Span<float> dQ = _dQ.AsSpan(0, N * Nh * Dqk);
        for (int n = 0; n < N; n++)
        {
            int s = n % S;
            ReadOnlySpan<float> ct = cos.Slice(s * half, half), st = sin.Slice(s * half, half);
            Span<float> dk = dKva.Slice(n * (R + Dr) + R, Dr);
            for (int h = 0; h < Nh; h++)
                System.Numerics.Tensors.TensorPrimitives.Add(dk, dKpeH.Slice((h * N + n) * Dr, Dr), dk);
            Rope.Backward(dk, ct, st);
            for (int h = 0; h < Nh; h++)
                Rope.Backward(dQ.Slice((n * Nh + h) * Dqk + Dn, Dr), ct, st);
        }

        // [k_nope; v] = W_kvb c, then c = RMSNorm_kva(a[:R])
        Span<float> dC = _dC.AsSpan(0, N * R);
        dC.Clear();
        Linear.Backward(be, dKv, a.C, Params.F32(w.WkvB), dC, Params.F32(dw.WkvB).Data, N);
        for (int n = 0; n < N; n++)
        {
            RmsNorm.Backward(dC.Slice(n * R, R), a.Kva.AsSpan(n * (R + Dr), R), w.KvNorm, a.CRstd.AsSpan(n, 1),
                             dKva.Slice(n * (R + Dr), R), dw.KvNorm, 1);
        }
        Linear.Backward(be, dKva, x, Params.F32(w.WkvA), dx, Params.F32(dw.WkvA).Data, N);

        // queries
        if (w.Wq is not null)
        {
            Linear.Backward(be, dQ, x, Params.F32(w.Wq), dx, Params.F32(dw.Wq!).Data, N);
        }
        else
        {
            int Dq = c.QLoraRank;
            Span<float> dCq = _dCq.AsSpan(0, N * Dq);
            dCq.Clear();
            Linear.Backward(be, dQ, a.Cq, Params.F32(w.WqB!), dCq, Params.F32(dw.WqB!).Data, N);
            Span<float> dCqa = _dCqa.AsSpan(0, N * Dq);
            dCqa.Clear();
            RmsNorm.Backward(dCq, a.Cqa, w.QNorm, a.CqRstd, dCqa, dw.QNorm, N);
            Linear.Backward(be, dCqa, x, Params.F32(w.WqA!), dx, Params.F32(dw.WqA!).Data, N);
        }
    }

    [ThreadStatic] private static float[]? t_ds;

    private void BackwardHead(int task)
    {
        AttentionActivations a = _a!;
        ModelConfig c = _c;
        int S = a.S, N = a.B * S, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim, Dv = c.VHeadDim;
        int Dqk = Dn + Dr, W = Dn + Dv;
        int b = task / Nh, h = task % Nh;
        float[] dsArr = t_ds is { } cached && cached.Length >= Block * S ? cached : (t_ds = new float[Block * S]);
        fixed (float* q = a.Q, kv = a.Kv, kpe = a.Kpe, p = a.P, ds = dsArr)
        {
            long rowQ = (long)b * S * Nh * Dqk + h * Dqk, rowKv = (long)b * S * Nh * W + h * W, rowO = (long)b * S * Nh * Dv + h * Dv;
            float* qh = q + rowQ, dqh = _dQp + rowQ;
            float* kh = kv + rowKv, dkh = _dKvp + rowKv;
            float* kp = kpe + (long)b * S * Dr;
            float* dkp = _dKpeHp + ((long)h * N + (long)b * S) * Dr;
            float* ph = p + (long)task * S * S;
            float* doh = _dOp + rowO;
            for (int t0 = 0; t0 < S; t0 += Block)
            {
                int t1 = Math.Min(S, t0 + Block), m = t1 - t0;
                float* prow = ph + (long)t0 * S;
                // dP = dO vᵀ
                Gemm.Run(GemmKind.NT, m, t1, Dv, doh + (long)t0 * Nh * Dv, Nh * Dv, kh + Dn, Nh * W, ds, S, accumulate: false);
                // dS = σ · P ⊙ (dP − Σ_s P dP)
                for (int i = 0; i < m; i++)
                {
                    float* pr = prow + (long)i * S;
                    float* dr = ds + (long)i * S;
                    int n = t0 + i + 1;
                    float dot = System.Numerics.Tensors.TensorPrimitives.Dot(new ReadOnlySpan<float>(pr, n), new ReadOnlySpan<float>(dr, n));
                    for (int s = 0; s < n; s++)
                        dr[s] = _scale * pr[s] * (dr[s] - dot);
                    for (int s = n; s < t1; s++)
                        dr[s] = 0f;
                }
                // dv += Pᵀ dO
                Gemm.Run(GemmKind.TN, t1, Dv, m, prow, S, doh + (long)t0 * Nh * Dv, Nh * Dv, dkh + Dn, Nh * W, accumulate: true);
                // dq_nope = dS k_nope, dq_pe = dS k_pe
                Gemm.Run(GemmKind.NN, m, Dn, t1, ds, S, kh, Nh * W, dqh + (long)t0 * Nh * Dqk, Nh * Dqk, accumulate: false);
                Gemm.Run(GemmKind.NN, m, Dr, t1, ds, S, kp, Dr, dqh + (long)t0 * Nh * Dqk + Dn, Nh * Dqk, accumulate: false);
                // dk_nope += dSᵀ q_nope, dk_pe(head h) += dSᵀ q_pe
                Gemm.Run(GemmKind.TN, t1, Dn, m, ds, S, qh + (long)t0 * Nh * Dqk, Nh * Dqk, dkh, Nh * W, accumulate: true);
                Gemm.Run(GemmKind.TN, t1, Dr, m, ds, S, qh + (long)t0 * Nh * Dqk + Dn, Nh * Dqk, dkp, Dr, accumulate: true);
            }
        }
    }
}
