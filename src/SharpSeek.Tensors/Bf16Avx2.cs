// bf16 products for machines without AVX-512 (AVX2 + FMA: AMD Zen 2/3, Intel before Ice Lake). The products read the
// rows as bf16 (no fp32 copy), 8 values widened in registers at a time; every (row, token) sum is formed the same way
// whatever the number of tokens in the call, so batched decoding gives the logits of decoding alone. The transposed
// product (W_UK of absorbed attention) reads 16 values per load as even/odd lanes (a 32-byte load holds, in 32-bit lane
// i, values 2i and 2i + 1: lane << 16 and lane & 0xFFFF0000) into an accumulator permuted once per call.
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
        Vector256<uint> high = Vector256.Create(0xFFFF0000u);
        for (int i = 0; i + 4 <= rowCount; i += 4)
        {
            ushort* r0 = w + (long)i * cols, r1 = r0 + cols, r2 = r1 + cols, r3 = r2 + cols;
            Vector256<float> x0 = Vector256.Create(x[i]), x1 = Vector256.Create(x[i + 1]), x2 = Vector256.Create(x[i + 2]), x3 = Vector256.Create(x[i + 3]);
            for (int c = 0; c < cols; c += 16)
            {
                Vector256<uint> w0 = Vector256.Load((uint*)(r0 + c)), w1 = Vector256.Load((uint*)(r1 + c));
                Vector256<float> e = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(w0, 16).AsSingle(), x0, Vector256.Load(yPerm + c));
                Vector256<float> o = Vector256.FusedMultiplyAdd((w0 & high).AsSingle(), x0, Vector256.Load(yPerm + c + 8));
                e = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(w1, 16).AsSingle(), x1, e);
                o = Vector256.FusedMultiplyAdd((w1 & high).AsSingle(), x1, o);
                Vector256<uint> w2 = Vector256.Load((uint*)(r2 + c)), w3 = Vector256.Load((uint*)(r3 + c));
                e = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(w2, 16).AsSingle(), x2, e);
                o = Vector256.FusedMultiplyAdd((w2 & high).AsSingle(), x2, o);
                Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(w3, 16).AsSingle(), x3, e).Store(yPerm + c);
                Vector256.FusedMultiplyAdd((w3 & high).AsSingle(), x3, o).Store(yPerm + c + 8);
            }
        }
    }

    /// <summary>
    /// y[t·ldy + i] = row i · x_t for rows i &lt; rowCount from <paramref name="w"/> (stride cols, a multiple of 8) and
    /// tokens t of <paramref name="x"/> (stride cols): four rows against three tokens at a time, each 8 bf16 values
    /// widened to fp32 in registers (vpmovzxwd, a shift) for up to 3 FMAs. Every (row, token) sum is one accumulator over
    /// the columns in steps of 8, then its lanes summed, whatever the number of tokens. (Against even/odd lanes in 4 rows
    /// x 2 tokens, the AVX-512 kernel's split at half its width, with two dependent FMAs per accumulator and step: on a
    /// Zen 3, one thread, 768 x 1024 rows from memory, 3 tokens 26-28 -> 33-37 GFLOP/s, 1 and 16 tokens the same.)
    /// </summary>
    public static void Product(ushort* w, int cols, float* x, int tokens, float* y, int ldy, int rowCount)
    {
        int i = 0;
        for (; i + 4 <= rowCount; i += 4)
        {
            ushort* r0 = w + (long)i * cols;
            int t = 0;
            for (; t + 3 <= tokens; t += 3)
                Rows4W<Three>(r0, cols, x + (long)t * cols, y + (long)t * ldy + i, ldy, t == 0);
            switch (tokens - t)
            {
                case 2: Rows4W<Two>(r0, cols, x + (long)t * cols, y + (long)t * ldy + i, ldy, t == 0); break;
                case 1: Rows4W<One>(r0, cols, x + (long)t * cols, y + (long)t * ldy + i, ldy, t == 0); break;
            }
        }
        for (; i < rowCount; i++)
        {
            ushort* r = w + (long)i * cols;
            for (int t = 0; t < tokens; t++)
            {
                Vector256<float> a = default;
                for (int c = 0; c < cols; c += 8)
                    a = Vector256.FusedMultiplyAdd(Widen8(r + c), Vector256.Load(x + (long)t * cols + c), a);
                y[(long)t * ldy + i] = Vector256.Sum(a);
            }
        }
    }

    private interface ITokenCount
    {
        static abstract int N { get; }
    }

    private struct One : ITokenCount { public static int N => 1; }

    private struct Two : ITokenCount { public static int N => 2; }

    private struct Three : ITokenCount { public static int N => 3; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen8(ushort* p) => Vector256.ShiftLeft(Avx2.ConvertToVector256Int32(p), 16).AsSingle();

    // 4 rows x N tokens (N ≤ 3): 12 accumulators, each row's 8 values widened once for N FMAs; the first pass over a
    // group of rows (prefetch) requests the same columns two groups ahead
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4W<TN>(ushort* r0, int cols, float* x0, float* y, int ldy, bool prefetch) where TN : struct, ITokenCount
    {
        ushort* r1 = r0 + cols, r2 = r1 + cols, r3 = r2 + cols;
        float* x1 = x0 + cols, x2 = x1 + cols;
        Vector256<float> a00 = default, a10 = default, a20 = default, a30 = default;
        Vector256<float> a01 = default, a11 = default, a21 = default, a31 = default;
        Vector256<float> a02 = default, a12 = default, a22 = default, a32 = default;
        for (int c = 0; c < cols; c += 8)
        {
            if (prefetch && (c & 31) == 0)
            {
                Sse.Prefetch0(r0 + c + 8 * cols);
                Sse.Prefetch0(r1 + c + 8 * cols);
                Sse.Prefetch0(r2 + c + 8 * cols);
                Sse.Prefetch0(r3 + c + 8 * cols);
            }
            Vector256<float> v0 = Vector256.Load(x0 + c), v1 = default, v2 = default;
            if (TN.N > 1)
                v1 = Vector256.Load(x1 + c);
            if (TN.N > 2)
                v2 = Vector256.Load(x2 + c);
            Vector256<float> k = Widen8(r0 + c);
            a00 = Vector256.FusedMultiplyAdd(k, v0, a00);
            if (TN.N > 1) a01 = Vector256.FusedMultiplyAdd(k, v1, a01);
            if (TN.N > 2) a02 = Vector256.FusedMultiplyAdd(k, v2, a02);
            k = Widen8(r1 + c);
            a10 = Vector256.FusedMultiplyAdd(k, v0, a10);
            if (TN.N > 1) a11 = Vector256.FusedMultiplyAdd(k, v1, a11);
            if (TN.N > 2) a12 = Vector256.FusedMultiplyAdd(k, v2, a12);
            k = Widen8(r2 + c);
            a20 = Vector256.FusedMultiplyAdd(k, v0, a20);
            if (TN.N > 1) a21 = Vector256.FusedMultiplyAdd(k, v1, a21);
            if (TN.N > 2) a22 = Vector256.FusedMultiplyAdd(k, v2, a22);
            k = Widen8(r3 + c);
            a30 = Vector256.FusedMultiplyAdd(k, v0, a30);
            if (TN.N > 1) a31 = Vector256.FusedMultiplyAdd(k, v1, a31);
            if (TN.N > 2) a32 = Vector256.FusedMultiplyAdd(k, v2, a32);
        }
        y[0] = Vector256.Sum(a00); y[1] = Vector256.Sum(a10); y[2] = Vector256.Sum(a20); y[3] = Vector256.Sum(a30);
        if (TN.N > 1)
        {
            float* y1 = y + ldy;
            y1[0] = Vector256.Sum(a01); y1[1] = Vector256.Sum(a11); y1[2] = Vector256.Sum(a21); y1[3] = Vector256.Sum(a31);
        }
        if (TN.N > 2)
        {
            float* y2 = y + 2 * ldy;
            y2[0] = Vector256.Sum(a02); y2[1] = Vector256.Sum(a12); y2[2] = Vector256.Sum(a22); y2[3] = Vector256.Sum(a32);
        }
    }
}
