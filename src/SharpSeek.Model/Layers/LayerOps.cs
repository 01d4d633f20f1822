// The two ways a layer's forward math runs its products, norms and activations (docs/design.md seam 5): the layers
// write each forward once, generic over ILayerOps, and the inference and training paths pass their own ops:
//   inference: weights of any format (be.MatMul), norms in place without statistics, Ops.SiluMul in place;
//   training:  fp32 master weights on the GEMM (Linear), each norm row's rstd kept for Backward, SwiGlu into h.
// Structs, so the JIT specializes each layer per path (no interface calls, no allocation).
using System.Diagnostics;
using System.Numerics.Tensors;
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>The kernels a layer's shared forward math calls.</summary>
public interface ILayerOps
{
    /// <summary>x [T, In], w [Out, In] → y [T, Out] (overwritten).</summary>
    void MatMul(WeightMatrix w, ReadOnlySpan<float> x, int T, Span<float> y);

    /// <summary>x [T, C] → y [T, C] = RMSNorm(x)·weight (y may alias x); rstd [T] where the ops keep statistics.</summary>
    void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> rstd, Span<float> y, int T);

    /// <summary>As <see cref="RmsNorm(ReadOnlySpan{float}, ReadOnlySpan{float}, float, Span{float}, Span{float}, int)"/> with the
    /// rows of x and y <paramref name="ldx"/> and <paramref name="ldy"/> floats apart.</summary>
    void RmsNorm(ReadOnlySpan<float> x, int ldx, ReadOnlySpan<float> weight, float eps, Span<float> rstd, Span<float> y, int ldy, int T);

    /// <summary>sum = a + b (sum may alias a), then y = RMSNorm(sum)·weight, rows of C = weight.Length.</summary>
    void AddRmsNorm(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> sum, ReadOnlySpan<float> weight, float eps,
                    Span<float> rstd, Span<float> y, int T);

    /// <summary>dst = a + b (dst may alias a).</summary>
    void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst);

    /// <summary>g, u [n] → h [n] = silu(g) ⊙ u (inference: in place, h is g).</summary>
    void SiluMul(Span<float> g, ReadOnlySpan<float> u, Span<float> h);
}

/// <summary>Inference: any weight format on the backend, norms and SwiGLU in place.</summary>
public readonly struct InferenceOps(ComputeBackend be) : ILayerOps
{
    public void MatMul(WeightMatrix w, ReadOnlySpan<float> x, int T, Span<float> y) => be.MatMul(w, x, T, y);

    public void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> rstd, Span<float> y, int T) =>
        Ops.RmsNormRows(x, weight, eps, y, T);

    public void RmsNorm(ReadOnlySpan<float> x, int ldx, ReadOnlySpan<float> weight, float eps, Span<float> rstd, Span<float> y, int ldy, int T)
    {
        int C = weight.Length;
        for (int t = 0; t < T; t++)
            Ops.RmsNorm(x.Slice(t * ldx, C), weight, eps, y.Slice(t * ldy, C));
    }

    public void AddRmsNorm(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> sum, ReadOnlySpan<float> weight, float eps,
                           Span<float> rstd, Span<float> y, int T)
    {
        TensorPrimitives.Add(a, b, sum);
        Ops.RmsNormRows(sum, weight, eps, y, T);
    }

    public void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst) => TensorPrimitives.Add(a, b, dst);

    public void SiluMul(Span<float> g, ReadOnlySpan<float> u, Span<float> h)
    {
        Debug.Assert(h.Overlaps(g, out int offset) && offset == 0); // the inference MLP keeps silu(g)·u in g
        Ops.SiluMul(g, u);
    }
}

/// <summary>Training: fp32 master weights (<see cref="Linear"/>), norms keep rstd, SwiGLU keeps g and u. A null backend
/// runs on the calling thread.</summary>
public readonly struct TrainingOps(ComputeBackend? be) : ILayerOps
{
    public void MatMul(WeightMatrix w, ReadOnlySpan<float> x, int T, Span<float> y) => Linear.Forward(be, x, Linear.F32(w), y, T);

    public void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> rstd, Span<float> y, int T) =>
        Layers.RmsNorm.Forward(be, x, weight, eps, rstd, y, T);

    public void RmsNorm(ReadOnlySpan<float> x, int ldx, ReadOnlySpan<float> weight, float eps, Span<float> rstd, Span<float> y, int ldy, int T) =>
        Layers.RmsNorm.Forward(be, x, ldx, weight, eps, rstd, y, ldy, T);

    public void AddRmsNorm(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> sum, ReadOnlySpan<float> weight, float eps,
                           Span<float> rstd, Span<float> y, int T) =>
        Layers.RmsNorm.AddForward(be, a, b, sum, weight, eps, rstd, y, T);

    public void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst) => ParallelOps.Add(be, a, b, dst);

    public void SiluMul(Span<float> g, ReadOnlySpan<float> u, Span<float> h) => SwiGlu.Forward(be, g, u, h);
}
