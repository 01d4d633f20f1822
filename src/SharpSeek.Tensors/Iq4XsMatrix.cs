// IQ4_XS, llama.cpp's 4.25-bit format (ggml-common.h block_iq4_xs, ggml-quants.c dequantize_row_iq4_xs), used in place
// from GGUF files:
//   136 bytes / 256 values: fp16 d, uint16 scales_h, uint8 scales_l[4], qs[128];
//   sub-block ib (32 values): ls = (scales_l[ib/2] >> 4·(ib%2) & 0xF) | (scales_h >> 2·ib & 3) << 4, dl = d·(ls − 32),
//   value j = dl·kvalues_iq4nl[qs[16·ib + j] & 0xF], value 16 + j = dl·kvalues_iq4nl[qs[16·ib + j] >> 4] (j < 16).
// Products take Q8 activations (int16, one scale per token): per sub-block the levels (one pshufb from the codes) widened
// against the activations, scaled by dl·d_x. The kernel has a scalar reference.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>IQ4_XS weights: super-blocks of 256 indices into IQ4_NL's 16 levels, a 6-bit scale per 32 values.</summary>
public sealed unsafe class Iq4XsMatrix : BlockQuantMatrix
{
    public const int BlockValues = 256, BlockBytes = 136;
    private static readonly Vector256<sbyte> s_levels = Vector256.Create(Vector128.Create(SmallBlockMatrix.Levels), Vector128.Create(SmallBlockMatrix.Levels));

    public Iq4XsMatrix(byte* data, int rows, int cols, object? owner)
        : base(data, rows, cols, BlockValues, BlockBytes, "IQ4_XS", owner)
    {
    }

    public override WeightFormat Format => WeightFormat.IQ4_XS;
    public override ActivationFormat InputFormat => ActivationFormat.Q8;

    /// <summary>ls − 32 of sub-block ib.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Scale(byte* blk, int ib) =>
        (((blk[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((*(ushort*)(blk + 2) >> (2 * ib)) & 3) << 4)) - 32;

    public override void ReadRow(int row, Span<float> dst)
    {
        CheckReadRow(row, dst);
        byte* p = RowPointer(row);
        fixed (float* o = dst)
        {
            for (int b = 0; b < Cols / BlockValues; b++)
            {
                byte* blk = p + (long)b * BlockBytes;
                float d = Half16.ToFloat(*(ushort*)blk);
                for (int ib = 0; ib < 8; ib++)
                {
                    float dl = d * Scale(blk, ib);
                    float* y = o + b * 256 + 32 * ib;
                    if (Avx2.IsSupported)
                    {
                        // dl·level, one rounding as the scalar definition
                        Vector256<sbyte> v = SubBlockLevels(blk, ib);
                        (Vector256<short> a, Vector256<short> c) = Vector256.Widen(v);
                        (Vector256<int> a0, Vector256<int> a1) = Vector256.Widen(a);
                        (Vector256<int> c0, Vector256<int> c1) = Vector256.Widen(c);
                        Vector256<float> dv = Vector256.Create(dl);
                        (Vector256.ConvertToSingle(a0) * dv).Store(y);
                        (Vector256.ConvertToSingle(a1) * dv).Store(y + 8);
                        (Vector256.ConvertToSingle(c0) * dv).Store(y + 16);
                        (Vector256.ConvertToSingle(c1) * dv).Store(y + 24);
                        continue;
                    }
                    byte* qs = blk + 8 + 16 * ib;
                    for (int j = 0; j < 16; j++)
                    {
                        y[j] = dl * SmallBlockMatrix.Levels[qs[j] & 0xF];
                        y[16 + j] = dl * SmallBlockMatrix.Levels[qs[j] >> 4];
                    }
                }
            }
        }
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        if (!Avx2.IsSupported)
        {
            MatMulQ8<RowDot>(x, y, ldy, rowStart, rowCount, "IQ4_XS");
            return;
        }
        CheckQuantizedProduct(x, ActivationFormat.Q8, y.Length, ldy, rowStart, rowCount, "IQ4_XS");
        // a row at a time against tiles of up to four tokens: its levels and scales made once per tile
        fixed (short* xq = x.Q16Array)
        fixed (float* xs = x.ScaleArray)
        fixed (float* yp = y)
            RowTiles(new Q8Tiles<Tile>(xq, xs, Cols, yp, ldy), rowStart, 0, rowCount, x.Tokens);
    }

    private readonly struct Tile : IQ8TileKernel
    {
        public static void Run<TN>(byte* w, short* xq, int cols, float* xs, float* y, int ldy) where TN : struct, ITokenCount
        {
            if (TN.N == 1)
                *y = DotAvx2(w, xq, xs, cols / 256);
            else
                DotTokens<TN>(w, xq, cols, xs, cols / 32, cols / 256, y, ldy);
        }
    }

    private readonly struct RowDot : IQ8RowDot
    {
        public static float Dot(QuantizedProductMatrix m, int row, short* xq, float* xs, int blocks32) =>
            DotScalar(Unsafe.As<Iq4XsMatrix>(m).RowPointer(row), xq, xs, blocks32 / 8);
    }

    /// <summary>d·(ls − 32) of the 8 sub-blocks of a block, from vector registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SubBlockScales(byte* blk)
    {
        Vector256<uint> lo = Avx2.ShiftRightLogicalVariable(Vector256.Create(*(uint*)(blk + 4)), Vector256.Create(0u, 4, 8, 12, 16, 20, 24, 28)) & Vector256.Create(0xFu);
        Vector256<uint> hi = Avx2.ShiftRightLogicalVariable(Vector256.Create((uint)*(ushort*)(blk + 2)), Vector256.Create(0u, 2, 4, 6, 8, 10, 12, 14)) & Vector256.Create(3u);
        return Vector256.ConvertToSingle((lo | (hi << 4)).AsInt32() - Vector256.Create(32)) * Vector256.Create(Half16.ToFloat(*(ushort*)blk));
    }

    /// <summary>The 32 levels of sub-block ib as signed bytes (one pshufb).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> SubBlockLevels(byte* blk, int ib)
    {
        Vector128<byte> m4 = Vector128.Create((byte)0xF), q = Vector128.Load(blk + 8 + 16 * ib);
        return Avx2.Shuffle(s_levels, Vector256.Create(q & m4, Vector128.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m4).AsSByte());
    }

    /// <summary>Σ_b Σ_ib d·(ls − 32)·d_x·Σ level·x for one row (xs: the Q8 scales per 32 values, one value per token).
    /// The one-token product (decode): the same sums as <see cref="DotTokens{TN}"/> for one token (the block-format
    /// tests compare them bit for bit), kept apart because that one decoded 6% slower (alternating runs).</summary>
    internal static float DotAvx2(byte* w, short* xq, float* xs, int blocks)
    {
        float* f = stackalloc float[8];
        Vector256<float> acc = Vector256<float>.Zero, acc2 = acc;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            Sse.Prefetch0(blk + StreamPrefetch.Distance);
            Sse.Prefetch0(blk + StreamPrefetch.Distance + 64);
            SubBlockScales(blk).Store(f);
            for (int ib = 0; ib < 8; ib++)
            {
                Vector256<sbyte> v = SubBlockLevels(blk, ib);
                short* x = xq + b * 256 + 32 * ib;
                Vector256<int> p = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v.GetLower()), Vector256.Load(x))
                                 + Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(v.GetUpper()), Vector256.Load(x + 16));
                if ((ib & 1) == 0)
                    acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(f[ib]), acc);
                else
                    acc2 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(f[ib]), acc2);
            }
        }
        return Vector256.Sum(acc + acc2) * xs[0];
    }

    /// <summary>Σ_b Σ_ib d·(ls − 32)·d_x·Σ level·x for one row and N ≤ 4 tokens (activations xStride values apart, Q8
    /// scales sStride apart: one value per token), y[u·ldy] for token u: each sub-block's levels widened once for all
    /// of them, each token's sums formed alike whatever N. Needs AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotTokens<TN>(byte* w, short* xq, int xStride, float* xs, int sStride, int blocks, float* y, int ldy)
        where TN : struct, ITokenCount
    {
        float* f = stackalloc float[8];
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            Sse.Prefetch0(blk + StreamPrefetch.Distance);
            Sse.Prefetch0(blk + StreamPrefetch.Distance + 64);
            SubBlockScales(blk).Store(f);
            for (int ib = 0; ib < 8; ib += 2)
            {
                // even sub-blocks into the first accumulator, odd into the second
                SubBlock<TN>(blk, ib, xq + b * 256, xStride, f[ib], ref a0, ref a1, ref a2, ref a3);
                SubBlock<TN>(blk, ib + 1, xq + b * 256, xStride, f[ib + 1], ref b0, ref b1, ref b2, ref b3);
            }
        }
        y[0] = Vector256.Sum(a0 + b0) * xs[0];
        if (TN.N > 1) y[ldy] = Vector256.Sum(a1 + b1) * xs[sStride];
        if (TN.N > 2) y[2 * ldy] = Vector256.Sum(a2 + b2) * xs[2 * sStride];
        if (TN.N > 3) y[3 * ldy] = Vector256.Sum(a3 + b3) * xs[3 * sStride];
    }

    /// <summary>acc_u += scale·Σ level·x_u over sub-block ib for each token u.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SubBlock<TN>(byte* blk, int ib, short* x, long xStride, float scale,
                                     ref Vector256<float> c0, ref Vector256<float> c1, ref Vector256<float> c2, ref Vector256<float> c3)
        where TN : struct, ITokenCount
    {
        Vector256<sbyte> v = SubBlockLevels(blk, ib);
        Vector256<short> lo = Avx2.ConvertToVector256Int16(v.GetLower()), hi = Avx2.ConvertToVector256Int16(v.GetUpper());
        Vector256<float> sc = Vector256.Create(scale);
        short* xb = x + 32 * ib;
        c0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Avx2.MultiplyAddAdjacent(lo, Vector256.Load(xb)) + Avx2.MultiplyAddAdjacent(hi, Vector256.Load(xb + 16))), sc, c0);
        if (TN.N > 1)
            c1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Avx2.MultiplyAddAdjacent(lo, Vector256.Load(xb + xStride)) + Avx2.MultiplyAddAdjacent(hi, Vector256.Load(xb + xStride + 16))), sc, c1);
        if (TN.N > 2)
            c2 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Avx2.MultiplyAddAdjacent(lo, Vector256.Load(xb + 2 * xStride)) + Avx2.MultiplyAddAdjacent(hi, Vector256.Load(xb + 2 * xStride + 16))), sc, c2);
        if (TN.N > 3)
            c3 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Avx2.MultiplyAddAdjacent(lo, Vector256.Load(xb + 3 * xStride)) + Avx2.MultiplyAddAdjacent(hi, Vector256.Load(xb + 3 * xStride + 16))), sc, c3);
    }

    /// <summary>The scalar definition of <see cref="DotTokens{TN}"/>.</summary>
    internal static float DotScalar(byte* w, short* xq, float* xs, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            float d = Half16.ToFloat(*(ushort*)blk);
            for (int ib = 0; ib < 8; ib++)
            {
                byte* qs = blk + 8 + 16 * ib;
                int isum = 0;
                for (int j = 0; j < 16; j++)
                {
                    isum += SmallBlockMatrix.Levels[qs[j] & 0xF] * xq[b * 256 + 32 * ib + j];
                    isum += SmallBlockMatrix.Levels[qs[j] >> 4] * xq[b * 256 + 32 * ib + 16 + j];
                }
                total += isum * (d * Scale(blk, ib) * xs[b * 8 + ib]);
            }
        }
        return total;
    }
}
