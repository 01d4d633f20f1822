// Softmax cross-entropy over the vocabulary, fused with its backward (llm.c fused_classifier): for one row of
// logits l [V] and target y, loss = logsumexp(l) − l[y] (max subtracted, fp32 like torch's log_softmax), and the
// logits are overwritten by their gradient scale·(softmax(l) − onehot(y)). Target −1 ignores the row (zero
// loss and gradient).
using System.Numerics.Tensors;
using SharpSeek.Tensors;

namespace SharpSeek.Training;

/// <summary>Fused softmax cross-entropy and its gradient.</summary>
public static class CrossEntropy
{
    /// <summary>Loss of one row; replaces <paramref name="logits"/> [V] by scale·dloss/dlogits. Returns 0 for target −1.</summary>
    public static double ForwardBackward(Span<float> logits, int target, float scale)
    {
        if (target < 0)
        {
            logits.Clear();
            return 0;
        }
        if (target >= logits.Length)
            throw new ArgumentOutOfRangeException(nameof(target), $"target {target} outside the vocabulary of {logits.Length}");
        unsafe
        {
            fixed (float* l = logits)
                return RowOps.CrossEntropy(l, logits.Length, target, scale);
        }
    }

    /// <summary>Loss of one row without gradient (evaluation).</summary>
    public static double Loss(ReadOnlySpan<float> logits, int target)
    {
        if (target < 0)
            return 0;
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (float l in logits)
            sum += MathF.Exp(l - max);
        return max + Math.Log(sum) - logits[target];
    }
}
