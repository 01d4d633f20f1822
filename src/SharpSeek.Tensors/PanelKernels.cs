// fp32 register-blocked products for prefill: 4 weight rows (fp32, or dequantized once into a panel) against
// 6 (or 3, 2, 1) activation rows at a time, up to 24 Vector512 accumulators, so each loaded vector feeds several FMAs instead of
// one (the plain dot product is load-bound at half the FMA rate).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>fp32 panel micro-kernels.</summary>
public static unsafe class PanelKernels
{
    /// <summary>
    /// y[t·ldy + r] = w_r · x_t for r &lt; 4 (rows at w + r·wStride) and t &lt; tokens (x + t·n), all fp32, length n.
    /// Every (row, token) sum is formed the same way whatever the number of tokens (one vector accumulator over the
    /// columns in steps of 16, its lanes summed, then the remainder columns in order), so a token's products do not
    /// depend on how many tokens share the call: batched decoding gives the logits of decoding alone.
    /// </summary>
    public static void Rows4(float* w, long wStride, float* x, int n, int tokens, float* y, int ldy)
    {
        int t = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            for (; t + 6 <= tokens; t += 6)
                Tile4x6(w, wStride, x + (long)t * n, n, y + (long)t * ldy, ldy);
            for (; t + 3 <= tokens; t += 3)
                Tile4x3(w, wStride, x + (long)t * n, n, y + (long)t * ldy, ldy);
            if (tokens - t == 2)
                Tile4x2(w, wStride, x + (long)t * n, n, y + (long)t * ldy, ldy);
            else if (tokens - t == 1)
                Tile4x1(w, wStride, x + (long)t * n, n, y + (long)t * ldy);
            return;
        }
        if (Vector256.IsHardwareAccelerated && Fma.IsSupported && n >= 8)
        {
            Rows4Avx2(w, wStride, x, n, tokens, y, ldy);
            return;
        }
        for (; t < tokens; t++)
        {
            var xs = new ReadOnlySpan<float>(x + (long)t * n, n);
            for (int r = 0; r < 4; r++)
                y[(long)t * ldy + r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(w + r * wStride, n), xs);
        }
    }

    // The columns [i0, n) past the last whole vector, added in order to every (row, token) sum of a tile.
    private static void AddRemainder(float* w, long ws, float* x, int n, int i0, float* y, int ldy, int tokens)
    {
        for (int i = i0; i < n; i++)
        {
            for (int r = 0; r < 4; r++)
            {
                float wv = w[r * ws + i];
                for (int t = 0; t < tokens; t++)
                    y[(long)t * ldy + r] += wv * x[(long)t * n + i];
            }
        }
    }

    private static void Tile4x2(float* w, long ws, float* x, int n, float* y, int ldy)
    {
        Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default;
        Vector512<float> a20 = default, a21 = default, a30 = default, a31 = default;
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws, x0 = x, x1 = x + n;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            Vector512<float> v0 = Vector512.Load(x0 + i), v1 = Vector512.Load(x1 + i);
            Vector512<float> k = Vector512.Load(w0 + i);
            a00 = Vector512.FusedMultiplyAdd(k, v0, a00); a01 = Vector512.FusedMultiplyAdd(k, v1, a01);
            k = Vector512.Load(w1 + i);
            a10 = Vector512.FusedMultiplyAdd(k, v0, a10); a11 = Vector512.FusedMultiplyAdd(k, v1, a11);
            k = Vector512.Load(w2 + i);
            a20 = Vector512.FusedMultiplyAdd(k, v0, a20); a21 = Vector512.FusedMultiplyAdd(k, v1, a21);
            k = Vector512.Load(w3 + i);
            a30 = Vector512.FusedMultiplyAdd(k, v0, a30); a31 = Vector512.FusedMultiplyAdd(k, v1, a31);
        }
        float* r0 = y, r1 = y + ldy;
        r0[0] = Vector512.Sum(a00); r1[0] = Vector512.Sum(a01);
        r0[1] = Vector512.Sum(a10); r1[1] = Vector512.Sum(a11);
        r0[2] = Vector512.Sum(a20); r1[2] = Vector512.Sum(a21);
        r0[3] = Vector512.Sum(a30); r1[3] = Vector512.Sum(a31);
        AddRemainder(w, ws, x, n, i, y, ldy, 2);
    }

    private static void Tile4x1(float* w, long ws, float* x, int n, float* y)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            Vector512<float> v = Vector512.Load(x + i);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w0 + i), v, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + i), v, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + i), v, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + i), v, a3);
        }
        y[0] = Vector512.Sum(a0); y[1] = Vector512.Sum(a1); y[2] = Vector512.Sum(a2); y[3] = Vector512.Sum(a3);
        AddRemainder(w, ws, x, n, i, y, 0, 1);
    }

    // 4 rows x 6 tokens: 24 accumulators, 10 loads per 24 FMAs (4 x 3: 7 per 12)
    private static void Tile4x6(float* w, long ws, float* x, int n, float* y, int ldy)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default, a34 = default, a35 = default;
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
        float* x0 = x, x1 = x + n, x2 = x + 2 * n, x3 = x + 3 * n, x4 = x + 4 * n, x5 = x + 5 * n;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            Vector512<float> v0 = Vector512.Load(x0 + i), v1 = Vector512.Load(x1 + i), v2 = Vector512.Load(x2 + i);
            Vector512<float> v3 = Vector512.Load(x3 + i), v4 = Vector512.Load(x4 + i), v5 = Vector512.Load(x5 + i);
            Vector512<float> k0 = Vector512.Load(w0 + i);
            a00 = Vector512.FusedMultiplyAdd(k0, v0, a00); a01 = Vector512.FusedMultiplyAdd(k0, v1, a01); a02 = Vector512.FusedMultiplyAdd(k0, v2, a02);
            a03 = Vector512.FusedMultiplyAdd(k0, v3, a03); a04 = Vector512.FusedMultiplyAdd(k0, v4, a04); a05 = Vector512.FusedMultiplyAdd(k0, v5, a05);
            Vector512<float> k1 = Vector512.Load(w1 + i);
            a10 = Vector512.FusedMultiplyAdd(k1, v0, a10); a11 = Vector512.FusedMultiplyAdd(k1, v1, a11); a12 = Vector512.FusedMultiplyAdd(k1, v2, a12);
            a13 = Vector512.FusedMultiplyAdd(k1, v3, a13); a14 = Vector512.FusedMultiplyAdd(k1, v4, a14); a15 = Vector512.FusedMultiplyAdd(k1, v5, a15);
            Vector512<float> k2 = Vector512.Load(w2 + i);
            a20 = Vector512.FusedMultiplyAdd(k2, v0, a20); a21 = Vector512.FusedMultiplyAdd(k2, v1, a21); a22 = Vector512.FusedMultiplyAdd(k2, v2, a22);
            a23 = Vector512.FusedMultiplyAdd(k2, v3, a23); a24 = Vector512.FusedMultiplyAdd(k2, v4, a24); a25 = Vector512.FusedMultiplyAdd(k2, v5, a25);
            Vector512<float> k3 = Vector512.Load(w3 + i);
            a30 = Vector512.FusedMultiplyAdd(k3, v0, a30); a31 = Vector512.FusedMultiplyAdd(k3, v1, a31); a32 = Vector512.FusedMultiplyAdd(k3, v2, a32);
            a33 = Vector512.FusedMultiplyAdd(k3, v3, a33); a34 = Vector512.FusedMultiplyAdd(k3, v4, a34); a35 = Vector512.FusedMultiplyAdd(k3, v5, a35);
        }
        float* r0 = y, r1 = y + 1 * ldy, r2 = y + 2 * ldy, r3 = y + 3 * ldy, r4 = y + 4 * ldy, r5 = y + 5 * ldy;
        r0[0] = Vector512.Sum(a00); r1[0] = Vector512.Sum(a01); r2[0] = Vector512.Sum(a02); r3[0] = Vector512.Sum(a03); r4[0] = Vector512.Sum(a04); r5[0] = Vector512.Sum(a05);
        r0[1] = Vector512.Sum(a10); r1[1] = Vector512.Sum(a11); r2[1] = Vector512.Sum(a12); r3[1] = Vector512.Sum(a13); r4[1] = Vector512.Sum(a14); r5[1] = Vector512.Sum(a15);
        r0[2] = Vector512.Sum(a20); r1[2] = Vector512.Sum(a21); r2[2] = Vector512.Sum(a22); r3[2] = Vector512.Sum(a23); r4[2] = Vector512.Sum(a24); r5[2] = Vector512.Sum(a25);
        r0[3] = Vector512.Sum(a30); r1[3] = Vector512.Sum(a31); r2[3] = Vector512.Sum(a32); r3[3] = Vector512.Sum(a33); r4[3] = Vector512.Sum(a34); r5[3] = Vector512.Sum(a35);
        AddRemainder(w, ws, x, n, i, y, ldy, 6);
    }

    private static void Tile4x3(float* w, long ws, float* x, int n, float* y, int ldy)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws, x0 = x, x1 = x + n, x2 = x + 2 * n;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            Vector512<float> v0 = Vector512.Load(x0 + i), v1 = Vector512.Load(x1 + i), v2 = Vector512.Load(x2 + i);
            Vector512<float> k = Vector512.Load(w0 + i);
            a00 = Vector512.FusedMultiplyAdd(k, v0, a00); a01 = Vector512.FusedMultiplyAdd(k, v1, a01); a02 = Vector512.FusedMultiplyAdd(k, v2, a02);
            k = Vector512.Load(w1 + i);
            a10 = Vector512.FusedMultiplyAdd(k, v0, a10); a11 = Vector512.FusedMultiplyAdd(k, v1, a11); a12 = Vector512.FusedMultiplyAdd(k, v2, a12);
            k = Vector512.Load(w2 + i);
            a20 = Vector512.FusedMultiplyAdd(k, v0, a20); a21 = Vector512.FusedMultiplyAdd(k, v1, a21); a22 = Vector512.FusedMultiplyAdd(k, v2, a22);
            k = Vector512.Load(w3 + i);
            a30 = Vector512.FusedMultiplyAdd(k, v0, a30); a31 = Vector512.FusedMultiplyAdd(k, v1, a31); a32 = Vector512.FusedMultiplyAdd(k, v2, a32);
        }
        float* r0 = y, r1 = y + ldy, r2 = y + 2 * ldy;
        r0[0] = Vector512.Sum(a00); r1[0] = Vector512.Sum(a01); r2[0] = Vector512.Sum(a02);
        r0[1] = Vector512.Sum(a10); r1[1] = Vector512.Sum(a11); r2[1] = Vector512.Sum(a12);
        r0[2] = Vector512.Sum(a20); r1[2] = Vector512.Sum(a21); r2[2] = Vector512.Sum(a22);
        r0[3] = Vector512.Sum(a30); r1[3] = Vector512.Sum(a31); r2[3] = Vector512.Sum(a32);
        AddRemainder(w, ws, x, n, i, y, ldy, 3);
    }

    /// <summary>
    /// <see cref="Rows4"/> on AVX2 + FMA (n &gt;= 8): 4 x 3 tiles (12 accumulators of the 16 ymm registers), then 4 x 2 or
    /// 4 x 1; one 8-lane accumulator per (row, token) over the columns in steps of 8, its lanes summed, then the remainder
    /// columns in order, whatever the number of tokens.
    /// </summary>
    internal static void Rows4Avx2(float* w, long wStride, float* x, int n, int tokens, float* y, int ldy)
    {
        int t = 0;
        for (; t + 3 <= tokens; t += 3)
            Tile4x3Avx2(w, wStride, x + (long)t * n, n, y + (long)t * ldy, ldy);
        if (tokens - t == 2)
            Tile4x2Avx2(w, wStride, x + (long)t * n, n, y + (long)t * ldy, ldy);
        else if (tokens - t == 1)
            Tile4x1Avx2(w, wStride, x + (long)t * n, n, y + (long)t * ldy);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x3Avx2(float* w, long ws, float* x, int n, float* y, int ldy)
    {
        Vector256<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws, x0 = x, x1 = x + n, x2 = x + 2 * n;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            Vector256<float> v0 = Vector256.Load(x0 + i), v1 = Vector256.Load(x1 + i), v2 = Vector256.Load(x2 + i);
            Vector256<float> k = Vector256.Load(w0 + i);
            a00 = Vector256.FusedMultiplyAdd(k, v0, a00); a01 = Vector256.FusedMultiplyAdd(k, v1, a01); a02 = Vector256.FusedMultiplyAdd(k, v2, a02);
            k = Vector256.Load(w1 + i);
            a10 = Vector256.FusedMultiplyAdd(k, v0, a10); a11 = Vector256.FusedMultiplyAdd(k, v1, a11); a12 = Vector256.FusedMultiplyAdd(k, v2, a12);
            k = Vector256.Load(w2 + i);
            a20 = Vector256.FusedMultiplyAdd(k, v0, a20); a21 = Vector256.FusedMultiplyAdd(k, v1, a21); a22 = Vector256.FusedMultiplyAdd(k, v2, a22);
            k = Vector256.Load(w3 + i);
            a30 = Vector256.FusedMultiplyAdd(k, v0, a30); a31 = Vector256.FusedMultiplyAdd(k, v1, a31); a32 = Vector256.FusedMultiplyAdd(k, v2, a32);
        }
        float* r0 = y, r1 = y + ldy, r2 = y + 2 * ldy;
        r0[0] = Vector256.Sum(a00); r1[0] = Vector256.Sum(a01); r2[0] = Vector256.Sum(a02);
        r0[1] = Vector256.Sum(a10); r1[1] = Vector256.Sum(a11); r2[1] = Vector256.Sum(a12);
        r0[2] = Vector256.Sum(a20); r1[2] = Vector256.Sum(a21); r2[2] = Vector256.Sum(a22);
        r0[3] = Vector256.Sum(a30); r1[3] = Vector256.Sum(a31); r2[3] = Vector256.Sum(a32);
        AddRemainder(w, ws, x, n, i, y, ldy, 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x2Avx2(float* w, long ws, float* x, int n, float* y, int ldy)
    {
        Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default;
        Vector256<float> a20 = default, a21 = default, a30 = default, a31 = default;
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws, x0 = x, x1 = x + n;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            Vector256<float> v0 = Vector256.Load(x0 + i), v1 = Vector256.Load(x1 + i);
            Vector256<float> k = Vector256.Load(w0 + i);
            a00 = Vector256.FusedMultiplyAdd(k, v0, a00); a01 = Vector256.FusedMultiplyAdd(k, v1, a01);
            k = Vector256.Load(w1 + i);
            a10 = Vector256.FusedMultiplyAdd(k, v0, a10); a11 = Vector256.FusedMultiplyAdd(k, v1, a11);
            k = Vector256.Load(w2 + i);
            a20 = Vector256.FusedMultiplyAdd(k, v0, a20); a21 = Vector256.FusedMultiplyAdd(k, v1, a21);
            k = Vector256.Load(w3 + i);
            a30 = Vector256.FusedMultiplyAdd(k, v0, a30); a31 = Vector256.FusedMultiplyAdd(k, v1, a31);
        }
        float* r0 = y, r1 = y + ldy;
        r0[0] = Vector256.Sum(a00); r1[0] = Vector256.Sum(a01);
        r0[1] = Vector256.Sum(a10); r1[1] = Vector256.Sum(a11);
        r0[2] = Vector256.Sum(a20); r1[2] = Vector256.Sum(a21);
        r0[3] = Vector256.Sum(a30); r1[3] = Vector256.Sum(a31);
        AddRemainder(w, ws, x, n, i, y, ldy, 2);
    }

    private static void Tile4x1Avx2(float* w, long ws, float* x, int n, float* y)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            Vector256<float> v = Vector256.Load(x + i);
            a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w0 + i), v, a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + i), v, a1);
            a2 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + i), v, a2);
            a3 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + i), v, a3);
        }
        y[0] = Vector256.Sum(a0); y[1] = Vector256.Sum(a1); y[2] = Vector256.Sum(a2); y[3] = Vector256.Sum(a3);
        AddRemainder(w, ws, x, n, i, y, 0, 1);
    }
}
