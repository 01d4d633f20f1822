// DeepSeekMoE for training (docs/deepseek-architecture.md §4, §10), as explicit steps (docs/design.md seam 6):
//   route:   logits = W_g x (fp32); experts and weights per row by Router.RouteRows (bias for selection only)
//   group:   rows of each expert in token order (counting sort)
//   experts: each expert's SwiGLU MLP over its rows (experts run in parallel)
//   combine: y[t] = Σ_k w[t,k]·E_k(x[t]) in ascending expert order, then + shared MLP(x[t]) (as Model's Moe)
// Backward reaches routed experts, shared experts and the router through the gating weights (top-k choice not
// differentiated): dw[t,k] = dy[t]·E_k(x[t]); through normalization w = rsf·s/Σs (or w = rsf·s) to the scores
// s; through sigmoid or softmax to the logits. The sequence-wise balance loss (docs/deepseek-architecture.md §10, DeepSeek-V3 eqs. 17-20)
// L = α·Σ_i f_i·P_i per sequence, averaged over sequences, with f_i = E/(K·S)·#{t: i routed} (the experts
// actually selected, i.e. with the bias; f is a constant) and P_i = mean_t s_i,t/Σ_j s_j,t, adds its gradient to s.
using System.Numerics.Tensors;
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>Saved activations of one MoE layer for a [B, S] batch.</summary>
public sealed class MoeActivations
{
    public MoeActivations(ModelConfig c, int B, int S)
    {
        int N = B * S, E = c.NRoutedExperts, K = c.NumExpertsPerTok, H = c.HiddenSize, Ie = c.MoeIntermediateSize;
        int Is = Ie * c.NSharedExperts;
        this.B = B;
        this.S = S;
        Logits = new float[N * E];
        Scores = new float[N * E];
        Experts = new int[N * K];
        Weights = new float[N * K];
        Count = new int[E];
        Offset = new int[E + 1];
        Slot = new int[N * K];
        Pos = new int[N * K];
        Xe = new float[N * K * H];
        Ge = new float[N * K * Ie];
        Ue = new float[N * K * Ie];
        He = new float[N * K * Ie];
        Ye = new float[N * K * H];
        Gs = new float[N * Is];
        Us = new float[N * Is];
        Hs = new float[N * Is];
        Ys = new float[N * H];
        BalanceF = new float[B * E];
    }

    public int B { get; }
    public int S { get; }
    /// <summary>Router logits [N, E].</summary>
    public float[] Logits { get; }
    /// <summary>Affinities s = sigmoid or softmax of the logits [N, E] (no bias).</summary>
    public float[] Scores { get; }
    /// <summary>Chosen experts [N, K] in selection order.</summary>
    public int[] Experts { get; }
    /// <summary>Combine weights [N, K] (normalized and scaled).</summary>
    public float[] Weights { get; }
    /// <summary>Rows routed to each expert [E] (expert load of this batch).</summary>
    public int[] Count { get; }
    /// <summary>First grouped row of each expert [E+1].</summary>
    public int[] Offset { get; }
    /// <summary>Grouped row j → slot i = t·K + k [N·K].</summary>
    public int[] Slot { get; }
    /// <summary>Slot i → grouped row j [N·K].</summary>
    public int[] Pos { get; }
    /// <summary>Grouped expert inputs [N·K, H], gate/up/activation [N·K, Ie], outputs [N·K, H].</summary>
    public float[] Xe { get; }
    public float[] Ge { get; }
    public float[] Ue { get; }
    public float[] He { get; }
    public float[] Ye { get; }
    /// <summary>Shared MLP gate/up/activation [N, Ie·n_shared] and output [N, H].</summary>
    public float[] Gs { get; }
    public float[] Us { get; }
    public float[] Hs { get; }
    public float[] Ys { get; }
    /// <summary>f_i per sequence [B, E] of the balance loss.</summary>
    public float[] BalanceF { get; }
    /// <summary>Sequence-wise balance loss of the last forward (already multiplied by α).</summary>
    public double BalanceLoss { get; set; }
}

/// <summary>Forward and backward of a DeepSeekMoE block.</summary>
public sealed unsafe class MoeTraining
{
    private const int RowBlock = 64;
    private readonly ModelConfig _c;
    private readonly float[] _dye, _dxe, _dhe, _dge, _due, _dw, _dlogits, _dhs, _dgs, _dus;
    private readonly int[] _order;
    private readonly Action<int> _fwdExpert, _bwdExpert;
    private MoeActivations? _a;
    private MoeWeights? _w, _gw;

    public MoeTraining(ModelConfig c, int B, int S)
    {
        _c = c;
        int N = B * S, E = c.NRoutedExperts, K = c.NumExpertsPerTok, H = c.HiddenSize, Ie = c.MoeIntermediateSize;
        int Is = Ie * c.NSharedExperts;
        _dye = new float[N * K * H];
        _dxe = new float[N * K * H];
        _dhe = new float[N * K * Ie];
        _dge = new float[N * K * Ie];
        _due = new float[N * K * Ie];
        _dw = new float[N * K];
        _dlogits = new float[N * E];
        _dhs = new float[N * Is];
        _dgs = new float[N * Is];
        _dus = new float[N * Is];
        _order = new int[E];
        _fwdExpert = ForwardExpert;
        _bwdExpert = BackwardExpert;
    }

    /// <summary>x [N, H] (normalized) → y [N, H]. alpha: balance-loss coefficient (0: not computed).</summary>
    public void Forward(ComputeBackend be, MoeWeights w, ReadOnlySpan<float> x, MoeActivations a, Span<float> y, float alpha)
    {
        ModelConfig c = _c;
        int B = a.B, S = a.S, N = B * S, E = c.NRoutedExperts, K = c.NumExpertsPerTok, H = c.HiddenSize;
        if (x.Length < N * H || y.Length < N * H)
            throw new ArgumentException($"MoE: x and y must hold {N} x {H}");

        // route
        Linear.Forward(be, x, Linear.F32(w.Gate), a.Logits, N);
        Rows.For(be, N, RowBlock, new RouteJob(c, a, w.Bias));

        // group: rows of each expert in token order
        Moe.Group(a.Experts.AsSpan(0, N * K), E, a.Count, a.Offset, a.Slot, a.Pos);
        fixed (float* px = x, py = y)
        {
            Rows.For(be, N * K, RowBlock, new GatherJob(px, N * H, a.Xe, a.Slot, K, H));

            // experts (in parallel, largest first), each on the calling worker; then the shared experts
            _a = a;
            _w = w;
            OrderBySize(a.Count);
            be.For(E, _fwdExpert);
            _a = null;
            _w = null;
            if (w.Shared is { } shared)
                Mlp.Forward(be, shared, x, N, a.Gs, a.Us, a.Hs, a.Ys);

            // combine (Moe.Combine: ascending expert id), then + the shared experts
            Rows.For(be, N, RowBlock, new CombineJob(a, K, H, w.Shared is not null, py));
        }

        a.BalanceLoss = alpha > 0 ? BalanceForward(a, alpha) : 0;
    }

    // experts by decreasing load (ties by index), so the longest start first on the workers
    private void OrderBySize(int[] count)
    {
        for (int e = 0; e < _order.Length; e++)
        {
            int j = e;
            while (j > 0 && count[_order[j - 1]] < count[e])
            {
                _order[j] = _order[j - 1];
                j--;
            }
            _order[j] = e;
        }
    }

    private readonly struct RouteJob(ModelConfig c, MoeActivations a, float[]? bias) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            int E = c.NRoutedExperts, K = c.NumExpertsPerTok;
            Span<float> scratch = stackalloc float[E + c.NGroup];
            int n = r1 - r0;
            Router.RouteRows(c, a.Logits.AsSpan(r0 * E, n * E), bias, a.Scores.AsSpan(r0 * E, n * E), a.Experts.AsSpan(r0 * K, n * K),
                             a.Weights.AsSpan(r0 * K, n * K), scratch);
        }
    }

    private readonly struct GatherJob(float* x, int n, float[] xe, int[] slot, int K, int H) : IRowJob
    {
        public void Run(int block, int r0, int r1) =>
            Moe.Gather(new ReadOnlySpan<float>(x, n), slot.AsSpan(r0, r1 - r0), K, H, xe.AsSpan(r0 * H));
    }

    private readonly struct CombineJob(MoeActivations a, int K, int H, bool shared, float* y) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            for (int t = r0; t < r1; t++)
            {
                var yt = new Span<float>(y + (long)t * H, H);
                Moe.Combine(a.Experts.AsSpan(t * K, K), a.Weights.AsSpan(t * K, K), a.Pos.AsSpan(t * K, K), a.Ye, yt);
                if (shared)
                    TensorPrimitives.Add(yt, a.Ys.AsSpan(t * H, H), yt);
            }
        }
    }

    private void ForwardExpert(int i)
    {
        MoeActivations a = _a!;
        int e = _order[i], n = a.Count[e];
        if (n == 0)
            return;
        int H = _c.HiddenSize, Ie = _c.MoeIntermediateSize, j0 = a.Offset[e];
        Mlp.Forward(null, _w!.Experts[e], a.Xe.AsSpan(j0 * H, n * H), n, a.Ge.AsSpan(j0 * Ie, n * Ie), a.Ue.AsSpan(j0 * Ie, n * Ie),
                    a.He.AsSpan(j0 * Ie, n * Ie), a.Ye.AsSpan(j0 * H, n * H));
    }

    /// <summary>dy [N, H] → dx [N, H] (+=) and weight gradients (+=).</summary>
    public void Backward(ComputeBackend be, MoeWeights w, MoeWeights dw, ReadOnlySpan<float> x, MoeActivations a,
                         ReadOnlySpan<float> dy, Span<float> dx, float alpha)
    {
        ModelConfig c = _c;
        int B = a.B, S = a.S, N = B * S, E = c.NRoutedExperts, K = c.NumExpertsPerTok, H = c.HiddenSize;
        if (dy.Length < N * H || dx.Length < N * H)
            throw new ArgumentException($"MoE: dy and dx must hold {N} x {H}");

        if (w.Shared is { } shared)
            Mlp.Backward(be, shared, dw.Shared!, dy, x, N, a.Gs, a.Us, a.Hs, dx, _dhs, _dgs, _dus);

        fixed (float* pdy = dy, pdx = dx)
        {
            // combine: d(expert output) = w·dy, d(weight) = dy·E_k(x)
            Rows.For(be, N, RowBlock, new CombineBackJob(a, pdy, _dye, _dw, K, H));

            // experts (in parallel, largest first), then each row gathers its experts' input gradients
            _a = a;
            _w = w;
            _gw = dw;
            OrderBySize(a.Count);
            be.For(E, _bwdExpert);
            _a = null;
            _w = null;
            _gw = null;
            Rows.For(be, N, RowBlock, new ScatterJob(a.Pos, _dxe, pdx, K, H));
        }

        // router: weights → scores (normalization), + balance loss, scores → logits
        Rows.For(be, N, RowBlock, new RouterBackJob(c, a, _dw, _dlogits, alpha));
        Linear.Backward(be, _dlogits.AsSpan(0, N * E), x, Linear.F32(w.Gate), dx, Linear.F32(dw.Gate).Data, N);
    }

    private readonly struct CombineBackJob(MoeActivations a, float* dy, float[] dye, float[] dw, int K, int H) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            for (int t = r0; t < r1; t++)
            {
                var dyt = new ReadOnlySpan<float>(dy + (long)t * H, H);
                for (int k = 0; k < K; k++)
                {
                    int i = t * K + k, j = a.Pos[i];
                    TensorPrimitives.Multiply(dyt, a.Weights[i], dye.AsSpan(j * H, H));
                    dw[i] = TensorPrimitives.Dot(dyt, a.Ye.AsSpan(j * H, H));
                }
            }
        }
    }

    private readonly struct ScatterJob(int[] pos, float[] dxe, float* dx, int K, int H) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            for (int t = r0; t < r1; t++)
            {
                var dxt = new Span<float>(dx + (long)t * H, H);
                for (int k = 0; k < K; k++)
                    TensorPrimitives.Add(dxt, dxe.AsSpan(pos[t * K + k] * H, H), dxt);
            }
        }
    }

    // per row: ds = d(weights)/d(scores)ᵀ dw (Router.WeightsBackward) + the balance-loss gradient, then dlogits = ds ⊙ σ'
    // or the softmax Jacobian (Router.AffinitiesBackward)
    private readonly struct RouterBackJob(ModelConfig c, MoeActivations a, float[] dw, float[] dlogits, float alpha) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            int S = a.S, E = c.NRoutedExperts, K = c.NumExpertsPerTok;
            float kBal = alpha / (a.B * S);
            Span<float> dst = E <= 1024 ? stackalloc float[E] : new float[E];
            for (int t = r0; t < r1; t++)
            {
                ReadOnlySpan<float> s = a.Scores.AsSpan(t * E, E);
                dst.Clear();
                Router.WeightsBackward(c, s, a.Experts.AsSpan(t * K, K), dw.AsSpan(t * K, K), dst);
                if (alpha > 0)
                {
                    // dL/ds'_i,t = α·f_i/(B·S); s' = s/Z → ds_j = (g_j − Σ_i g_i s'_i) / Z
                    ReadOnlySpan<float> f = a.BalanceF.AsSpan(t / S * E, E);
                    float zb = TensorPrimitives.Sum(s), dotb = TensorPrimitives.Dot(f, s) / zb;
                    for (int e = 0; e < E; e++)
                        dst[e] += kBal * (f[e] - dotb) / zb;
                }
                Router.AffinitiesBackward(c, s, dst, dlogits.AsSpan(t * E, E));
            }
        }
    }

    private void BackwardExpert(int i)
    {
        MoeActivations a = _a!;
        int e = _order[i], n = a.Count[e];
        if (n == 0)
            return;
        int H = _c.HiddenSize, Ie = _c.MoeIntermediateSize, j0 = a.Offset[e];
        Mlp.Backward(null, _w!.Experts[e], _gw!.Experts[e], _dye.AsSpan(j0 * H, n * H), a.Xe.AsSpan(j0 * H, n * H), n,
                     a.Ge.AsSpan(j0 * Ie, n * Ie), a.Ue.AsSpan(j0 * Ie, n * Ie), a.He.AsSpan(j0 * Ie, n * Ie),
                     _dxe.AsSpan(j0 * H, n * H), _dhe.AsSpan(j0 * Ie, n * Ie), _dge.AsSpan(j0 * Ie, n * Ie), _due.AsSpan(j0 * Ie, n * Ie),
                     accumulateDx: false);
    }

    // L = (1/B)·Σ_b α·Σ_i f_b,i·P_b,i
    private double BalanceForward(MoeActivations a, float alpha)
    {
        int B = a.B, S = a.S, E = _c.NRoutedExperts, K = _c.NumExpertsPerTok;
        double total = 0;
        Span<double> p = E <= 1024 ? stackalloc double[E] : new double[E];
        for (int b = 0; b < B; b++)
        {
            Span<float> f = a.BalanceF.AsSpan(b * E, E);
            f.Clear();
            p.Clear();
            for (int t = b * S; t < (b + 1) * S; t++)
            {
                for (int k = 0; k < K; k++)
                    f[a.Experts[t * K + k]] += 1f;
                ReadOnlySpan<float> s = a.Scores.AsSpan(t * E, E);
                double z = TensorPrimitives.Sum(s);
                for (int e = 0; e < E; e++)
                    p[e] += s[e] / z;
            }
            double lb = 0;
            for (int e = 0; e < E; e++)
            {
                f[e] *= (float)E / (K * S);
                lb += f[e] * (p[e] / S);
            }
            total += alpha * lb;
        }
        return total / B;
    }
}
