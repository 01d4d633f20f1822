// RMSNorm as in DeepSeek-V3 model.py: y = x · rstd · weight, rstd = 1 / sqrt(mean(x²) + eps), statistics in fp32.
// Forward is Ops.RmsNorm row by row (so training and inference normalize identically); Backward below it.
using SharpSeek.Tensors;

namespace SharpSeek.Training.Layers;

/// <summary>Row-wise RMSNorm with its backward pass.</summary>
public static class RmsNorm
{
    /// <summary>x [T, C], weight [C] → rstd [T] (saved for Backward), y [T, C]. y may alias x.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> rstd, Span<float> y, int T)
    {
        int C = weight.Length;
        for (int t = 0; t < T; t++)
            rstd[t] = Ops.RmsNorm(x.Slice(t * C, C), weight, eps, y.Slice(t * C, C));
    }

    /// <summary>dy [T, C], x [T, C], weight [C], rstd [T] → dx [T, C] (+=), dweight [C] (+=).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
                                ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dweight, int T)
    {
        int C = weight.Length;
        for (int t = 0; t < T; t++)
        {
            ReadOnlySpan<float> xt = x.Slice(t * C, C), dyt = dy.Slice(t * C, C);
            Span<float> dxt = dx.Slice(t * C, C);
            float s = rstd[t], dot = 0f;
            for (int c = 0; c < C; c++)
            {
                float g = dyt[c] * xt[c];
                dweight[c] += g * s;
                dot += weight[c] * g;
            }
            float k = s * s * s * dot / C; // d(rstd)/dx term, shared by all c
            for (int c = 0; c < C; c++)
                dxt[c] += s * weight[c] * dyt[c] - k * xt[c];
        }
    }
}
