// SwiGLU MLP (dense layers, routed and shared experts): y = W2( silu(W1 x) ⊙ W3 x ), over T rows at once.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>The SwiGLU feed-forward block.</summary>
public static class Mlp
{
    /// <summary>x [T, H] → y [T, H]; gate/up are scratch [T, I] (I = W1.Rows).</summary>
    public static void Forward(ComputeBackend be, MlpWeights w, ReadOnlySpan<float> x, int T, Span<float> y,
                               Span<float> gate, Span<float> up)
    {
        int I = w.W1.Rows;
        Span<float> g = gate.Slice(0, T * I), u = up.Slice(0, T * I);
        be.MatMul(w.W1, x, T, g);
        be.MatMul(w.W3, x, T, u);
        Ops.SiluMul(g, u);
        be.MatMul(w.W2, g, T, y);
    }
}
