// Training of DeepSeek-V3.2's lightning indexer (DeepSeek-V3.2 tech report §2.1, "continued pre-training"): over B
// sequences of S positions (rows n = b·S + t), in f32 and without the Hadamard rotation (orthogonal, applied to both q
// and k, so it leaves every q·k unchanged; the fp8 round trip is inference-only):
//   q = RoPE(W_idx_qb cq)  [Hi, Di];   k = RoPE(LayerNorm(W_idx_k x))  [Di];   w = W_idx_w x · Hi^-1/2 · Di^-1/2  [Hi]
//   I(t, s) = Σ_h w_t[h] · relu(q_t[h] · k_s)  for s ≤ t;   p_I(t, ·) = softmax over the positions considered
//   L_I = mean_t KL(p(t, ·) ‖ p_I(t, ·)),  p(t, ·) = the main attention's distribution summed over heads, L1-normalized
// Warm-up: every causal position is considered (dense attention). Sparse stage: the top index_topk positions of I(t, ·)
// (all of them while t < index_topk), the attention runs over them and p, p_I are restricted to them. The indexer's
// inputs x and cq are detached: L_I trains only the indexer's five tensors, and the LM loss never reaches them.
// Backward: dI(t, s) = weight/N · (p_I − p); dw_t[h] = Σ_s dI·relu(q_t[h]·k_s); d(q_t[h]·k_s) = dI·w_t[h]·[q_t[h]·k_s > 0];
// then the RoPE rotations transposed, LayerNorm backward, and the three projections' weight gradients.
using SharpSeek.Model.Architecture;
using SharpSeek.Tensors;
using System.Numerics.Tensors;

namespace SharpSeek.Model.Layers;

public sealed partial class Indexer
{
    public IVariantTraining CreateTraining(int B, int S) => new IndexerTraining(_c, B, S);
}

/// <summary>The lightning indexer's training forward, KL loss and backward for a [B, S] batch shape.</summary>
public sealed class IndexerTraining : IVariantTraining
{
    private readonly ModelConfig _c;
    private readonly int _B, _S, _N, _Hi, _D, _half, _topK;
    private readonly float _wScale;
    private readonly float[] _q, _kx, _kMean, _kRstd, _k, _w, _logits, _target, _dl, _rowLoss;
    private readonly float[] _dq, _dk, _dw, _dkx;
    private readonly float[] _cos, _sin;
    private PositionSelection? _sel;
    private float _scale;
    private readonly Action<int> _prepRow, _logitRow, _lossRow, _queryGradRow, _keyGradRow;

    public IndexerTraining(ModelConfig c, int B, int S)
    {
        IndexerConfig ix = c.Indexer ?? throw new ArgumentException($"{c.ModelType} has no indexer settings");
        if (c.QLoraRank <= 0)
            throw new ArgumentException("the indexer reads MLA's query latent: q_lora_rank must be positive");
        _c = c;
        _B = B;
        _S = S;
        _N = B * S;
        _Hi = ix.Heads;
        _D = ix.HeadDim;
        _topK = ix.TopK;
        _half = c.QkRopeHeadDim / 2;
        if (2 * _half > _D)
            throw new ArgumentException($"index_head_dim {_D} is smaller than the rotary dims {c.QkRopeHeadDim}");
        _wScale = 1f / MathF.Sqrt(_Hi) / MathF.Sqrt(_D);
        int N = _N;
        _q = new float[N * _Hi * _D];
        _kx = new float[N * _D];
        _kMean = new float[N];
        _kRstd = new float[N];
        _k = new float[N * _D];
        _w = new float[N * _Hi];
        _logits = new float[(long)N * S];
        _target = new float[(long)N * S];
        _dl = new float[(long)N * S];
        _rowLoss = new float[N];
        _dq = new float[N * _Hi * _D];
        _dk = new float[N * _D];
        _dw = new float[N * _Hi];
        _dkx = new float[N * _D];
        _cos = new float[S * _half];
        _sin = new float[S * _half];
        _prepRow = PrepRow;
        _logitRow = LogitRow;
        _lossRow = LossRow;
        _queryGradRow = QueryGradRow;
        _keyGradRow = KeyGradRow;
    }

    /// <summary>Index scores of the last forward [N, S] (row n = b·S + t, columns 0..t valid).</summary>
    public ReadOnlySpan<float> Logits => _logits;

    public void Forward(ComputeBackend be, AttentionWeights w, ReadOnlySpan<float> x, ReadOnlySpan<float> cq,
                        ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, PositionSelection? selection)
    {
        int N = _N, S = _S, half = _half;
        if (cq.Length < N * _c.QLoraRank || x.Length < N * _c.HiddenSize)
            throw new ArgumentException($"the indexer needs x [{N}, {_c.HiddenSize}] and cq [{N}, {_c.QLoraRank}]");
        if (cos.Length < S * half || sin.Length < S * half)
            throw new ArgumentException($"cos/sin must hold {S} positions");
        // the reference rotates with unit-magnitude frequencies (as Indexer.Selector)
        float unit = 1f / (float)_c.RopeAttentionFactor;
        TensorPrimitives.Multiply(cos.Slice(0, S * half), unit, _cos);
        TensorPrimitives.Multiply(sin.Slice(0, S * half), unit, _sin);
        ExtensionTensors e = w.Extensions;
        Linear.Forward(be, cq.Slice(0, N * _c.QLoraRank), Linear.F32(e.Matrix(TensorRole.IndexerWqB)), _q, N);
        Linear.Forward(be, x.Slice(0, N * _c.HiddenSize), Linear.F32(e.Matrix(TensorRole.IndexerWk)), _kx, N);
        Linear.Forward(be, x.Slice(0, N * _c.HiddenSize), Linear.F32(e.Matrix(TensorRole.IndexerWeights)), _w, N);
        _kNorm = e.Vector(TensorRole.IndexerKNorm);
        _kBias = e.Vector(TensorRole.IndexerKNormBias);
        be.For(N, _prepRow);
        be.For(N, _logitRow);
        _kNorm = _kBias = null;
        if (selection is null)
            return;
        selection.Reset(N, _topK);
        var work = new float[S];
        for (int n = 0; n < N; n++)
        {
            int t = n % S;
            if (t + 1 <= _topK)
                continue; // dense while a query has at most index_topk positions
            int count = IndexerKernels.TopK(_logits.AsSpan(n * S, t + 1), _topK, selection.Buffer(n), work);
            selection.SetCount(n, count);
        }
    }

    private float[]? _kNorm, _kBias;

    // k = RoPE(LayerNorm(kx)), q heads rotated, w scaled
    private void PrepRow(int n)
    {
        int D = _D, half = _half, t = n % _S;
        ReadOnlySpan<float> cs = _cos.AsSpan(t * half, half), sn = _sin.AsSpan(t * half, half);
        Span<float> kx = _kx.AsSpan(n * D, D), k = _k.AsSpan(n * D, D);
        float mean = TensorPrimitives.Sum<float>(kx) / D, var = 0;
        foreach (float v in kx)
            var += (v - mean) * (v - mean);
        float rstd = 1f / MathF.Sqrt(var / D + Indexer.KNormEps);
        _kMean[n] = mean;
        _kRstd[n] = rstd;
        for (int i = 0; i < D; i++)
            k[i] = (kx[i] - mean) * rstd * _kNorm![i] + _kBias![i];
        IndexerKernels.RopeHalfSplit(k, cs, sn);
        for (int h = 0; h < _Hi; h++)
            IndexerKernels.RopeHalfSplit(_q.AsSpan((n * _Hi + h) * D, D), cs, sn);
        TensorPrimitives.Multiply(_w.AsSpan(n * _Hi, _Hi), _wScale, _w.AsSpan(n * _Hi, _Hi));
    }

    // I(t, s) = Σ_h w_t[h] relu(q_t[h]·k_s) for s ≤ t
    private void LogitRow(int n)
    {
        int S = _S, D = _D, t = n % S, b0 = n - t;
        Span<float> row = _logits.AsSpan(n * S, S);
        row.Clear();
        ReadOnlySpan<float> w = _w.AsSpan(n * _Hi, _Hi);
        for (int s = 0; s <= t; s++)
        {
            ReadOnlySpan<float> ks = _k.AsSpan((b0 + s) * D, D);
            float sum = 0;
            for (int h = 0; h < _Hi; h++)
                sum += w[h] * MathF.Max(0f, TensorPrimitives.Dot(_q.AsSpan((n * _Hi + h) * D, D), ks));
            row[s] = sum;
        }
    }

    public double Loss(ComputeBackend be, AttentionWeights w, AttentionWeights? dw, ReadOnlySpan<float> x, ReadOnlySpan<float> cq,
                       ReadOnlySpan<float> target, PositionSelection? selection, float weight)
    {
        int N = _N, S = _S, D = _D, Hi = _Hi;
        if (target.Length < (long)N * S)
            throw new ArgumentException($"target must hold [{N}, {S}] probabilities");
        target.Slice(0, N * S).CopyTo(_target);
        _sel = selection;
        _scale = weight / N;
        be.For(N, _lossRow);
        double loss = 0;
        for (int n = 0; n < N; n++)
            loss += _rowLoss[n];
        loss /= N;
        if (dw is not null)
        {
            be.For(N, _queryGradRow);
            be.For(N, _keyGradRow);
            Backward(be, w, dw, x, cq);
        }
        _sel = null;
        return loss;
    }

    // KL(p ‖ p_I) of one row over its positions, and dI = scale·(p_I − p) (zero elsewhere)
    private void LossRow(int n)
    {
        int S = _S, t = n % S;
        ReadOnlySpan<float> l = _logits.AsSpan(n * S, S), p = _target.AsSpan(n * S, S);
        Span<float> dl = _dl.AsSpan(n * S, S);
        dl.Clear();
        bool dense = _sel is null || _sel.IsDense(n);
        ReadOnlySpan<int> set = dense ? default : _sel!.Positions(n);
        int count = dense ? t + 1 : set.Length;
        float max = float.NegativeInfinity;
        double z = 0, psum = 0;
        for (int i = 0; i < count; i++)
        {
            int s = dense ? i : set[i];
            max = MathF.Max(max, l[s]);
            psum += p[s];
        }
        for (int i = 0; i < count; i++)
            z += Math.Exp(l[dense ? i : set[i]] - max);
        double logZ = Math.Log(z), kl = 0;
        for (int i = 0; i < count; i++)
        {
            int s = dense ? i : set[i];
            double logq = l[s] - max - logZ, ps = psum > 0 ? p[s] / psum : 0;
            if (ps > 0)
                kl += ps * (Math.Log(ps) - logq);
            dl[s] = (float)(_scale * (Math.Exp(logq) - ps));
        }
        _rowLoss[n] = (float)kl;
    }

    // dw_t[h] = Σ_s dI·relu(q_t[h]·k_s); dq_t[h] = Σ_s dI·w_t[h]·[q_t[h]·k_s > 0]·k_s
    private void QueryGradRow(int n)
    {
        int S = _S, D = _D, Hi = _Hi, t = n % S, b0 = n - t;
        ReadOnlySpan<float> dl = _dl.AsSpan(n * S, S), w = _w.AsSpan(n * Hi, Hi);
        Span<float> dw = _dw.AsSpan(n * Hi, Hi), dq = _dq.AsSpan(n * Hi * D, Hi * D);
        dw.Clear();
        dq.Clear();
        for (int s = 0; s <= t; s++)
        {
            if (dl[s] == 0)
                continue;
            ReadOnlySpan<float> ks = _k.AsSpan((b0 + s) * D, D);
            for (int h = 0; h < Hi; h++)
            {
                float dot = TensorPrimitives.Dot(_q.AsSpan((n * Hi + h) * D, D), ks);
                if (dot <= 0)
                    continue;
                dw[h] += dl[s] * dot;
                TensorPrimitives.MultiplyAdd(ks, dl[s] * w[h], dq.Slice(h * D, D), dq.Slice(h * D, D));
            }
        }
    }

    // dk_s = Σ_{t ≥ s} Σ_h dI(t, s)·w_t[h]·[q_t[h]·k_s > 0]·q_t[h]
    private void KeyGradRow(int m)
    {
        int S = _S, D = _D, Hi = _Hi, s = m % S, b0 = m - s;
        ReadOnlySpan<float> ks = _k.AsSpan(m * D, D);
        Span<float> dk = _dk.AsSpan(m * D, D);
        dk.Clear();
        for (int t = s; t < S; t++)
        {
            int n = b0 + t;
            float g = _dl[(long)n * S + s];
            if (g == 0)
                continue;
            for (int h = 0; h < Hi; h++)
            {
                ReadOnlySpan<float> qh = _q.AsSpan((n * Hi + h) * D, D);
                if (TensorPrimitives.Dot(qh, ks) <= 0)
                    continue;
                TensorPrimitives.MultiplyAdd(qh, g * _w[n * Hi + h], dk, dk);
            }
        }
    }

    // the rotations transposed, LayerNorm backward, then the projections' weight gradients
    private void Backward(ComputeBackend be, AttentionWeights w, AttentionWeights dw, ReadOnlySpan<float> x, ReadOnlySpan<float> cq)
    {
        int N = _N, S = _S, D = _D, Hi = _Hi, half = _half;
        ExtensionTensors e = w.Extensions, de = dw.Extensions;
        float[] gamma = e.Vector(TensorRole.IndexerKNorm), dGamma = de.Vector(TensorRole.IndexerKNorm), dBeta = de.Vector(TensorRole.IndexerKNormBias);
        Span<float> negSin = stackalloc float[half];
        for (int n = 0; n < N; n++)
        {
            int t = n % S;
            ReadOnlySpan<float> cs = _cos.AsSpan(t * half, half);
            TensorPrimitives.Negate(_sin.AsSpan(t * half, half), negSin);
            for (int h = 0; h < Hi; h++)
                IndexerKernels.RopeHalfSplit(_dq.AsSpan((n * Hi + h) * D, D), cs, negSin);
            Span<float> dy = _dk.AsSpan(n * D, D), dkx = _dkx.AsSpan(n * D, D);
            IndexerKernels.RopeHalfSplit(dy, cs, negSin);
            // y = x̂·γ + β, x̂ = (kx − mean)·rstd: dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))
            float mean = _kMean[n], rstd = _kRstd[n], m1 = 0, m2 = 0;
            ReadOnlySpan<float> kx = _kx.AsSpan(n * D, D);
            for (int i = 0; i < D; i++)
            {
                float xh = (kx[i] - mean) * rstd, dxh = dy[i] * gamma[i];
                dGamma[i] += dy[i] * xh;
                dBeta[i] += dy[i];
                m1 += dxh;
                m2 += dxh * xh;
            }
            m1 /= D;
            m2 /= D;
            for (int i = 0; i < D; i++)
            {
                float xh = (kx[i] - mean) * rstd;
                dkx[i] = rstd * (dy[i] * gamma[i] - m1 - xh * m2);
            }
        }
        TensorPrimitives.Multiply(_dw, _wScale, _dw);
        int Hd = _c.HiddenSize, Dq = _c.QLoraRank;
        Linear.Backward(be, _dq, cq.Slice(0, N * Dq), Linear.F32(e.Matrix(TensorRole.IndexerWqB)), [],
                        Linear.F32(de.Matrix(TensorRole.IndexerWqB)).Data, N);
        Linear.Backward(be, _dkx, x.Slice(0, N * Hd), Linear.F32(e.Matrix(TensorRole.IndexerWk)), [],
                        Linear.F32(de.Matrix(TensorRole.IndexerWk)).Data, N);
        Linear.Backward(be, _dw, x.Slice(0, N * Hd), Linear.F32(e.Matrix(TensorRole.IndexerWeights)), [],
                        Linear.F32(de.Matrix(TensorRole.IndexerWeights)).Data, N);
    }
}
