// SwiGLU activation of DeepSeek's MLPs: h = silu(g) ⊙ u with silu(g) = g·σ(g). Forward computes exactly what
// Ops.SiluMul does ((g·σ(g))·u), keeping g and u for Backward:
// dg = dh·u·σ(g)·(1 + g·(1 − σ(g))), du = dh·g·σ(g).
using System.Numerics.Tensors;

namespace SharpSeek.Training.Layers;

/// <summary>SwiGLU gating and its backward pass.</summary>
public static class SwiGlu
{
    /// <summary>g [n], u [n] → h [n].</summary>
    public static void Forward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> h)
    {
        TensorPrimitives.Sigmoid(g, h);
        TensorPrimitives.Multiply(g, h, h);
        TensorPrimitives.Multiply(h, u, h);
    }

    /// <summary>dh [n], g [n], u [n] → dg [n], du [n] (overwritten).</summary>
    public static void Backward(ReadOnlySpan<float> dh, ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> dg, Span<float> du)
    {
        for (int i = 0; i < dh.Length; i++)
        {
            float gi = g[i], sig = 1f / (1f + MathF.Exp(-gi)), d = dh[i];
            du[i] = d * gi * sig;
            dg[i] = d * u[i] * sig * (1f + gi * (1f - sig));
        }
    }
}
