// fp32 register-blocked products for decode and small batches: 4 weight rows (fp32, or dequantized once into a panel)
// against 1-6 activation rows at a time, up to 24 Vector512 accumulators, so each loaded vector feeds several FMAs
// instead of one (the plain dot product is load-bound at half the FMA rate); the accumulators' lane sums are reduced
// together (HorizontalSums), each in the order Vector512.Sum (Vector256.Sum on AVX2) gives it alone.
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
    /// columns in steps of 16, its lanes summed in Vector512.Sum's order, then the remainder columns in order), so a
    /// token's products do not depend on how many tokens share the call: batched decoding gives the logits of decoding alone.
    /// <paramref name="streamed"/>: the rows come from memory (a weight matrix, not a panel in cache), so the first tile
    /// over them requests the rows two groups of four ahead into L2 as it reads its own. The tiles after the first read
    /// these rows from L1 and request nothing; without the requests memory sat idle while they computed (4096 x 256 fp32
    /// from memory, one thread, AMD Zen 5: 16 tokens 7.1-7.2 -> 11.5-13.2 GB/s, 6 tokens 15-18 -> 22-27; one token
    /// unchanged within noise).
    /// </summary>
    public static void Rows4(float* w, long wStride, float* x, int n, int tokens, float* y, int ldy, bool streamed = false)
    {
        int t = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            // tiles of 6 tokens, the last 7 or 8 as 4 + the rest: a lone token (4 loads per 4 FMAs) only when 1 is asked
            while (t < tokens)
            {
                float* xt = x + (long)t * n, yt = y + (long)t * ldy;
                int left = tokens - t;
                int step = left is 7 or 8 ? 4 : Math.Min(left, 6);
                bool prefetch = streamed && t == 0;
                switch (step)
                {
                    case 6: Tile<Tokens6>(w, wStride, xt, n, yt, ldy, prefetch); break;
                    case 5: Tile<Tokens5>(w, wStride, xt, n, yt, ldy, prefetch); break;
                    case 4: Tile<Tokens4>(w, wStride, xt, n, yt, ldy, prefetch); break;
                    case 3: Tile<Tokens3>(w, wStride, xt, n, yt, ldy, prefetch); break;
                    case 2: Tile<Tokens2>(w, wStride, xt, n, yt, ldy, prefetch); break;
                    default: Tile<Tokens1>(w, wStride, xt, n, yt, ldy, prefetch); break;
                }
                t += step;
            }
            return;
        }
        if (Vector256.IsHardwareAccelerated && Fma.IsSupported && n >= 8)
        {
            Rows4Avx2(w, wStride, x, n, tokens, y, ldy, streamed);
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

    // 4 rows x N tokens (N <= 6: up to 24 accumulators, 4 + N loads per 4·N FMAs); the lane sums reduced together by
    // HorizontalSums (each in Vector512.Sum's order: ~2 shuffles a sum instead of ~5), four rows of a token stored at once
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TN>(float* w, long ws, float* x, int n, float* y, int ldy, bool prefetch) where TN : struct, ITokenCount
    {
        long ahead = 8 * ws;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default, a34 = default, a35 = default;
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws;
        float* x0 = x, x1 = x + n, x2 = x + 2 * n, x3 = x + 3 * n, x4 = x + 4 * n, x5 = x + 5 * n;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            if (prefetch)
            {
                // the same columns of the rows two groups ahead, into L2 (see Rows4)
                Sse.Prefetch1(w0 + i + ahead);
                Sse.Prefetch1(w1 + i + ahead);
                Sse.Prefetch1(w2 + i + ahead);
                Sse.Prefetch1(w3 + i + ahead);
            }
            Vector512<float> k0 = Vector512.Load(w0 + i), k1 = Vector512.Load(w1 + i), k2 = Vector512.Load(w2 + i), k3 = Vector512.Load(w3 + i);
            Fma4(k0, k1, k2, k3, Vector512.Load(x0 + i), ref a00, ref a10, ref a20, ref a30);
            if (TN.N > 1)
                Fma4(k0, k1, k2, k3, Vector512.Load(x1 + i), ref a01, ref a11, ref a21, ref a31);
            if (TN.N > 2)
                Fma4(k0, k1, k2, k3, Vector512.Load(x2 + i), ref a02, ref a12, ref a22, ref a32);
            if (TN.N > 3)
                Fma4(k0, k1, k2, k3, Vector512.Load(x3 + i), ref a03, ref a13, ref a23, ref a33);
            if (TN.N > 4)
                Fma4(k0, k1, k2, k3, Vector512.Load(x4 + i), ref a04, ref a14, ref a24, ref a34);
            if (TN.N > 5)
                Fma4(k0, k1, k2, k3, Vector512.Load(x5 + i), ref a05, ref a15, ref a25, ref a35);
        }
        HorizontalSums.StoreRows4(y, ldy, Math.Min(TN.N, 4), a00, a10, a20, a30, a01, a11, a21, a31, a02, a12, a22, a32, a03, a13, a23, a33);
        if (TN.N == 5)
        {
            HorizontalSums.Sum4(a04, a14, a24, a34).Store(y + 4 * ldy);
        }
        else if (TN.N == 6)
        {
            Vector256<float> s = HorizontalSums.Sum8(a04, a14, a24, a34, a05, a15, a25, a35);
            s.GetLower().Store(y + 4 * ldy);
            s.GetUpper().Store(y + 5 * ldy);
        }
        AddRemainder(w, ws, x, n, i, y, ldy, TN.N);
    }

    // one token's column vector v against the four rows' vectors: a_r += k_r · v
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma4(Vector512<float> k0, Vector512<float> k1, Vector512<float> k2, Vector512<float> k3, Vector512<float> v,
                             ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3)
    {
        a0 = Vector512.FusedMultiplyAdd(k0, v, a0);
        a1 = Vector512.FusedMultiplyAdd(k1, v, a1);
        a2 = Vector512.FusedMultiplyAdd(k2, v, a2);
        a3 = Vector512.FusedMultiplyAdd(k3, v, a3);
    }

    /// <summary>
    /// <see cref="Rows4"/> on AVX2 + FMA (n &gt;= 8): 4 x 3 tiles (12 accumulators of the 16 ymm registers), then 4 x 2 or
    /// 4 x 1; one 8-lane accumulator per (row, token) over the columns in steps of 8, its lanes summed, then the remainder
    /// columns in order, whatever the number of tokens.
    /// </summary>
    internal static void Rows4Avx2(float* w, long wStride, float* x, int n, int tokens, float* y, int ldy, bool streamed = false)
    {
        int t = 0;
        for (; t + 3 <= tokens; t += 3)
            TileAvx2<Tokens3>(w, wStride, x + (long)t * n, n, y + (long)t * ldy, ldy, streamed && t == 0);
        if (tokens - t == 2)
            TileAvx2<Tokens2>(w, wStride, x + (long)t * n, n, y + (long)t * ldy, ldy, streamed && t == 0);
        else if (tokens - t == 1)
            TileAvx2<Tokens1>(w, wStride, x + (long)t * n, n, y + (long)t * ldy, ldy, streamed && t == 0);
    }

    // 4 rows x N tokens in 256 bits (N <= 3: 12 accumulators, the N token vectors and one row vector: the 16 ymm
    // registers), the tokens' vectors loaded once per 8 columns, then each row's
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileAvx2<TN>(float* w, long ws, float* x, int n, float* y, int ldy, bool prefetch) where TN : struct, ITokenCount
    {
        long ahead = 8 * ws;
        Vector256<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        float* w0 = w, w1 = w + ws, w2 = w + 2 * ws, w3 = w + 3 * ws, x0 = x, x1 = x + n, x2 = x + 2 * n;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            if (prefetch && (i & 15) == 0)
            {
                // the rows two groups ahead, a cache line (16 columns) of each every other step (see Rows4)
                Sse.Prefetch1(w0 + i + ahead);
                Sse.Prefetch1(w1 + i + ahead);
                Sse.Prefetch1(w2 + i + ahead);
                Sse.Prefetch1(w3 + i + ahead);
            }
            Vector256<float> v0 = Vector256.Load(x0 + i);
            Vector256<float> v1 = TN.N > 1 ? Vector256.Load(x1 + i) : default, v2 = TN.N > 2 ? Vector256.Load(x2 + i) : default;
            FmaRow<TN>(Vector256.Load(w0 + i), v0, v1, v2, ref a00, ref a01, ref a02);
            FmaRow<TN>(Vector256.Load(w1 + i), v0, v1, v2, ref a10, ref a11, ref a12);
            FmaRow<TN>(Vector256.Load(w2 + i), v0, v1, v2, ref a20, ref a21, ref a22);
            FmaRow<TN>(Vector256.Load(w3 + i), v0, v1, v2, ref a30, ref a31, ref a32);
        }
        HorizontalSums.Sum4(a00, a10, a20, a30).Store(y);
        if (TN.N > 1)
            HorizontalSums.Sum4(a01, a11, a21, a31).Store(y + ldy);
        if (TN.N > 2)
            HorizontalSums.Sum4(a02, a12, a22, a32).Store(y + 2 * ldy);
        AddRemainder(w, ws, x, n, i, y, ldy, TN.N);
    }

    // one row's vector k against the N tokens' vectors: a_t += k · v_t
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FmaRow<TN>(Vector256<float> k, Vector256<float> v0, Vector256<float> v1, Vector256<float> v2,
                                   ref Vector256<float> a0, ref Vector256<float> a1, ref Vector256<float> a2) where TN : struct, ITokenCount
    {
        a0 = Vector256.FusedMultiplyAdd(k, v0, a0);
        if (TN.N > 1)
            a1 = Vector256.FusedMultiplyAdd(k, v1, a1);
        if (TN.N > 2)
            a2 = Vector256.FusedMultiplyAdd(k, v2, a2);
    }
}
