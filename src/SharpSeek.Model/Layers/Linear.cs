// A bias-free linear layer on fp32 master weights (llm.c matmul_forward / matmul_backward):
// y = x Wᵀ; backward dx += dy W, dW += dyᵀ x. A null backend runs on the calling thread.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>Linear projection y = x Wᵀ and its gradients.</summary>
public static class Linear
{
    /// <summary>The fp32 master matrix behind a weight view; training needs fp32 masters.</summary>
    public static F32Matrix F32(WeightMatrix w) =>
        w as F32Matrix ?? throw new ArgumentException($"training needs fp32 master weights, got a {w.Format} matrix [{w.Rows}, {w.Cols}]");

    /// <summary>x [N, In], w [Out, In] → y [N, Out] (overwritten).</summary>
    public static void Forward(ComputeBackend? be, ReadOnlySpan<float> x, F32Matrix w, Span<float> y, int N) =>
        Gemm.Run(be, GemmKind.NT, N, w.Rows, w.Cols, x, w.Data, y, accumulate: false);

    /// <summary>dy [N, Out], x [N, In] → dx [N, In] (+=, or = when not <paramref name="accumulateDx"/>; skipped when empty), dw [Out, In] (+=).</summary>
    public static void Backward(ComputeBackend? be, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, F32Matrix w,
                                Span<float> dx, Span<float> dw, int N, bool accumulateDx = true)
    {
        if (!dx.IsEmpty)
            Gemm.Run(be, GemmKind.NN, N, w.Cols, w.Rows, dy, w.Data, dx, accumulateDx);
        Gemm.Run(be, GemmKind.TN, w.Rows, w.Cols, N, dy, x, dw, accumulate: true);
    }
}
