// SwiGLU MLP of dense layers and experts (spec §4): y = W2( silu(W1 x) ⊙ W3 x ), over N rows.
using SharpSeek.Model;
using SharpSeek.Tensors;

namespace SharpSeek.Training.Layers;

/// <summary>Forward and backward of a SwiGLU MLP. A null backend runs on the calling thread.</summary>
public static class Mlp
{
    /// <summary>x [N, H] → g, u, h [N, I] (saved), y [N, H].</summary>
    public static void Forward(ComputeBackend? be, MlpWeights w, ReadOnlySpan<float> x, int N,
                               Span<float> g, Span<float> u, Span<float> h, Span<float> y)
    {
        int I = w.W1.Rows;
        Linear.Forward(be, x, Params.F32(w.W1), g, N);
        Linear.Forward(be, x, Params.F32(w.W3), u, N);
        SwiGlu.Forward(be, g.Slice(0, N * I), u.Slice(0, N * I), h.Slice(0, N * I));
        Linear.Forward(be, h, Params.F32(w.W2), y, N);
    }

    /// <summary>
    /// dy [N, H] → dx [N, H] (+=, or = when not <paramref name="accumulateDx"/>), weight gradients (+=). dh, dg, du are scratch [N, I].
    /// </summary>
    public static void Backward(ComputeBackend? be, MlpWeights w, MlpWeights dw, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, int N,
                                ReadOnlySpan<float> g, ReadOnlySpan<float> u, ReadOnlySpan<float> h,
                                Span<float> dx, Span<float> dh, Span<float> dg, Span<float> du, bool accumulateDx = true)
    {
        int I = w.W1.Rows;
        F32Matrix w2 = Params.F32(w.W2);
        dh = dh.Slice(0, N * I);
        Linear.Backward(be, dy, h, w2, dh, Params.F32(dw.W2).Data, N, accumulateDx: false);
        SwiGlu.Backward(be, dh, g.Slice(0, N * I), u.Slice(0, N * I), dg.Slice(0, N * I), du.Slice(0, N * I));
        Linear.Backward(be, dg, x, Params.F32(w.W1), dx, Params.F32(dw.W1).Data, N, accumulateDx);
        Linear.Backward(be, du, x, Params.F32(w.W3), dx, Params.F32(dw.W3).Data, N);
    }
}
