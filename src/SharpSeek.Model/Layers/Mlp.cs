// SwiGLU MLP (dense layers, routed and shared experts, docs/deepseek-architecture.md §4): y = W2( silu(W1 x) ⊙ W3 x ), over T rows at once.
// One forward for inference and training (ILayerOps), the backward below it.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>The SwiGLU feed-forward block: forward and backward.</summary>
public static class Mlp
{
    /// <summary>x [T, H] → g, u, h [T, I] (I = W1.Rows; h may be g for in-place ops), y [T, H].</summary>
    public static void Forward<TOps>(TOps ops, MlpWeights w, ReadOnlySpan<float> x, int T,
                                     Span<float> g, Span<float> u, Span<float> h, Span<float> y) where TOps : ILayerOps
    {
        int I = w.W1.Rows;
        g = g.Slice(0, T * I);
        u = u.Slice(0, T * I);
        h = h.Slice(0, T * I);
        ops.MatMul(w.W1, x, T, g);
        ops.MatMul(w.W3, x, T, u);
        ops.SiluMul(g, u, h);
        ops.MatMul(w.W2, h, T, y);
    }

    /// <summary>Inference: x [T, H] → y [T, H]; gate/up are scratch [T, I] (I = W1.Rows).</summary>
    public static void Forward(ComputeBackend be, MlpWeights w, ReadOnlySpan<float> x, int T, Span<float> y,
                               Span<float> gate, Span<float> up) =>
        Forward(new InferenceOps(be), w, x, T, gate, up, gate, y);

    /// <summary>Training: x [N, H] → g, u, h [N, I] (saved), y [N, H]. A null backend runs on the calling thread.</summary>
    public static void Forward(ComputeBackend? be, MlpWeights w, ReadOnlySpan<float> x, int N,
                               Span<float> g, Span<float> u, Span<float> h, Span<float> y) =>
        Forward(new TrainingOps(be), w, x, N, g, u, h, y);

    /// <summary>
    /// dy [N, H] → dx [N, H] (+=, or = when not <paramref name="accumulateDx"/>), weight gradients (+=). dh, dg, du are scratch [N, I].
    /// </summary>
    public static void Backward(ComputeBackend? be, MlpWeights w, MlpWeights dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int N,
                                ReadOnlySpan<float> g, ReadOnlySpan<float> u, ReadOnlySpan<float> h,
                                Span<float> dx, Span<float> dh, Span<float> dg, Span<float> du, bool accumulateDx = true)
    {
        int I = w.W1.Rows;
        F32Matrix w2 = Linear.F32(w.W2);
        dh = dh.Slice(0, N * I);
        Linear.Backward(be, dy, h, w2, dh, Linear.F32(dw.W2).Data, N, accumulateDx: false);
        SwiGlu.Backward(be, dh, g.Slice(0, N * I), u.Slice(0, N * I), dg.Slice(0, N * I), du.Slice(0, N * I));
        Linear.Backward(be, dg, x, Linear.F32(w.W1), dx, Linear.F32(dw.W1).Data, N, accumulateDx);
        Linear.Backward(be, du, x, Linear.F32(w.W3), dx, Linear.F32(dw.W3).Data, N);
    }
}
