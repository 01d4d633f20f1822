// DeepSeekMoE block over a batch of token rows, as explicit steps (docs/design.md seam 6):
// route (router logits in fp32 → experts and weights per row) → group rows by expert → run each expert once
// over its rows → combine (weighted sum into the output), then add the shared experts.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>The MoE feed-forward block.</summary>
public sealed class Moe
{
    private readonly ModelConfig _c;
    private float[] _logits = [], _scratch = [], _weights = [], _xe = [], _ye = [], _gate = [], _up = [];
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

        // run experts and combine
        y.Slice(0, T * H).Clear();
        int maxRows = 0;
        for (int e = 0; e < E; e++)
            maxRows = Math.Max(maxRows, count[e]);
        int I = _c.MoeIntermediateSize;
        Grow(ref _xe, Math.Max(maxRows, T) * H);
        Grow(ref _ye, Math.Max(maxRows, T) * H);
        Grow(ref _gate, Math.Max(maxRows * I, T * I * Math.Max(1, _c.NSharedExperts)));
        Grow(ref _up, _gate.Length);
        for (int e = 0; e < E; e++)
        {
            int n = count[e];
            if (n == 0)
                continue;
            Span<float> xe = _xe.AsSpan(0, n * H), ye = _ye.AsSpan(0, n * H);
            for (int j = 0; j < n; j++)
                x.Slice(_rows[_offset[e] + j] / K * H, H).CopyTo(xe.Slice(j * H, H));
            Mlp.Forward(be, w.Experts[e], xe, n, ye, _gate, _up);
            for (int j = 0; j < n; j++)
            {
                int i = _rows[_offset[e] + j], t = i / K;
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(ye.Slice(j * H, H), _weights[i], y.Slice(t * H, H), y.Slice(t * H, H));
            }
        }

        // shared experts, added after the routed sum (as transformers does)
        if (w.Shared is { } shared)
        {
            Span<float> ys = _ye.AsSpan(0, T * H);
            Mlp.Forward(be, shared, x, T, ys, _gate, _up);
            System.Numerics.Tensors.TensorPrimitives.Add(y.Slice(0, T * H), ys, y.Slice(0, T * H));
        }
    }

    private static void Grow<T>(ref T[] a, int n)
    {
        if (a.Length < n)
            a = new T[n];
    }
}
