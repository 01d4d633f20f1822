// bf16 products for machines without AVX-512 (AVX2 + FMA: AMD Zen 2/3, Intel before Ice Lake). The products read the
// rows as bf16 (no fp32 copy), 16 values per load as even/odd lanes (a 32-byte load holds, in 32-bit lane i, values 2i
// and 2i + 1: lane << 16 and lane & 0xFFFF0000) against the tokens permuted once per call; every (row, token) sum is
// formed the same way whatever the number of tokens in the call, so batched decoding gives the logits of decoding
// alone. The transposed product (W_UK of absorbed attention) reads the rows the same way into an accumulator permuted
// once per call.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>AVX2 + FMA kernels of <see cref="Bf16Matrix"/> (columns a multiple of 16).</summary>
internal static unsafe class Bf16Avx2
{
    /// <summary>Whether the kernels can run here.</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>For each 16 values (n a multiple of 16): dst[0..8] = src[0, 2, .., 14], dst[8..16] = src[1, 3, .., 15].</summary>
    public static void EvenOdd(float* src, float* dst, int n)
    {
        for (int i = 0; i < n; i += 16)
        {
            Vector256<float> a = Vector256.Load(src + i), b = Vector256.Load(src + i + 8);
            // per 128-bit lane (a0 a2 b0 b2 | a4 a6 b4 b6), then the 64-bit pairs reordered to (a0 a2 a4 a6 b0 b2 b4 b6)
            Vector256<float> e = Avx.Shuffle(a, b, 0x88), o = Avx.Shuffle(a, b, 0xDD);
            Avx2.Permute4x64(e.AsDouble(), 0xD8).AsSingle().Store(dst + i);
            Avx2.Permute4x64(o.AsDouble(), 0xD8).AsSingle().Store(dst + i + 8);
        }
    }

    /// <summary>The inverse of <see cref="EvenOdd"/>, in place.</summary>
    public static void Interleave(float* p, int n)
    {
        for (int i = 0; i < n; i += 16)
        {
            // (e0..e7), (o0..o7) -> pairs (e0 o0 e1 o1 | e4 o4 e5 o5) and (e2 o2 e3 o3 | e6 o6 e7 o7), then the lanes put in order
            Vector256<float> e = Vector256.Load(p + i), o = Vector256.Load(p + i + 8);
            Vector256<float> lo = Avx.UnpackLow(e, o), hi = Avx.UnpackHigh(e, o);
            Avx.Permute2x128(lo, hi, 0x20).Store(p + i);
            Avx.Permute2x128(lo, hi, 0x31).Store(p + i + 8);
        }
    }

    /// <summary>
    /// y += Σ_i x[i]·row i for the rowCount rows from <paramref name="w"/>, four rows at a time, with y permuted by
    /// <see cref="EvenOdd"/> (cols a multiple of 16): each 16 columns of y are loaded and stored once per four rows.
    /// </summary>
    public static void TransposedAdd(ushort* w, int cols, float* x, int rowCount, float* yPerm)
    {
        for (int i = 0; i + 4 <= rowCount; i += 4)
        {
            ushort* r0 = w + (long)i * cols, r1 = r0 + cols, r2 = r1 + cols, r3 = r2 + cols;
            Vector256<float> x0 = Vector256.Create(x[i]), x1 = Vector256.Create(x[i + 1]), x2 = Vector256.Create(x[i + 2]), x3 = Vector256.Create(x[i + 3]);
            for (int c = 0; c < cols; c += 16)
            {
                Vector256<uint> w0 = Vector256.Load((uint*)(r0 + c)), w1 = Vector256.Load((uint*)(r1 + c));
                Vector256<float> e = Vector256.FusedMultiplyAdd(Bf16.Even(w0), x0, Vector256.Load(yPerm + c));
                Vector256<float> o = Vector256.FusedMultiplyAdd(Bf16.Odd(w0), x0, Vector256.Load(yPerm + c + 8));
                e = Vector256.FusedMultiplyAdd(Bf16.Even(w1), x1, e);
                o = Vector256.FusedMultiplyAdd(Bf16.Odd(w1), x1, o);
                Vector256<uint> w2 = Vector256.Load((uint*)(r2 + c)), w3 = Vector256.Load((uint*)(r3 + c));
                e = Vector256.FusedMultiplyAdd(Bf16.Even(w2), x2, e);
                o = Vector256.FusedMultiplyAdd(Bf16.Odd(w2), x2, o);
                Vector256.FusedMultiplyAdd(Bf16.Even(w3), x3, e).Store(yPerm + c);
                Vector256.FusedMultiplyAdd(Bf16.Odd(w3), x3, o).Store(yPerm + c + 8);
            }
        }
    }

    /// <summary>
    /// y[t·ldy + i] = row i · x_t for rows i &lt; rowCount from <paramref name="w"/> (stride cols, a multiple of 16) and
    /// tokens t of <paramref name="xe"/> (stride cols, each token permuted by <see cref="EvenOdd"/>). Each 16 bf16 values
    /// are one 32-byte load split into even and odd lanes by a shift and an AND (no lane-crossing widening), both
    /// multiplied into the same accumulator: one accumulator per (row, token) over the columns in steps of 16, then its
    /// lanes summed by one horizontal-add network (<see cref="HorizontalSums"/>), whatever the tile and the
    /// number of tokens, so batched decoding gives the bits of decoding alone. Tiles: 8 rows x 1 token, 4 rows x 2 tokens, 4 x 3 (an odd count from 3), 4 x 1, single rows. (Zen 3, one
    /// thread, in L2 / L3, against rows widened 8 values at a time by vpmovzxwd in 4 x 3 tiles: 1 token 34 -> 49 / 29 ->
    /// 35 GFLOP/s, 2 tokens 53 -> 66 / 44 -> 58, 8 tokens 59 -> 66 / 54 -> 64; 768 x 1024 from memory: 1 token 14 -> 16,
    /// 2 tokens 26 -> 28, 3 tokens 39 -> 38, 7 tokens 49 -> 52, 16 tokens 59 either way.)
    /// </summary>
    public static void Product(ushort* w, int cols, float* xe, int tokens, float* y, int ldy, int rowCount)
    {
        int i = 0;
        while (i + 4 <= rowCount)
        {
            ushort* r0 = w + (long)i * cols;
            if (tokens == 1 && i + 8 <= rowCount)
            {
                Rows8(r0, cols, xe, y + i);
                i += 8;
                continue;
            }
            // the first pass over a group of rows reads them from memory (and prefetches); the ones after it, from L1.
            // An odd count from 3 starts with three tokens (one pass fewer than pairs and a single)
            int t = 0;
            if (tokens >= 3 && tokens % 2 == 1)
            {
                Rows4<Tokens3>(r0, cols, xe, y + i, ldy, true);
                t = 3;
            }
            for (; t + 2 <= tokens; t += 2)
                Rows4<Tokens2>(r0, cols, xe + (long)t * cols, y + (long)t * ldy + i, ldy, t == 0);
            if (t < tokens)
                Rows4<Tokens1>(r0, cols, xe + (long)t * cols, y + (long)t * ldy + i, ldy, t == 0);
            i += 4;
        }
        for (; i < rowCount; i++)
        {
            ushort* r = w + (long)i * cols;
            for (int t = 0; t < tokens; t++)
                y[(long)t * ldy + i] = Dot(r, cols, xe + (long)t * cols);
        }
    }

    /// <summary>acc + even lanes · xe + odd lanes · xo, the step every (row, token) sum takes per 16 columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Step(Vector256<uint> w, Vector256<float> xe, Vector256<float> xo, Vector256<float> acc) =>
        Vector256.FusedMultiplyAdd(Bf16.Odd(w), xo, Vector256.FusedMultiplyAdd(Bf16.Even(w), xe, acc));

    /// <summary>y[0..4] = the lane sums of a0..a3 (<see cref="HorizontalSums.Sum4"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(float* y, Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3) =>
        HorizontalSums.Sum4(a0, a1, a2, a3).Store(y);

    /// <summary>row · xe for one bf16 row and one token permuted by <see cref="EvenOdd"/> (cols a multiple of 16): the
    /// (row, token) sum every tile of <see cref="Product"/> forms.</summary>
    internal static float Dot(ushort* row, int cols, float* xe)
    {
        Vector256<float> a = default;
        for (int c = 0; c < cols; c += 16)
            a = Step(Vector256.Load((uint*)(row + c)), Vector256.Load(xe + c), Vector256.Load(xe + c + 8), a);
        return HorizontalSums.Sum1(a);
    }

    // 8 rows x 1 token: 8 independent accumulators (two dependent FMAs each per step); requests the same columns two
    // groups of rows ahead
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows8(ushort* r0, int cols, float* xe, float* y)
    {
        ushort* r1 = r0 + cols, r2 = r1 + cols, r3 = r2 + cols, r4 = r3 + cols, r5 = r4 + cols, r6 = r5 + cols, r7 = r6 + cols;
        long ahead = 16L * cols;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int c = 0; c < cols; c += 16)
        {
            if ((c & 31) == 0)
            {
                Sse.Prefetch0(r0 + c + ahead); Sse.Prefetch0(r1 + c + ahead); Sse.Prefetch0(r2 + c + ahead); Sse.Prefetch0(r3 + c + ahead);
                Sse.Prefetch0(r4 + c + ahead); Sse.Prefetch0(r5 + c + ahead); Sse.Prefetch0(r6 + c + ahead); Sse.Prefetch0(r7 + c + ahead);
            }
            Vector256<float> e = Vector256.Load(xe + c), o = Vector256.Load(xe + c + 8);
            a0 = Step(Vector256.Load((uint*)(r0 + c)), e, o, a0);
            a1 = Step(Vector256.Load((uint*)(r1 + c)), e, o, a1);
            a2 = Step(Vector256.Load((uint*)(r2 + c)), e, o, a2);
            a3 = Step(Vector256.Load((uint*)(r3 + c)), e, o, a3);
            a4 = Step(Vector256.Load((uint*)(r4 + c)), e, o, a4);
            a5 = Step(Vector256.Load((uint*)(r5 + c)), e, o, a5);
            a6 = Step(Vector256.Load((uint*)(r6 + c)), e, o, a6);
            a7 = Step(Vector256.Load((uint*)(r7 + c)), e, o, a7);
        }
        Store4(y, a0, a1, a2, a3);
        Store4(y + 4, a4, a5, a6, a7);
    }

    // 4 rows x N tokens (N ≤ 3): 4N accumulators, each row's 16 values split once for 2N FMAs (the tokens' values read
    // where they are used: with three tokens they would not fit in registers beside the accumulators); the first pass
    // over a group of rows (prefetch) requests the same columns two groups ahead
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4<TN>(ushort* r0, int cols, float* x0, float* y, int ldy, bool prefetch) where TN : struct, ITokenCount
    {
        ushort* r1 = r0 + cols, r2 = r1 + cols, r3 = r2 + cols;
        float* x1 = x0 + cols, x2 = x1 + cols;
        long ahead = 8L * cols;
        Vector256<float> a00 = default, a10 = default, a20 = default, a30 = default;
        Vector256<float> a01 = default, a11 = default, a21 = default, a31 = default;
        Vector256<float> a02 = default, a12 = default, a22 = default, a32 = default;
        for (int c = 0; c < cols; c += 16)
        {
            if (prefetch && (c & 31) == 0)
            {
                Sse.Prefetch0(r0 + c + ahead); Sse.Prefetch0(r1 + c + ahead); Sse.Prefetch0(r2 + c + ahead); Sse.Prefetch0(r3 + c + ahead);
            }
            Vector256<uint> w = Vector256.Load((uint*)(r0 + c));
            a00 = Step(w, Vector256.Load(x0 + c), Vector256.Load(x0 + c + 8), a00);
            if (TN.N > 1) a01 = Step(w, Vector256.Load(x1 + c), Vector256.Load(x1 + c + 8), a01);
            if (TN.N > 2) a02 = Step(w, Vector256.Load(x2 + c), Vector256.Load(x2 + c + 8), a02);
            w = Vector256.Load((uint*)(r1 + c));
            a10 = Step(w, Vector256.Load(x0 + c), Vector256.Load(x0 + c + 8), a10);
            if (TN.N > 1) a11 = Step(w, Vector256.Load(x1 + c), Vector256.Load(x1 + c + 8), a11);
            if (TN.N > 2) a12 = Step(w, Vector256.Load(x2 + c), Vector256.Load(x2 + c + 8), a12);
            w = Vector256.Load((uint*)(r2 + c));
            a20 = Step(w, Vector256.Load(x0 + c), Vector256.Load(x0 + c + 8), a20);
            if (TN.N > 1) a21 = Step(w, Vector256.Load(x1 + c), Vector256.Load(x1 + c + 8), a21);
            if (TN.N > 2) a22 = Step(w, Vector256.Load(x2 + c), Vector256.Load(x2 + c + 8), a22);
            w = Vector256.Load((uint*)(r3 + c));
            a30 = Step(w, Vector256.Load(x0 + c), Vector256.Load(x0 + c + 8), a30);
            if (TN.N > 1) a31 = Step(w, Vector256.Load(x1 + c), Vector256.Load(x1 + c + 8), a31);
            if (TN.N > 2) a32 = Step(w, Vector256.Load(x2 + c), Vector256.Load(x2 + c + 8), a32);
        }
        Store4(y, a00, a10, a20, a30);
        if (TN.N > 1)
            Store4(y + ldy, a01, a11, a21, a31);
        if (TN.N > 2)
            Store4(y + 2 * ldy, a02, a12, a22, a32);
    }
}
