// Q5_K, a llama.cpp block format used in place from GGUF files (Q5_K_M and Q5_K_S files; ggml-common.h block_q5_K,
// ggml-quants.c dequantize_row_q5_K):
//   176 bytes / 256 values: fp16 d, fp16 dmin, 12 bytes of 6-bit sub-block scales and mins (packed as Q4_K's),
//   qh[32] (the fifth bits), qs[128] (for each 64 values: low nibbles = first 32, high nibbles = next 32);
//   value = d·sc_j·q − dmin·m_j, q = nibble | bit (2c for the low nibbles of chunk c, 2c + 1 for the high) of qh[l] << 4.
// Products take Q8K activations like Q4_K's and reuse its integer steps (Q4KVnni.Block: the codes ≤ 31 keep every
// int16 intermediate exact); the kernel has a scalar reference.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Q5_K weights: super-blocks of 256 5-bit values with 6-bit sub-block scales and mins (llama.cpp block_q5_K).</summary>
public sealed unsafe class Q5KMatrix : BlockQuantMatrix
{
    public const int BlockValues = 256, BlockBytes = 176;
    private const int QhOffset = 16, QsOffset = 48;

    public Q5KMatrix(byte* data, int rows, int cols, object? owner)
        : base(data, rows, cols, BlockValues, BlockBytes, "Q5_K", owner)
    {
    }

    public override WeightFormat Format => WeightFormat.Q5_K;
    public override ActivationFormat InputFormat => ActivationFormat.Q8K;

    /// <summary>Code l of sub-block j (0..7) of a block: 0..31.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Code(byte* blk, int j, int l)
    {
        int c = j / 2, nibble = (blk[QsOffset + 32 * c + l] >> (4 * (j & 1))) & 0xF;
        return nibble | ((blk[QhOffset + l] >> j) & 1) << 4;
    }

    public override void ReadRow(int row, Span<float> dst)
    {
        CheckReadRow(row, dst);
        byte* p = RowPointer(row);
        fixed (float* o = dst)
        {
            for (int b = 0; b < Cols / BlockValues; b++)
            {
                byte* blk = p + (long)b * BlockBytes;
                float d = Half16.ToFloat(*(ushort*)blk), dmin = Half16.ToFloat(*(ushort*)(blk + 2));
                for (int j = 0; j < 8; j++)
                {
                    (int sc, int m) = Q4KMatrix.ScaleMin(j, blk + 4);
                    float dj = d * sc, mj = dmin * m;
                    float* y = o + b * 256 + j * 32;
                    if (Vector256.IsHardwareAccelerated)
                    {
                        // dj·q − mj, as the scalar definition rounds
                        Q4KMatrix.Dequant32(Codes32(blk, j), dj, mj, y);
                        continue;
                    }
                    for (int l = 0; l < 32; l++)
                        y[l] = dj * Code(blk, j, l) - mj;
                }
            }
        }
    }

    /// <summary>The 32 codes of sub-block j: its nibbles with bit j of qh[l] as the fifth bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Codes32(byte* blk, int j)
    {
        Vector256<byte> q = Vector256.Load(blk + QsOffset + 32 * (j / 2));
        Vector256<byte> nibbles = (j & 1) == 0 ? q & Vector256.Create((byte)0xF) : Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0xF);
        Vector256<ushort> h = Vector256.Load(blk + QhOffset).AsUInt16();
        Vector256<ushort> at4 = j <= 4 ? Vector256.ShiftLeft(h, 4 - j) : Vector256.ShiftRightLogical(h, j - 4);
        return nibbles | (at4.AsByte() & Vector256.Create((byte)0x10));
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        if (!Avx2.IsSupported)
        {
            MatMulQ8K<RowDot>(x, y, ldy, rowStart, rowCount, "Q5_K");
            return;
        }
        CheckQuantizedProduct(x, ActivationFormat.Q8K, y.Length, ldy, rowStart, rowCount, "Q5_K");
        // a row at a time against tiles of up to four tokens: its codes and scales unpacked once per tile
        fixed (sbyte* xq = x.Q8Array)
        fixed (float* xd = x.ScaleArray)
        fixed (short* xsum = x.Sum16Array)
        fixed (float* yp = y)
            RowTiles(new Q8KTiles<Q4KVnni.Tile<FiveBitCodes>>(xq, xd, xsum, Cols, yp, ldy), rowStart, 0, rowCount, x.Tokens);
    }

    private readonly struct RowDot : IQ8KRowDot
    {
        public static float Dot(QuantizedProductMatrix m, int row, in Q8KToken x, int blocks)
        {
            byte* w = Unsafe.As<Q5KMatrix>(m).RowPointer(row);
            return Avx2.IsSupported ? Q5KMatrix.Dot(w, x.Q, x.Scales, x.Sums16, blocks) : DotScalar(w, x.Q, x.Scales, x.Sums, blocks);
        }
    }

    /// <summary>Σ over super-blocks of d_x·(d·Σ_s sc_s·Σ q·x − dmin·Σ_s m_s·sum_s(x)) for one row and one token (AVX2).</summary>
    internal static float Dot(byte* w, sbyte* xq, float* xd, short* xsum, int blocks) => Q4KVnni.Dot<FiveBitCodes>(w, xq, xd, xsum, blocks);

    /// <summary>Q5_K's codes: Q4_K's nibbles (at <see cref="QsOffset"/>) with the fifth bits of qh.</summary>
    private readonly struct FiveBitCodes : Q4KVnni.IBlockCodes
    {
        public static int BlockBytes => Q5KMatrix.BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Codes(byte* blk, out Vector256<byte> c0, out Vector256<byte> c1, out Vector256<byte> c2, out Vector256<byte> c3,
                                 out Vector256<byte> c4, out Vector256<byte> c5, out Vector256<byte> c6, out Vector256<byte> c7)
        {
            Vector256<byte> mask = Vector256.Create((byte)0xF), bit4 = Vector256.Create((byte)0x10);
            // the fifth bit of sub-block j is bit j of qh[l], moved to bit 4 (16-bit shifts: the mask keeps each byte's own)
            Vector256<ushort> h = Vector256.Load(blk + QhOffset).AsUInt16();
            Vector256<byte> q0 = Vector256.Load(blk + QsOffset), q1 = Vector256.Load(blk + QsOffset + 32);
            Vector256<byte> q2 = Vector256.Load(blk + QsOffset + 64), q3 = Vector256.Load(blk + QsOffset + 96);
            c0 = (q0 & mask) | (Vector256.ShiftLeft(h, 4).AsByte() & bit4);
            c1 = (Vector256.ShiftRightLogical(q0.AsUInt16(), 4).AsByte() & mask) | (Vector256.ShiftLeft(h, 3).AsByte() & bit4);
            c2 = (q1 & mask) | (Vector256.ShiftLeft(h, 2).AsByte() & bit4);
            c3 = (Vector256.ShiftRightLogical(q1.AsUInt16(), 4).AsByte() & mask) | (Vector256.ShiftLeft(h, 1).AsByte() & bit4);
            c4 = (q2 & mask) | (h.AsByte() & bit4);
            c5 = (Vector256.ShiftRightLogical(q2.AsUInt16(), 4).AsByte() & mask) | (Vector256.ShiftRightLogical(h, 1).AsByte() & bit4);
            c6 = (q3 & mask) | (Vector256.ShiftRightLogical(h, 2).AsByte() & bit4);
            c7 = (Vector256.ShiftRightLogical(q3.AsUInt16(), 4).AsByte() & mask) | (Vector256.ShiftRightLogical(h, 3).AsByte() & bit4);
        }
    }

    /// <summary>The scalar definition of <see cref="Dot"/> (xsum: the int32 sub-block sums).</summary>
    internal static float DotScalar(byte* w, sbyte* xq, float* xd, int* xsum, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            long isum = 0, minSum = 0;
            for (int j = 0; j < 8; j++)
            {
                (int s, int m) = Q4KMatrix.ScaleMin(j, blk + 4);
                int slot = QuantizedInput.PermutedSubBlock(j), dot = 0;
                for (int l = 0; l < 32; l++)
                    dot += Code(blk, j, l) * xq[b * 256 + slot * 32 + l];
                isum += (long)s * dot;
                minSum += (long)m * xsum[b * 8 + j];
            }
            float d = Half16.ToFloat(*(ushort*)blk), dmin = Half16.ToFloat(*(ushort*)(blk + 2));
            total += xd[b] * (d * isum - dmin * minSum);
        }
        return total;
    }
}
