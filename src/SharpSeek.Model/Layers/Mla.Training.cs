// Multi-head Latent Attention in its naive (decompressed) form for training (docs/deepseek-architecture.md §3.2, DeepSeek-V3 model.py MLA
// with attn_impl="naive"), over B sequences of S positions (rows n = b·S + s). The projections and the latent step are
// the inference forward's own (Mla.Project, Mla.Latent in Mla.cs, their backward beside them); this file adds the
// saved activations and the causal attention over the decompressed keys and values, forward and backward:
//   q = W_qb RMSNorm_qa(W_qa x)  (or q = W_q x);  q_pe ← RoPE(q_pe)
//   a = W_kva x;  c = RMSNorm_kva(a[:R]);  k_pe = RoPE(a[R:]) (one key shared by all heads)
//   [k_nope; v] = W_kvb c;  p = softmax_causal(σ (q_nope·k_nope + q_pe·k_pe));  o = p v;  y = W_o o
// Forward keeps the intermediates for Backward (activations preallocated for one [B, S] shape), except the attention
// probabilities: like FlashAttention it keeps each query row's max and sum of exponentials and Backward recomputes the
// probabilities with the same operations (same bits). Attention runs per (sequence, head): the head's keys
// [k_nope; k_pe] and values are gathered and packed once, then blocks of 64 query rows take their scores with one
// GEMM over Dn+Dr (column panels above the diagonal skipped), the softmax, and p·v. Backward goes by blocks of 64 keys
// (FlashAttention-2 order, see BackwardHead). Row-wise steps (latent norm, RoPE, the per-head k_pe gradient sum in a
// fixed head order) run in parallel over rows.
// With a trained attention variant (V3.2's indexer, VariantTrainingOptions): the variant runs on the sublayer's input
// and cq (detached), in the sparse stage each query's softmax covers only the positions it selected (masked in
// forward, P and dS zeroed there in backward), and the attention probabilities, summed over heads and normalized, are
// the target of the variant's loss, whose gradient it adds into its own tensors during this forward.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>Saved activations of one MLA layer for a [B, S] batch.</summary>
public sealed class MlaActivations
{
    public MlaActivations(ModelConfig c, int B, int S)
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
        Stats = new float[(long)B * Nh * S * 2];
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
    /// <summary>Softmax statistics per (sequence, head, query) [B, Nh, S, 2]: row max and sum of exponentials of the scaled scores.</summary>
    public float[] Stats { get; }
    /// <summary>Attention output before W_o [N, Nh·Dv].</summary>
    public float[] O { get; }
    /// <summary>The positions each row attended to in the sparse stage (slots are rows b·S + t), else null (dense).</summary>
    public PositionSelection? Selection { get; set; }
    /// <summary>The attention variant's loss in the last forward (mean per row), 0 without one.</summary>
    public double VariantLoss { get; set; }
}

/// <summary>Forward and backward of naive MLA with causal attention.</summary>
public sealed unsafe class MlaTraining
{
    private const int Block = 64; // query rows per causal block
    private readonly ModelConfig _c;
    private readonly float _scale;
    // backward scratch
    private readonly float[] _dO, _dQ, _dKv, _dKpeHeads, _dC, _dKva, _dCq, _dCqa;
    private MlaActivations? _a;
    private float* _dOp, _dQp, _dKvp, _dKpeHp;
    private readonly Action<int> _fwdHead, _bwdHead, _targetRow;
    // attention variant (null: plain MLA)
    private readonly IVariantTraining? _variant;
    private readonly VariantTrainingOptions? _vopt;
    private readonly float[] _probs = [], _target = [];
    private PositionSelection? _sel;

    public MlaTraining(ModelConfig c, int B, int S, VariantTrainingOptions? variant = null)
    {
        _c = c;
        if (variant is not null)
        {
            _variant = c.GetAttentionVariant()?.CreateTraining(B, S)
                ?? throw new ArgumentException($"{c.ModelType} has no trainable attention variant (only DeepSeek-V3.2's indexer is)");
            _vopt = variant;
            _probs = new float[checked(B * c.NumAttentionHeads * S * S)];
            _target = new float[checked(B * S * S)];
        }
        _targetRow = TargetRow;
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

    /// <summary>The attention variant's training half, when one is trained.</summary>
    public IVariantTraining? Variant => _variant;

    /// <summary>
    /// x [N, H] (normalized input) → y [N, H]. cos/sin [S, Dr/2] hold the rotation of positions 0..S-1. With a trained
    /// variant its loss lands in a.VariantLoss, and its gradient in dw's variant tensors when dw is given.
    /// </summary>
    public void Forward(ComputeBackend be, AttentionWeights w, ReadOnlySpan<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin,
                        MlaActivations a, Span<float> y, AttentionWeights? dw = null)
    {
        ModelConfig c = _c;
        int B = a.B, S = a.S, N = B * S, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim;
        int Dqk = Dn + Dr, R = c.KvLoraRank, half = Dr / 2;

        // queries and latents (Mla.Project); per row the latent, shared rotary key, RoPE on every head's q_pe (Mla.Latent)
        Mla.Project(new TrainingOps(be), w, x, N, a.Cqa, a.CqRstd, a.Cq, a.Q, a.Kva);
        if (cos.Length < S * half || sin.Length < S * half)
            throw new ArgumentException($"cos/sin must hold {S} positions");
        fixed (float* pkva = a.Kva, pn = w.KvNorm, pcr = a.CRstd, pcl = a.C, pkpe = a.Kpe, pq = a.Q, pc = cos, ps = sin)
            Rows.For(be, N, 32, new LatentJob(pkva, pn, pcr, pcl, pkpe, pq, pc, ps, S, R, Dr, Nh, Dqk, Dn));
        Linear.Forward(be, a.C, Linear.F32(w.WkvB), a.Kv, N);

        // the variant (detached inputs); in the sparse stage it chooses the positions of each query
        a.Selection = null;
        if (_variant is not null)
        {
            PositionSelection? sel = _vopt!.Stage == VariantStage.Sparse ? a.Selection = new PositionSelection() : null;
            _variant.Forward(be, w, x, a.Cq, cos, sin, sel);
            sel?.BuildMasks(S);
        }

        // causal attention per (sequence, head)
        _a = a;
        _sel = a.Selection;
        be.For(B * Nh, _fwdHead);
        if (_variant is not null)
        {
            be.For(N, _targetRow);
            a.VariantLoss = _variant.Loss(be, w, dw, x, a.Cq, _target, a.Selection, _vopt!.LossWeight);
        }
        _sel = null;
        _a = null;
        Linear.Forward(be, a.O, Linear.F32(w.Wo), y, N);
    }

    // the variant's target: row n = b·S + t of the attention probabilities summed over heads, L1-normalized (÷ Nh)
    private void TargetRow(int n)
    {
        int S = _a!.S, Nh = _c.NumAttentionHeads, b = n / S, t = n % S;
        Span<float> dst = _target.AsSpan(n * S, S);
        dst.Clear();
        for (int h = 0; h < Nh; h++)
            System.Numerics.Tensors.TensorPrimitives.Add(dst.Slice(0, t + 1), _probs.AsSpan(((b * Nh + h) * S + t) * S, t + 1), dst.Slice(0, t + 1));
        System.Numerics.Tensors.TensorPrimitives.Multiply(dst.Slice(0, t + 1), 1f / Nh, dst.Slice(0, t + 1));
    }

    // softmax(σ·x) over the selected positions of row x[0..n) (slot: its selection row), zero elsewhere
    private static void MaskedSoftmax(float* x, int n, float scale, PositionSelection sel, int slot, out float max, out float sum)
    {
        float m = float.NegativeInfinity;
        for (int s = 0; s < n; s++)
        {
            if (sel.IsSelected(slot, s))
                m = MathF.Max(m, scale * x[s]);
        }
        float z = 0;
        for (int s = 0; s < n; s++)
        {
            float e = sel.IsSelected(slot, s) ? MathF.Exp(scale * x[s] - m) : 0f;
            x[s] = e;
            z += e;
        }
        float inv = 1f / z;
        for (int s = 0; s < n; s++)
            x[s] *= inv;
        max = m;
        sum = z;
    }

    // c = RMSNorm_kva(a[:R]), k_pe = RoPE(a[R:]), q_pe ← RoPE(q_pe) for every head (Mla.Latent)
    private readonly struct LatentJob(float* kva, float* norm, float* crstd, float* clat, float* kpe, float* q, float* cos, float* sin,
                                      int S, int R, int Dr, int Nh, int Dqk, int Dn) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            int half = Dr / 2;
            var ns = new ReadOnlySpan<float>(norm, R);
            for (int n = r0; n < r1; n++)
            {
                int s = n % S;
                crstd[n] = Mla.Latent(new ReadOnlySpan<float>(kva + (long)n * (R + Dr), R + Dr), ns,
                                      new ReadOnlySpan<float>(cos + s * half, half), new ReadOnlySpan<float>(sin + s * half, half),
                                      new Span<float>(clat + (long)n * R, R), new Span<float>(kpe + (long)n * Dr, Dr),
                                      new Span<float>(q + (long)n * Nh * Dqk, Nh * Dqk), Dn);
            }
        }
    }

    // kcat[s] = [k_nope(s) (Dn); k_pe(s) (Dr)] for s < S
    private static void GatherKeys(float* kh, int ldk, float* kp, int S, int Dn, int Dr, float* kcat)
    {
        int Dqk = Dn + Dr;
        for (int s = 0; s < S; s++)
        {
            Buffer.MemoryCopy(kh + (long)s * ldk, kcat + (long)s * Dqk, Dn * 4L, Dn * 4L);
            Buffer.MemoryCopy(kp + (long)s * Dr, kcat + (long)s * Dqk + Dn, Dr * 4L, Dr * 4L);
        }
    }

    // sc[i, s] = Σ_p A[i, p]·B(p, s) for the m rows of a block starting at query t0 and the columns s < t1 any of its
    // queries can see: panels of 32 keys start at the first row tile that reaches them. B is packed for S columns.
    private static void CausalScores(float* a, int lda, float* packed, int S, int K, int t0, int t1, float* sc, int ldsc)
    {
        int m = t1 - t0;
        for (int j = 0; j < t1; j += Gemm.NR)
        {
            int first = Math.Max(0, j - t0) / 6 * 6; // register tiles are 6 rows
            Gemm.RunPacked(GemmKind.NT, m, S, K, a, lda, packed, K, sc, ldsc, false, first, m, j, Math.Min(t1, j + Gemm.NR));
        }
    }

    private void ForwardHead(int task)
    {
        MlaActivations a = _a!;
        ModelConfig c = _c;
        int S = a.S, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim, Dv = c.VHeadDim;
        int Dqk = Dn + Dr, W = Dn + Dv;
        int b = task / Nh, h = task % Nh;
        long kLen = (long)S * Dqk, pkLen = Gemm.PackedLength(S, Dqk), pvLen = Gemm.PackedLength(Dv, S);
        float* buf = Scratch.Get(ScratchSlot.AttnPack, pkLen + pvLen + kLen);
        float* pk = buf, pv = buf + pkLen, kcat = pv + pvLen;
        float* sc = Scratch.Get(ScratchSlot.AttnScores, (long)Block * S);
        float scale = _scale;
        fixed (float* q = a.Q, kv = a.Kv, kpe = a.Kpe, o = a.O, st = a.Stats)
        {
            float* qh = q + (long)b * S * Nh * Dqk + h * Dqk;       // [S, Dqk], row stride Nh·Dqk
            float* kh = kv + (long)b * S * Nh * W + h * W;          // k_nope [S, Dn], v at +Dn, row stride Nh·W
            float* kp = kpe + (long)b * S * Dr;                      // [S, Dr]
            float* oh = o + (long)b * S * Nh * Dv + h * Dv;          // [S, Dv], row stride Nh·Dv
            float* sth = st + (long)task * S * 2;                    // [S, 2]
            GatherKeys(kh, Nh * W, kp, S, Dn, Dr, kcat);
            Gemm.Pack(true, S, Dqk, kcat, Dqk, pk, 0, Gemm.Panels(S));
            Gemm.Pack(false, Dv, S, kh + Dn, Nh * W, pv, 0, Gemm.Panels(Dv));
            for (int t0 = 0; t0 < S; t0 += Block)
            {
                int t1 = Math.Min(S, t0 + Block), m = t1 - t0;
                CausalScores(qh + (long)t0 * Nh * Dqk, Nh * Dqk, pk, S, Dqk, t0, t1, sc, S);
                for (int i = 0; i < m; i++)
                {
                    int t = t0 + i;
                    float* row = sc + (long)i * S;
                    // softmax(σ·scores), keeping max and sum for Backward (over the selection in the sparse stage)
                    float max, sum;
                    if (_sel is { } sel && !sel.IsDense(b * S + t))
                        MaskedSoftmax(row, t + 1, scale, sel, b * S + t, out max, out sum);
                    else
                        RowOps.Softmax(row, t + 1, scale, out max, out sum);
                    sth[2 * t] = max;
                    sth[2 * t + 1] = sum;
                    if (_probs.Length > 0)
                        new ReadOnlySpan<float>(row, t + 1).CopyTo(_probs.AsSpan((task * S + t) * S, t + 1));
                    new Span<float>(row + t + 1, t1 - t - 1).Clear(); // masked: s > t
                }
                // o = p v
                Gemm.RunPacked(GemmKind.NN, m, Dv, t1, sc, S, pv, S, oh + (long)t0 * Nh * Dv, Nh * Dv, false, 0, m, 0, Dv);
            }
        }
    }

    /// <summary>
    /// dy [N, H] → dx [N, H] (+=) and weight gradients (+=), from the activations of the matching Forward.
    /// </summary>
    public void Backward(ComputeBackend be, AttentionWeights w, AttentionWeights dw, ReadOnlySpan<float> x,
                         ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, MlaActivations a, ReadOnlySpan<float> dy, Span<float> dx)
    {
        ModelConfig c = _c;
        int B = a.B, S = a.S, N = B * S, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim, Dv = c.VHeadDim;
        int Dqk = Dn + Dr, R = c.KvLoraRank, half = Dr / 2, W = Dn + Dv;

        // y = W_o o
        Span<float> dO = _dO.AsSpan(0, N * Nh * Dv);
        Linear.Backward(be, dy, a.O, Linear.F32(w.Wo), dO, Linear.F32(dw.Wo).Data, N, accumulateDx: false);

        // attention per (sequence, head): dq, dk_nope, dv, per-head dk_pe (all overwritten)
        fixed (float* pdo = _dO, pdq = _dQ, pdkv = _dKv, pdkh = _dKpeHeads)
        {
            _a = a;
            _dOp = pdo;
            _dQp = pdq;
            _dKvp = pdkv;
            _dKpeHp = pdkh;
            _sel = a.Selection;
            be.For(B * Nh, _bwdHead);
            _sel = null;
            _a = null;
        }

        // dk_pe = Σ_h (heads in order), then undo RoPE; q_pe gradients undo RoPE too; the latent part of dKva is cleared
        if (cos.Length < S * half || sin.Length < S * half)
            throw new ArgumentException($"cos/sin must hold {S} positions");
        fixed (float* pdkva = _dKva, pdkh = _dKpeHeads, pdq = _dQ, pc = cos, ps = sin)
            Rows.For(be, N, 32, new RopeBackJob(pdkva, pdkh, pdq, pc, ps, N, S, R, Dr, Nh, Dqk, Dn));

        // [k_nope; v] = W_kvb c, then c = RMSNorm_kva(a[:R])
        Span<float> dC = _dC.AsSpan(0, N * R);
        Linear.Backward(be, _dKv.AsSpan(0, N * Nh * W), a.C, Linear.F32(w.WkvB), dC, Linear.F32(dw.WkvB).Data, N, accumulateDx: false);
        Span<float> dKva = _dKva.AsSpan(0, N * (R + Dr));
        RmsNorm.Backward(be, dC, R, a.Kva, R + Dr, w.KvNorm, a.CRstd, dKva, R + Dr, dw.KvNorm, N, accumulate: false);

        // the projections
        Mla.ProjectBackward(be, w, dw, x, N, a.Cqa, a.CqRstd, a.Cq, _dQ.AsSpan(0, N * Nh * Dqk), dKva,
                            _dCq.AsSpan(0, N * c.QLoraRank), _dCqa.AsSpan(0, N * c.QLoraRank), dx);
    }

    private readonly struct RopeBackJob(float* dkva, float* dkh, float* dq, float* cos, float* sin, int N, int S, int R, int Dr, int Nh, int Dqk, int Dn) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            int half = Dr / 2;
            for (int n = r0; n < r1; n++)
            {
                int s = n % S;
                var ct = new ReadOnlySpan<float>(cos + s * half, half);
                var st = new ReadOnlySpan<float>(sin + s * half, half);
                float* row = dkva + (long)n * (R + Dr);
                new Span<float>(row, R).Clear();
                float* dk = row + R;
                Buffer.MemoryCopy(dkh + (long)n * Dr, dk, Dr * 4L, Dr * 4L);
                for (int h = 1; h < Nh; h++)
                    Vec.Add(dk, dkh + ((long)h * N + n) * Dr, dk, Dr);
                Mla.LatentBackward(new Span<float>(dk, Dr), new Span<float>(dq + (long)n * Nh * Dqk, Nh * Dqk), Dn, ct, st);
            }
        }
    }

    // FlashAttention-2 style, per block of KeyBlock keys [s0, s1) and every query t ≥ s0 that sees them: P[t, s] again from
    // the saved row max and sum (the same bits as Forward), dP = dO vᵀ, dS = σ·P ⊙ (dP − D_t) with D_t = dO_t·o_t; then
    // dv_s and dk_s are complete over the block's queries (long reductions) and dq_t accumulates over the key blocks.
    private const int KeyBlock = 64;

    private void BackwardHead(int task)
    {
        MlaActivations a = _a!;
        ModelConfig c = _c;
        int S = a.S, N = a.B * S, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim, Dv = c.VHeadDim;
        int Dqk = Dn + Dr, W = Dn + Dv, ldq = Nh * Dqk, ldkv = Nh * W, ldo = Nh * Dv;
        int b = task / Nh, h = task % Nh;
        long kLen = (long)S * Dqk, pkLen = Gemm.PackedLength(S, Dqk), pkbLen = Gemm.PackedLength(Dqk, KeyBlock), pvLen = Gemm.PackedLength(S, Dv);
        float* buf = Scratch.Get(ScratchSlot.AttnPack, pkLen + pkbLen + pvLen + kLen + S);
        float* pk = buf, pkb = pk + pkLen, pvt = pkb + pkbLen, kcat = pvt + pvLen, dd = kcat + kLen;
        float* sc = Scratch.Get(ScratchSlot.AttnScores, (long)S * KeyBlock);
        float* ds = Scratch.Get(ScratchSlot.AttnGrad, (long)S * KeyBlock);
        float* dkc = Scratch.Get(ScratchSlot.AttnKeyGrad, kLen);
        float scale = _scale;
        fixed (float* q = a.Q, kv = a.Kv, kpe = a.Kpe, o = a.O, st = a.Stats)
        {
            long rowQ = (long)b * S * ldq + h * Dqk, rowKv = (long)b * S * ldkv + h * W, rowO = (long)b * S * ldo + h * Dv;
            float* qh = q + rowQ, dqh = _dQp + rowQ;
            float* kh = kv + rowKv, dkh = _dKvp + rowKv;
            float* kp = kpe + (long)b * S * Dr;
            float* dkp = _dKpeHp + ((long)h * N + (long)b * S) * Dr;
            float* doh = _dOp + rowO, oh = o + rowO;
            float* sth = st + (long)task * S * 2;
            GatherKeys(kh, ldkv, kp, S, Dn, Dr, kcat);
            Gemm.Pack(true, S, Dqk, kcat, Dqk, pk, 0, Gemm.Panels(S));    // scores: B(p, s) = k(s, p)
            Gemm.Pack(true, S, Dv, kh + Dn, ldkv, pvt, 0, Gemm.Panels(S)); // dP:     B(p, s) = v(s, p)
            for (int t = 0; t < S; t++)
                dd[t] = Vec.Dot(doh + (long)t * ldo, oh + (long)t * ldo, Dv);
            for (int s0 = 0; s0 < S; s0 += KeyBlock)
            {
                int s1 = Math.Min(S, s0 + KeyBlock), kb = s1 - s0, R = S - s0;
                // scores and dP of queries t ≥ s0 against keys [s0, s1) (columns written at j − s0)
                Gemm.RunPacked(GemmKind.NT, R, S, Dqk, qh + (long)s0 * ldq, ldq, pk, Dqk, sc - s0, KeyBlock, false, 0, R, s0, s1);
                Gemm.RunPacked(GemmKind.NT, R, S, Dv, doh + (long)s0 * ldo, ldo, pvt, Dv, ds - s0, KeyBlock, false, 0, R, s0, s1);
                RowOps.SoftmaxGradBlock(sc, ds, KeyBlock, R, kb, 0, scale, sth + 2 * s0, dd + s0);
                if (_sel is { } sel)
                    MaskBlock(sel, b * S + s0, s0, R, kb, sc, ds);
                // dv_s = Σ_t P[t, s] dO_t and [dk_nope; dk_pe]_s = Σ_t dS[t, s] q_t over the queries t ≥ s0
                Gemm.Run(GemmKind.TN, kb, Dv, R, sc, KeyBlock, doh + (long)s0 * ldo, ldo, dkh + Dn + (long)s0 * ldkv, ldkv, accumulate: false);
                Gemm.Run(GemmKind.TN, kb, Dqk, R, ds, KeyBlock, qh + (long)s0 * ldq, ldq, dkc + (long)s0 * Dqk, Dqk, accumulate: false);
                // dq_t += Σ_s dS[t, s] [k_nope; k_pe]_s
                Gemm.Pack(false, Dqk, kb, kcat + (long)s0 * Dqk, Dqk, pkb, 0, Gemm.Panels(Dqk));
                Gemm.RunPacked(GemmKind.NN, R, Dqk, kb, ds, KeyBlock, pkb, kb, dqh + (long)s0 * ldq, ldq, s0 > 0, 0, R, 0, Dqk);
            }
            for (int s = 0; s < S; s++)
            {
                Buffer.MemoryCopy(dkc + (long)s * Dqk, dkh + (long)s * ldkv, Dn * 4L, Dn * 4L);
                Buffer.MemoryCopy(dkc + (long)s * Dqk + Dn, dkp + (long)s * Dr, Dr * 4L, Dr * 4L);
            }
        }
    }

    // sparse stage: P and dS of the queries t = s0 + i (rows slot0 + i) are zero at the causal keys s0 + j they did not select
    private static void MaskBlock(PositionSelection sel, int slot0, int s0, int R, int kb, float* p, float* ds)
    {
        for (int i = 0; i < R; i++)
        {
            if (sel.IsDense(slot0 + i))
                continue;
            int live = Math.Min(kb, i + 1);
            for (int j = 0; j < live; j++)
            {
                if (!sel.IsSelected(slot0 + i, s0 + j))
                {
                    p[(long)i * KeyBlock + j] = 0;
                    ds[(long)i * KeyBlock + j] = 0;
                }
            }
        }
    }
}
