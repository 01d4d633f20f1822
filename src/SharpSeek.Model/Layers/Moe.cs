// DeepSeekMoE block over a batch of token rows, as explicit steps (docs/design.md seam 6):
// route (router logits in fp32 → experts and weights per row) → group rows by expert → run each expert once
// over its rows → combine (weighted sum into the output), then add the shared experts.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>The MoE feed-forward block.</summary>
public sealed class Moe
{
    private readonly ModelConfig _c;
    private float[] _logits = [], _scratch = [], _weights = [], _gate = [], _up = [];
    private int[] _experts = [], _count = [], _offset = [], _rows = [];

    public Moe(ModelConfig c) => _c = c;

    /// <summary>Per-expert token counts of the last call (expert load statistics).</summary>
    public ReadOnlySpan<int> LastCounts => _count;

    /// <summary>Chosen experts [T, K] of the last call.</summary>
    public ReadOnlySpan<int> LastExperts => _experts;

    /// <summary>x [T, H] (normalized) → y [T, H].</summary>
    public void Forward(ComputeBackend be, MoeWeights w, ReadOnlySpan<float> x, int T, Span<float> y)
    {
        int H = _c.HiddenSize, E = _c.NRoutedExperts, K = _c.NumExpertsPerTok;
        Grow(ref _logits, T * E);
        Grow(ref _scratch, Router.ScratchSize(_c));
        Grow(ref _weights, T * K);
        Grow(ref _experts, T * K);
        Grow(ref _count, E);
        Grow(ref _offset, E + 1);
        Grow(ref _rows, T * K);

        // route
        Span<float> logits = _logits.AsSpan(0, T * E);
        be.MatMul(w.Gate, x, T, logits);
        ReadOnlySpan<float> bias = w.Bias;
        for (int t = 0; t < T; t++)
            Router.Route(_c, logits.Slice(t * E, E), bias, _experts.AsSpan(t * K, K), _weights.AsSpan(t * K, K), _scratch);

        // group: rows of each expert, in token order (counting sort)
        Span<int> count = _count.AsSpan(0, E);
        count.Clear();
        for (int i = 0; i < T * K; i++)
            count[_experts[i]]++;
        _offset[0] = 0;
        for (int e = 0; e < E; e++)
            _offset[e + 1] = _offset[e] + count[e];
        Span<int> fill = E <= 1024 ? stackalloc int[E] : new int[E];
        for (int i = 0; i < T * K; i++)
        {
            int e = _experts[i];
            _rows[_offset[e] + fill[e]++] = i; // i = t·K + k
        }

        // run experts: in parallel over experts when there are enough of them to keep every worker busy
        // (each expert's products then run on one thread), else one at a time with row-parallel products
        int active = 0;
        Grow(ref _active, E);
        for (int e = 0; e < E; e++)
        {
            if (count[e] > 0)
                _active[active++] = e;
        }
        Grow(ref _out, T * K * H);
        _w = w;
        _be = be;
        _xArr = Stage(x, T * H);
        if (be.Workers > 1 && active >= 2 * be.Workers)
        {
            _runExpert ??= RunExpertAt;
            be.For(active, _runExpert);
        }
        else
        {
            for (int a = 0; a < active; a++)
                RunExpert(_active[a], be);
        }
        _w = null;
        _be = null;

        // combine: y[t] = Σ_k w[t,k] · out[t·K + k], in expert-selection order per token
        y.Slice(0, T * H).Clear();
        for (int i = 0; i < T * K; i++)
        {
            Span<float> yt = y.Slice(i / K * H, H);
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(_out.AsSpan(i * H, H), _weights[i], yt, yt);
        }

        // shared experts, added after the routed sum (as transformers does)
        if (w.Shared is { } shared)
        {
            int Is = _c.MoeIntermediateSize * _c.NSharedExperts;
            Grow(ref _sharedOut, T * H);
            Grow(ref _gate, T * Is);
            Grow(ref _up, T * Is);
            Span<float> ys = _sharedOut.AsSpan(0, T * H);
            Mlp.Forward(be, shared, x, T, ys, _gate, _up);
            System.Numerics.Tensors.TensorPrimitives.Add(y.Slice(0, T * H), ys, y.Slice(0, T * H));
        }
    }

    private MoeWeights? _w;
    private ComputeBackend? _be;
    private float[] _xArr = [], _out = [], _sharedOut = [];
    private int[] _active = [];
    private Action<int>? _runExpert;
    [ThreadStatic] private static float[]? t_xe, t_ye, t_gate, t_up;

    private float[] Stage(ReadOnlySpan<float> x, int n)
    {
        Grow(ref _stage, n);
        x.Slice(0, n).CopyTo(_stage);
        return _stage;
    }

    private float[] _stage = [];

    private void RunExpertAt(int a) => RunExpert(_active[a], _be!);

    /// <summary>Gathers expert e's rows, runs its MLP, and writes each result to its assignment row of _out.</summary>
    private void RunExpert(int e, ComputeBackend be)
    {
        int H = _c.HiddenSize, K = _c.NumExpertsPerTok, I = _c.MoeIntermediateSize, n = _count[e];
        float[] xe = Scratch(ref t_xe, n * H), ye = Scratch(ref t_ye, n * H), gate = Scratch(ref t_gate, n * I), up = Scratch(ref t_up, n * I);
        for (int j = 0; j < n; j++)
            _xArr.AsSpan(_rows[_offset[e] + j] / K * H, H).CopyTo(xe.AsSpan(j * H, H));
        Mlp.Forward(be, _w!.Experts[e], xe.AsSpan(0, n * H), n, ye.AsSpan(0, n * H), gate, up);
        for (int j = 0; j < n; j++)
            ye.AsSpan(j * H, H).CopyTo(_out.AsSpan(_rows[_offset[e] + j] * H, H));
    }

    private static float[] Scratch(ref float[]? a, int n)
    {
        if (a is null || a.Length < n)
            a = new float[Math.Max(n, 1024)];
        return a;
    }

    private static void Grow<T>(ref T[] a, int n)
    {
        if (a.Length < n)
            a = new T[n];
    }
}
