// Elementwise and row kernels of the model, fp32, each with its scalar definition in the comment:
// RMSNorm (DeepSeek-V3 model.py RMSNorm, statistics in fp32), interleaved-pair RoPE (docs/deepseek-architecture.md §3.4), SwiGLU, softmax.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpSeek.Tensors;

/// <summary>Row kernels over fp32 spans.</summary>
public static class Ops
{
    /// <summary>dst[i] = q[i]·scale for an int8 run with one scale (a Q8_0 block, a row part of the int8 latent
    /// cache), 32 values per step.</summary>
    public static unsafe void DequantizeInt8(ReadOnlySpan<sbyte> q, float scale, Span<float> dst)
    {
        int n = q.Length, i = 0;
        if (dst.Length < n)
            throw new ArgumentException($"DequantizeInt8: destination has {dst.Length} values, the input {n}", nameof(dst));
        fixed (sbyte* qp = q)
        fixed (float* dp = dst)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                Vector256<float> s = Vector256.Create(scale);
                for (; i + 32 <= n; i += 32)
                {
                    (Vector256<short> h0, Vector256<short> h1) = Vector256.Widen(Vector256.Load(qp + i));
                    (Vector256<int> i0, Vector256<int> i1) = Vector256.Widen(h0);
                    (Vector256<int> i2, Vector256<int> i3) = Vector256.Widen(h1);
                    (Vector256.ConvertToSingle(i0) * s).Store(dp + i);
                    (Vector256.ConvertToSingle(i1) * s).Store(dp + i + 8);
                    (Vector256.ConvertToSingle(i2) * s).Store(dp + i + 16);
                    (Vector256.ConvertToSingle(i3) * s).Store(dp + i + 24);
                }
            }
            for (; i < n; i++)
                dp[i] = qp[i] * scale;
        }
    }

    /// <summary>y = w ⊙ x / sqrt(mean(x²) + eps) for one row; returns rstd = 1/sqrt(mean(x²)+eps).</summary>
    public static float RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        int n = weight.Length;
        x = x.Slice(0, n);
        y = y.Slice(0, n);
        float rstd = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(x) / n + eps);
        TensorPrimitives.Multiply(x, rstd, y);
        TensorPrimitives.Multiply(y, weight, y);
        return rstd;
    }

    /// <summary>RMSNorm over rows of x [rows, weight.Length] into y.</summary>
    public static void RmsNormRows(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y, int rows)
    {
        int n = weight.Length;
        for (int r = 0; r < rows; r++)
            RmsNorm(x.Slice(r * n, n), weight, eps, y.Slice(r * n, n));
    }

    /// <summary>
    /// Rotates interleaved pairs in place: (x[2i], x[2i+1]) ← (x0·cos_i − x1·sin_i, x0·sin_i + x1·cos_i), i &lt; cos.Length.
    /// </summary>
    public static void RopeInterleaved(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = cos.Length;
        x = x.Slice(0, 2 * half);
        for (int i = 0; i < half; i++)
        {
            float x0 = x[2 * i], x1 = x[2 * i + 1], c = cos[i], s = sin[i];
            x[2 * i] = x0 * c - x1 * s;
            x[2 * i + 1] = x0 * s + x1 * c;
        }
    }

    /// <summary>silu(z) = z·sigmoid(z) = z / (1 + e^-z).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Silu(float z) => z / (1f + MathF.Exp(-z));

    /// <summary>gate[i] = silu(gate[i]) · up[i] (SwiGLU, in place on gate).</summary>
    public static void SiluMul(Span<float> gate, ReadOnlySpan<float> up)
    {
        up = up.Slice(0, gate.Length);
        // silu(g) = g · sigmoid(g); TensorPrimitives.Sigmoid is vectorized. In pieces of 1024 through a stack buffer:
        // a batch's [T, I] used to allocate a temporary of its size on every call (zeroed and faulted in, every layer)
        Span<float> tmp = stackalloc float[1024];
        for (int i = 0; i < gate.Length; i += tmp.Length)
        {
            int n = Math.Min(tmp.Length, gate.Length - i);
            Span<float> g = gate.Slice(i, n), s = tmp.Slice(0, n);
            TensorPrimitives.Sigmoid(g, s);
            TensorPrimitives.Multiply(g, s, g);
            TensorPrimitives.Multiply(g, up.Slice(i, n), g);
        }
    }

    /// <summary>In-place softmax with max subtraction, fp32.</summary>
    public static void Softmax(Span<float> x)
    {
        if (x.IsEmpty)
            return;
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.Exp(x, x);
        float sum = TensorPrimitives.Sum(x);
        TensorPrimitives.Multiply(x, 1f / sum, x);
    }
}
