// The seam between the model and the hardware (docs/design.md, seam 4): the model calls its heavy kernels through
// this class; the CPU implementation is the reference, and a threaded or device backend overrides it.
namespace SharpSeek.Tensors;

/// <summary>Executes the model's kernels. The base class runs them on the calling thread.</summary>
public class ComputeBackend
{
    /// <summary>The single-threaded CPU backend.</summary>
    public static ComputeBackend Cpu { get; } = new();

    /// <summary>Y[t, i] = W[rowStart + i, :] · X[t, :], Y with leading dimension <paramref name="ldy"/>.</summary>
    public virtual void MatMul(WeightMatrix w, ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        if (tokens == 1)
            w.MatVec(x, y, rowStart, rowCount);
        else
            w.MatMul(x, tokens, y, ldy, rowStart, rowCount);
    }

    /// <summary>Y [tokens, W.Rows] = X [tokens, W.Cols] Wᵀ.</summary>
    public void MatMul(WeightMatrix w, ReadOnlySpan<float> x, int tokens, Span<float> y) =>
        MatMul(w, x, tokens, y, w.Rows, 0, w.Rows);

    /// <summary>Runs <paramref name="body"/>(i) for i in [0, count); the base runs them in order.</summary>
    public virtual void For(int count, Action<int> body)
    {
        for (int i = 0; i < count; i++)
            body(i);
    }

    /// <summary>Number of workers <see cref="For"/> may use at once.</summary>
    public virtual int Workers => 1;
}
