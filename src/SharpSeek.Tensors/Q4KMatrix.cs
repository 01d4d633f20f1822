// Q4_K, a llama.cpp block format used in place (GGUF tensors map straight in) or produced at load:
//   144 bytes / 256 values: fp16 d, fp16 dmin, 12 bytes of 6-bit sub-block scales and mins, 128 bytes of nibbles
//   (for each 64 values: low nibbles = first 32, high nibbles = next 32);  w = d·sc_j·q − dmin·m_j
// Products quantize the activations once (QuantizedInput) and accumulate uint4·int8 dot products per block through
// vpmaddubsw then vpmaddwd with the scales, scaled to fp32 per block. Each kernel has a scalar reference.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Q4_K weights: super-blocks of 256 4-bit values with 6-bit sub-block scales and mins (llama.cpp block_q4_K).</summary>
public sealed unsafe class Q4KMatrix : BlockQuantMatrix
{
    private const int PrefetchDistance = 4096;
    public const int BlockValues = 256, BlockBytes = 144;

    public Q4KMatrix(byte* data, int rows, int cols, object? owner)
        : base(data, rows, cols, BlockValues, BlockBytes, "Q4_K", owner)
    {
    }

    public override WeightFormat Format => WeightFormat.Q4_K;
    public override ActivationFormat InputFormat => ActivationFormat.Q8K;
    public static long RowBytes(int cols) => (long)cols / BlockValues * BlockBytes;


    /// <summary>Scale and min of sub-block j (llama.cpp get_scale_min_k4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Scale, int Min) ScaleMin(int j, byte* q)
    {
        if (j < 4)
            return (q[j] & 63, q[j + 4] & 63);
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }

    /// <summary>Quantizes a matrix into Q4_K blocks.</summary>
    public static Q4KMatrix Quantize(WeightMatrix src, List<IDisposable> owners)
    {
        NativeBuffer buf = QuantizeRows(src, RowBytes(src.Cols), QuantizeRow, owners);
        return new Q4KMatrix(buf.Pointer, src.Rows, src.Cols, buf);
    }

    /// <summary>
    /// Quantizes one row: per 32-value sub-block an affine fit (min ≤ 0, scale = (max − min)/15), the sub-block
    /// scales and mins quantized to 6 bits against the super-block's d and dmin, then values re-quantized with
    /// the stored (rounded) scales, as llama.cpp's quantize_row_q4_K_ref does after its fit.
    /// </summary>
    public static void QuantizeRow(ReadOnlySpan<float> x, byte* dst)
    {
        Span<float> scales = stackalloc float[8], mins = stackalloc float[8];
        Span<byte> L = stackalloc byte[256];
        for (int b = 0; b < x.Length / BlockValues; b++)
        {
            ReadOnlySpan<float> v = x.Slice(b * BlockValues, BlockValues);
            byte* blk = dst + b * BlockBytes;
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 8; j++)
            {
                float mn = 0, mx = 0;
                for (int l = 0; l < 32; l++)
                {
                    mn = Math.Min(mn, v[j * 32 + l]);
                    mx = Math.Max(mx, v[j * 32 + l]);
                }
                scales[j] = (mx - mn) / 15f;
                mins[j] = -mn;
                maxScale = Math.Max(maxScale, scales[j]);
                maxMin = Math.Max(maxMin, mins[j]);
            }
            float invScale = maxScale > 0 ? 63f / maxScale : 0f, invMin = maxMin > 0 ? 63f / maxMin : 0f;
            byte* sc = blk + 4;
            for (int i = 0; i < 12; i++)
                sc[i] = 0;
            for (int j = 0; j < 8; j++)
            {
                int ls = Math.Min(63, (int)MathF.Round(invScale * scales[j], MidpointRounding.AwayFromZero));
                int lm = Math.Min(63, (int)MathF.Round(invMin * mins[j], MidpointRounding.AwayFromZero));
                if (j < 4)
                {
                    sc[j] = (byte)ls;
                    sc[j + 4] = (byte)lm;
                }
                else
                {
                    sc[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                    sc[j - 4] |= (byte)((ls >> 4) << 6);
                    sc[j] |= (byte)((lm >> 4) << 6);
                }
            }
            ushort dBits = Half16.FromFloat(maxScale / 63f), mBits = Half16.FromFloat(maxMin / 63f);
            *(ushort*)blk = dBits;
            *(ushort*)(blk + 2) = mBits;
            float d = Half16.ToFloat(dBits), dmin = Half16.ToFloat(mBits);
            for (int j = 0; j < 8; j++)
            {
                (int s, int m) = ScaleMin(j, sc);
                float dj = d * s, mj = dmin * m;
                for (int l = 0; l < 32; l++)
                {
                    int q = dj > 0 ? (int)MathF.Round((v[j * 32 + l] + mj) / dj, MidpointRounding.AwayFromZero) : 0;
                    L[j * 32 + l] = (byte)Math.Clamp(q, 0, 15);
                }
            }
            byte* qs = blk + 16;
            for (int c = 0; c < 4; c++)
            {
                for (int l = 0; l < 32; l++)
                    qs[c * 32 + l] = (byte)(L[c * 64 + l] | (L[c * 64 + 32 + l] << 4));
            }
        }
    }

    public override void ReadRow(int row, Span<float> dst)
    {
        if (dst.Length < Cols)
            throw new ArgumentException($"ReadRow: destination has {dst.Length} values, the row {Cols}", nameof(dst));
        byte* p = RowPointer(row);
        fixed (float* o = dst)
        {
            for (int b = 0; b < Cols / BlockValues; b++)
            {
                byte* blk = p + b * BlockBytes;
                float d = Half16.ToFloat(*(ushort*)blk), dmin = Half16.ToFloat(*(ushort*)(blk + 2));
                byte* qs = blk + 16;
                for (int c = 0; c < 4; c++)
                {
                    (int s0, int m0) = ScaleMin(2 * c, blk + 4);
                    (int s1, int m1) = ScaleMin(2 * c + 1, blk + 4);
                    float d0 = d * s0, n0 = dmin * m0, d1 = d * s1, n1 = dmin * m1;
                    float* lo = o + b * 256 + c * 64, hi = lo + 32;
                    if (Vector256.IsHardwareAccelerated)
                    {
                        // multiply then subtract, as the scalar definition rounds (no fused multiply-add)
                        Vector256<byte> q = Vector256.Load(qs + c * 32);
                        Dequant32(q & Vector256.Create((byte)0xF), d0, n0, lo);
                        Dequant32(Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0xF), d1, n1, hi);
                        continue;
                    }
                    for (int l = 0; l < 32; l++)
                    {
                        lo[l] = d0 * (qs[c * 32 + l] & 0xF) - n0;
                        hi[l] = d1 * (qs[c * 32 + l] >> 4) - n1;
                    }
                }
            }
        }
    }

    /// <summary>dst[l] = d·v[l] − n for 32 small unsigned values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Dequant32(Vector256<byte> v, float d, float n, float* dst)
    {
        (Vector256<ushort> a, Vector256<ushort> b) = Vector256.Widen(v);
        (Vector256<uint> a0, Vector256<uint> a1) = Vector256.Widen(a);
        (Vector256<uint> b0, Vector256<uint> b1) = Vector256.Widen(b);
        Vector256<float> dv = Vector256.Create(d), nv = Vector256.Create(n);
        (Vector256.ConvertToSingle(a0.AsInt32()) * dv - nv).Store(dst);
        (Vector256.ConvertToSingle(a1.AsInt32()) * dv - nv).Store(dst + 8);
        (Vector256.ConvertToSingle(b0.AsInt32()) * dv - nv).Store(dst + 16);
        (Vector256.ConvertToSingle(b1.AsInt32()) * dv - nv).Store(dst + 24);
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        if (x.Format != ActivationFormat.Q8K || x.Cols != Cols)
            throw new ArgumentException("Q4_K product needs Q8K activations of the same width");
        int blocks = Cols / BlockValues, T = x.Tokens;
        fixed (sbyte* xq = x.Q8Array)
        fixed (float* xd = x.ScaleArray)
        fixed (int* xsum = x.SumArray)
        fixed (short* xsum16 = x.Sum16Array)
        fixed (float* yp = y)
        {
            if (Q4KVnni.IsSupported)
            {
                RowTiles(new Q8KTiles<Q4KVnni.Tile<Q4KVnni.Nibbles>>(xq, xd, xsum16, Cols, yp, ldy), rowStart, 0, rowCount, T);
                return;
            }
            for (int i = 0; i < rowCount; i++)
            {
                byte* w = RowPointer(rowStart + i);
                int t = 0;
                if (Avx512BW.IsSupported)
                {
                    for (; t + 4 <= T; t += 4)
                        Dot512x4(w, xq + (long)t * Cols, Cols, xd + (long)t * blocks, xsum + (long)t * blocks * 8, blocks, yp + (long)t * ldy + i, ldy);
                }
                for (; t < T; t++)
                    yp[(long)t * ldy + i] = Dot(w, xq + (long)t * Cols, xd + (long)t * blocks, xsum + (long)t * blocks * 8, blocks);
            }
        }
    }

    /// <summary>One row against 4 tokens: nibbles and scales are unpacked once per super-block for all four; the
    /// mins correction stays in 8-lane vectors (one per token) until the end.</summary>
    private static void Dot512x4(byte* w, sbyte* xq, int xStride, float* xd, int* xsum, int blocks, float* y, int ldy)
    {
        Vector512<byte> mask = Vector512.Create((byte)0xF);
        Vector512<short> idxLo0 = Vector512.Create(Vector256.Create((short)0), Vector256.Create((short)2));
        Vector512<short> idxHi0 = Vector512.Create(Vector256.Create((short)1), Vector256.Create((short)3));
        Vector512<short> idxLo1 = Vector512.Create(Vector256.Create((short)4), Vector256.Create((short)6));
        Vector512<short> idxHi1 = Vector512.Create(Vector256.Create((short)5), Vector256.Create((short)7));
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        Vector256<float> m0 = default, m1 = default, m2 = default, m3 = default;
        int sStride = blocks, sumStride = blocks * 8;
        sbyte* x0 = xq, x1 = xq + xStride, x2 = xq + 2L * xStride, x3 = xq + 3L * xStride;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + b * BlockBytes;
            (ulong sc, ulong mn) = ScalesMins(blk + 4);
            Vector512<short> scales = Vector128.WidenLower(Vector128.CreateScalar(sc).AsByte()).AsInt16().ToVector256().ToVector512();
            Vector256<int> mins = Avx2.ConvertToVector256Int32(Vector128.CreateScalar(mn).AsByte());
            Vector512<short> sl0 = Avx512BW.PermuteVar32x16(scales, idxLo0), sh0 = Avx512BW.PermuteVar32x16(scales, idxHi0);
            Vector512<short> sl1 = Avx512BW.PermuteVar32x16(scales, idxLo1), sh1 = Avx512BW.PermuteVar32x16(scales, idxHi1);
            Vector512<byte> q0 = Vector512.Load(blk + 16), q1 = Vector512.Load(blk + 80);
            Vector512<byte> lo0 = q0 & mask, hi0 = Vector512.ShiftRightLogical(q0.AsUInt16(), 4).AsByte() & mask;
            Vector512<byte> lo1 = q1 & mask, hi1 = Vector512.ShiftRightLogical(q1.AsUInt16(), 4).AsByte() & mask;
            float d = Half16.ToFloat(*(ushort*)blk), dmin = Half16.ToFloat(*(ushort*)(blk + 2));
            int o = b * 256;
            acc0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Quad(lo0, hi0, lo1, hi1, sl0, sh0, sl1, sh1, x0 + o)), Vector512.Create(d * xd[b]), acc0);
            acc1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Quad(lo0, hi0, lo1, hi1, sl0, sh0, sl1, sh1, x1 + o)), Vector512.Create(d * xd[sStride + b]), acc1);
            acc2 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Quad(lo0, hi0, lo1, hi1, sl0, sh0, sl1, sh1, x2 + o)), Vector512.Create(d * xd[2 * sStride + b]), acc2);
            acc3 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Quad(lo0, hi0, lo1, hi1, sl0, sh0, sl1, sh1, x3 + o)), Vector512.Create(d * xd[3 * sStride + b]), acc3);
            int* xs = xsum + b * 8;
            m0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(mins * Vector256.Load(xs)), Vector256.Create(dmin * xd[b]), m0);
            m1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(mins * Vector256.Load(xs + sumStride)), Vector256.Create(dmin * xd[sStride + b]), m1);
            m2 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(mins * Vector256.Load(xs + 2 * sumStride)), Vector256.Create(dmin * xd[2 * sStride + b]), m2);
            m3 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(mins * Vector256.Load(xs + 3 * sumStride)), Vector256.Create(dmin * xd[3 * sStride + b]), m3);
        }
        y[0] = Vector512.Sum(acc0) - Vector256.Sum(m0);
        y[ldy] = Vector512.Sum(acc1) - Vector256.Sum(m1);
        y[2 * ldy] = Vector512.Sum(acc2) - Vector256.Sum(m2);
        y[3 * ldy] = Vector512.Sum(acc3) - Vector256.Sum(m3);
    }

    /// <summary>Σ_j sc_j · Σ q·x over one super-block for one token, as 16 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Quad(Vector512<byte> lo0, Vector512<byte> hi0, Vector512<byte> lo1, Vector512<byte> hi1,
                                       Vector512<short> sl0, Vector512<short> sh0, Vector512<short> sl1, Vector512<short> sh1, sbyte* x) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(lo0, Vector512.Load(x)), sl0)
        + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hi0, Vector512.Load(x + 64)), sh0)
        + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(lo1, Vector512.Load(x + 128)), sl1)
        + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hi1, Vector512.Load(x + 192)), sh1);

    /// <summary>Σ over super-blocks of d_x·(d·Σ_j sc_j·Σ q·x − dmin·Σ_j m_j·sum_j(x)).</summary>
    public static float Dot(byte* w, sbyte* xq, float* xd, int* xsum, int blocks)
    {
        if (Avx512BW.IsSupported)
            return Dot512(w, xq, xd, xsum, blocks);
        if (Avx2.IsSupported)
            return Dot256(w, xq, xd, xsum, blocks);
        return DotScalar(w, xq, xd, xsum, blocks);
    }

    /// <summary>The 8 six-bit scales and 8 mins of a Q4_K block (llama.cpp's utmp trick) as two 8-byte values, one
    /// byte each, in registers: kernels move them to vectors directly (a store and 16-byte reload stalls on store forwarding).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (ulong Scales, ulong Mins) ScalesMins(byte* packed)
    {
        const uint kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
        uint u0 = Unsafe.ReadUnaligned<uint>(packed), u1 = Unsafe.ReadUnaligned<uint>(packed + 4), u2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        ulong scales = (u0 & kmask1) | ((ulong)((u2 & kmask2) | (((u0 >> 6) & kmask3) << 4)) << 32);
        ulong mins = (u1 & kmask1) | ((ulong)(((u2 >> 4) & kmask2) | (((u1 >> 6) & kmask3) << 4)) << 32);
        return (scales, mins);
    }

    private static float Dot512(byte* w, sbyte* xq, float* xd, int* xsum, int blocks)
    {
        Vector512<byte> mask = Vector512.Create((byte)0xF);
        // lanes of the int16 scale vectors: sub-blocks [4h, 4h+2] for low nibbles and [4h+1, 4h+3] for high nibbles
        Vector512<short> idxLo0 = Vector512.Create(Vector256.Create((short)0), Vector256.Create((short)2));
        Vector512<short> idxHi0 = Vector512.Create(Vector256.Create((short)1), Vector256.Create((short)3));
        Vector512<short> idxLo1 = Vector512.Create(Vector256.Create((short)4), Vector256.Create((short)6));
        Vector512<short> idxHi1 = Vector512.Create(Vector256.Create((short)5), Vector256.Create((short)7));
        Vector512<float> acc = Vector512<float>.Zero;
        Vector256<float> mins = Vector256<float>.Zero;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + b * BlockBytes;
            if (Sse.IsSupported)
            {
                // decode streams the weights once: keep DRAM requests in flight ahead of the arithmetic
                Sse.Prefetch0(blk + PrefetchDistance);
                Sse.Prefetch0(blk + PrefetchDistance + 64);
                Sse.Prefetch0(blk + PrefetchDistance + 128);
            }
            (ulong sc, ulong mn) = ScalesMins(blk + 4);
            Vector512<short> scales = Vector128.WidenLower(Vector128.CreateScalar(sc).AsByte()).AsInt16().ToVector256().ToVector512();
            sbyte* x = xq + b * 256;
            Vector512<byte> q0 = Vector512.Load(blk + 16), q1 = Vector512.Load(blk + 80);
            Vector512<short> pl0 = Avx512BW.MultiplyAddAdjacent(q0 & mask, Vector512.Load(x));
            Vector512<short> ph0 = Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(q0.AsUInt16(), 4).AsByte() & mask, Vector512.Load(x + 64));
            Vector512<short> pl1 = Avx512BW.MultiplyAddAdjacent(q1 & mask, Vector512.Load(x + 128));
            Vector512<short> ph1 = Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(q1.AsUInt16(), 4).AsByte() & mask, Vector512.Load(x + 192));
            Vector512<int> isum = Avx512BW.MultiplyAddAdjacent(pl0, Avx512BW.PermuteVar32x16(scales, idxLo0))
                                + Avx512BW.MultiplyAddAdjacent(ph0, Avx512BW.PermuteVar32x16(scales, idxHi0))
                                + Avx512BW.MultiplyAddAdjacent(pl1, Avx512BW.PermuteVar32x16(scales, idxLo1))
                                + Avx512BW.MultiplyAddAdjacent(ph1, Avx512BW.PermuteVar32x16(scales, idxHi1));
            float dx = xd[b];
            acc = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(isum), Vector512.Create(Half16.ToFloat(*(ushort*)blk) * dx), acc);
            // Σ_j m_j · Σ(x of sub-block j), kept as 8 lanes until the end
            Vector256<int> m = Avx2.ConvertToVector256Int32(Vector128.CreateScalar(mn).AsByte());
            mins = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(m * Vector256.Load(xsum + b * 8)),
                                              Vector256.Create(Half16.ToFloat(*(ushort*)(blk + 2)) * dx), mins);
        }
        return Vector512.Sum(acc) - Vector256.Sum(mins);
    }

    private static float Dot256(byte* w, sbyte* xq, float* xd, int* xsum, int blocks)
    {
        Vector256<byte> mask = Vector256.Create((byte)0xF);
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + b * BlockBytes;
            byte* sc = blk + 4;
            Vector256<int> isum = Vector256<int>.Zero;
            int minSum = 0;
            for (int c = 0; c < 4; c++) // chunk c: low nibbles = sub 2c, high = sub 2c+1
            {
                Vector256<byte> q = Vector256.Load(blk + 16 + c * 32);
                Vector256<byte> lo = q & mask, hi = Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & mask;
                int sLo = InputSlot(2 * c), sHi = InputSlot(2 * c + 1);
                (int s0, int m0) = ScaleMin(2 * c, sc);
                (int s1, int m1) = ScaleMin(2 * c + 1, sc);
                Vector256<short> pl = Avx2.MultiplyAddAdjacent(lo, Vector256.Load(xq + b * 256 + sLo * 32));
                Vector256<short> ph = Avx2.MultiplyAddAdjacent(hi, Vector256.Load(xq + b * 256 + sHi * 32));
                isum += Avx2.MultiplyAddAdjacent(pl, Vector256.Create((short)s0)) + Avx2.MultiplyAddAdjacent(ph, Vector256.Create((short)s1));
                minSum += m0 * xsum[b * 8 + 2 * c] + m1 * xsum[b * 8 + 2 * c + 1];
            }
            float d = Half16.ToFloat(*(ushort*)blk), dmin = Half16.ToFloat(*(ushort*)(blk + 2));
            total += xd[b] * (d * Vector256.Sum(isum) - dmin * minSum);
        }
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int InputSlot(int s) => QuantizedInput.PermutedSubBlock(s);

    /// <summary>The scalar definition of <see cref="Dot"/>.</summary>
    public static float DotScalar(byte* w, sbyte* xq, float* xd, int* xsum, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + b * BlockBytes;
            long isum = 0, minSum = 0;
            for (int j = 0; j < 8; j++)
            {
                (int s, int m) = ScaleMin(j, blk + 4);
                int c = j / 2, shift = (j & 1) * 4, slot = InputSlot(j);
                int dot = 0;
                for (int l = 0; l < 32; l++)
                    dot += ((blk[16 + c * 32 + l] >> shift) & 0xF) * xq[b * 256 + slot * 32 + l];
                isum += (long)s * dot;
                minSum += (long)m * xsum[b * 8 + j];
            }
            float d = Half16.ToFloat(*(ushort*)blk), dmin = Half16.ToFloat(*(ushort*)(blk + 2));
            total += xd[b] * (d * isum - dmin * minSum);
        }
        return total;
    }
}
