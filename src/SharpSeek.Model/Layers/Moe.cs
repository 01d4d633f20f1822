// DeepSeekMoE block over a batch of token rows, as explicit steps (docs/design.md seam 6):
// route (router logits in fp32 → experts and weights per row) → group rows by expert → run each expert once
// over its rows → combine (weighted sum into the output), then add the shared experts. Group and Combine are the
// steps of both the inference forward here and the training forward (Moe.Training.cs).
using System.Numerics.Tensors;
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>The MoE feed-forward block.</summary>
public sealed class Moe
{
    private readonly ModelConfig _c;
    private float[] _logits = [], _scores = [], _scratch = [], _weights = [], _gate = [], _up = [];
    private int[] _experts = [], _count = [], _offset = [], _slot = [], _pos = [];

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
        Grow(ref _scores, T * E);
        Grow(ref _scratch, Router.ScratchSize(_c));
        Grow(ref _weights, T * K);
        Grow(ref _experts, T * K);
        Grow(ref _count, E);
        Grow(ref _offset, E + 1);
        Grow(ref _slot, T * K);
        Grow(ref _pos, T * K);

        // route
        Span<float> logits = _logits.AsSpan(0, T * E);
        be.MatMul(w.Gate, x, T, logits);
        Router.RouteRows(_c, logits, w.Bias, _scores.AsSpan(0, T * E), _experts.AsSpan(0, T * K), _weights.AsSpan(0, T * K), _scratch);

        // group: rows of each expert, in token order
        Span<int> count = _count.AsSpan(0, E);
        Group(_experts.AsSpan(0, T * K), E, count, _offset, _slot, _pos);

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

        // combine
        for (int t = 0; t < T; t++)
            Combine(_experts.AsSpan(t * K, K), _weights.AsSpan(t * K, K), _pos.AsSpan(t * K, K), _out, y.Slice(t * H, H));

        // shared experts, added after the routed sum (as transformers does)
        if (w.Shared is { } shared)
        {
            int Is = _c.MoeIntermediateSize * _c.NSharedExperts;
            Grow(ref _sharedOut, T * H);
            Grow(ref _gate, T * Is);
            Grow(ref _up, T * Is);
            Span<float> ys = _sharedOut.AsSpan(0, T * H);
            Mlp.Forward(be, shared, x, T, ys, _gate, _up);
            TensorPrimitives.Add(y.Slice(0, T * H), ys, y.Slice(0, T * H));
        }
    }

    private MoeWeights? _w;
    private ComputeBackend? _be;
    private float[] _xArr = [], _out = [], _sharedOut = [];
    private int[] _active = [];
    private Action<int>? _runExpert;
    [ThreadStatic] private static float[]? t_xe, t_gate, t_up;

    private float[] Stage(ReadOnlySpan<float> x, int n)
    {
        Grow(ref _stage, n);
        x.Slice(0, n).CopyTo(_stage);
        return _stage;
    }

    private float[] _stage = [];

    private void RunExpertAt(int a) => RunExpert(_active[a], _be!);

    /// <summary>Gathers expert e's rows, runs its MLP into its grouped rows of _out.</summary>
    private void RunExpert(int e, ComputeBackend be)
    {
        int H = _c.HiddenSize, K = _c.NumExpertsPerTok, I = _c.MoeIntermediateSize, n = _count[e], j0 = _offset[e];
        float[] xe = Scratch(ref t_xe, n * H), gate = Scratch(ref t_gate, n * I), up = Scratch(ref t_up, n * I);
        Gather(_xArr, _slot.AsSpan(j0, n), K, H, xe);
        Mlp.Forward(be, _w!.Experts[e], xe.AsSpan(0, n * H), n, _out.AsSpan(j0 * H, n * H), gate, up);
    }

    /// <summary>
    /// Group step: the assignments i = t·K + k of experts [T·K] sorted by expert, in token order (counting sort):
    /// count [E] rows per expert, offset [E + 1] first grouped row of each, slot [T·K] grouped row j → assignment i,
    /// pos [T·K] assignment i → grouped row j.
    /// </summary>
    public static void Group(ReadOnlySpan<int> experts, int E, Span<int> count, Span<int> offset, Span<int> slot, Span<int> pos)
    {
        count = count.Slice(0, E);
        count.Clear();
        foreach (int e in experts)
            count[e]++;
        offset[0] = 0;
        for (int e = 0; e < E; e++)
            offset[e + 1] = offset[e] + count[e];
        Span<int> fill = E <= 1024 ? stackalloc int[E] : new int[E];
        fill.Clear();
        for (int i = 0; i < experts.Length; i++)
        {
            int e = experts[i], j = offset[e] + fill[e]++;
            slot[j] = i;
            pos[i] = j;
        }
    }

    /// <summary>Gathers the input rows of grouped rows: xe[j] = x[slot[j] / K] for the j of <paramref name="slot"/>; x [T, H],
    /// xe [slot.Length, H].</summary>
    public static void Gather(ReadOnlySpan<float> x, ReadOnlySpan<int> slot, int K, int H, Span<float> xe)
    {
        for (int j = 0; j < slot.Length; j++)
            x.Slice(slot[j] / K * H, H).CopyTo(xe.Slice(j * H, H));
    }

    /// <summary>
    /// Combine step of one token: its experts [K], weights [K] and grouped rows pos [K] → y [H] = Σ_k w_k·out[pos_k]
    /// (overwritten) over the grouped expert outputs out [T·K, H], added in ascending expert id (as DeepSeek's model.py
    /// and transformers, which loop over the experts).
    /// </summary>
    public static void Combine(ReadOnlySpan<int> experts, ReadOnlySpan<float> weights, ReadOnlySpan<int> pos, ReadOnlySpan<float> outputs, Span<float> y)
    {
        int K = experts.Length, H = y.Length;
        Span<int> order = stackalloc int[K];
        SortByExpert(experts, order);
        y.Clear();
        for (int k = 0; k < K; k++)
        {
            int i = order[k];
            TensorPrimitives.MultiplyAdd(outputs.Slice(pos[i] * H, H), weights[i], y, y);
        }
    }

    /// <summary>order[k] = index into experts of the k-th smallest expert id (insertion sort; K is small).</summary>
    private static void SortByExpert(ReadOnlySpan<int> experts, Span<int> order)
    {
        for (int k = 0; k < order.Length; k++)
        {
            int j = k;
            while (j > 0 && experts[order[j - 1]] > experts[k])
            {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = k;
        }
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
