// llama.cpp block formats used in place (GGUF tensors map straight in) or produced at load:
//   Q8_0 (34 bytes / 32 values): fp16 d, int8 q[32];                      w = d·q
//   Q4_K (144 bytes / 256 values): fp16 d, fp16 dmin, 12 bytes of 6-bit sub-block scales and mins, 128 bytes of
//        nibbles (for each 64 values: low nibbles = first 32, high nibbles = next 32);  w = d·sc_j·q − dmin·m_j
// Products quantize the activations once (QuantizedInput) and accumulate integer dot products per block
// (Q8_0: int8·int8 through int16 vpmaddwd; Q4_K: uint4·int8 through vpmaddubsw then vpmaddwd with the scales),
// scaled to fp32 per block. Each kernel has a scalar reference; Vector512/Vector256 paths are taken when present.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Q8_0 weights: blocks of 32 int8 values with an fp16 scale (llama.cpp block_q8_0).</summary>
public sealed unsafe class Q8_0Matrix : BlockQuantMatrix
{
    public const int BlockValues = 32, BlockBytes = 34;
    private const int PrefetchDistance = 4096;

    public Q8_0Matrix(byte* data, int rows, int cols, object? owner)
        : base(data, rows, cols, BlockValues, BlockBytes, "Q8_0", owner)
    {
    }

    public override WeightFormat Format => WeightFormat.Q8_0;
    public override ActivationFormat InputFormat => ActivationFormat.Q8;
    public static long RowBytes(int cols) => (long)cols / BlockValues * BlockBytes;


    /// <summary>Quantizes fp32 rows [rows, cols] into a new Q8_0 matrix (round half away from zero, as llama.cpp).</summary>
    public static Q8_0Matrix Quantize(WeightMatrix src, List<IDisposable> owners)
    {
        NativeBuffer buf = QuantizeRows(src, RowBytes(src.Cols), QuantizeRow, owners);
        return new Q8_0Matrix(buf.Pointer, src.Rows, src.Cols, buf);
    }

    /// <summary>Writes one row of blocks.</summary>
    public static void QuantizeRow(ReadOnlySpan<float> x, byte* dst)
    {
        for (int b = 0; b < x.Length / BlockValues; b++)
        {
            ReadOnlySpan<float> v = x.Slice(b * BlockValues, BlockValues);
            float amax = 0;
            foreach (float f in v)
                amax = Math.Max(amax, MathF.Abs(f));
            float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
            byte* blk = dst + b * BlockBytes;
            *(ushort*)blk = Half16.FromFloat(d);
            for (int i = 0; i < BlockValues; i++)
                ((sbyte*)(blk + 2))[i] = (sbyte)MathF.Round(v[i] * id, MidpointRounding.AwayFromZero);
        }
    }

    public override void ReadRow(int row, Span<float> dst)
    {
        if (dst.Length < Cols)
            throw new ArgumentException($"ReadRow: destination has {dst.Length} values, the row {Cols}", nameof(dst));
        byte* p = RowPointer(row);
        for (int b = 0; b < Cols / BlockValues; b++)
        {
            byte* blk = p + b * BlockBytes;
            Ops.DequantizeInt8(new ReadOnlySpan<sbyte>(blk + 2, BlockValues), Half16.ToFloat(*(ushort*)blk), dst.Slice(b * BlockValues, BlockValues));
        }
    }

    /// <summary>y[c] += Σ_i x[i]·d_b·q[i, c] (W_UK of absorbed attention, a band of rows per head): each row's blocks
    /// are widened and accumulated into y with x[i]·d_b folded into one multiplier per block.</summary>
    public override void MatVecTransposedAdd(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        if (x.Length < rowCount || y.Length < Cols)
            throw new ArgumentException("MatVecTransposedAdd: buffer too small");
        if (!Vector512.IsHardwareAccelerated)
        {
            base.MatVecTransposedAdd(x, y, rowStart, rowCount);
            return;
        }
        int blocks = Cols / BlockValues;
        fixed (float* yp = y)
        {
            for (int i = 0; i < rowCount; i++)
            {
                byte* p = RowPointer(rowStart + i);
                float a = x[i];
                for (int b = 0; b < blocks; b++)
                {
                    byte* blk = p + b * BlockBytes;
                    Vector512<float> s = Vector512.Create(a * Half16.ToFloat(*(ushort*)blk));
                    float* yb = yp + b * BlockValues;
                    Vector512<float> q0 = Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)(blk + 2))));
                    Vector512<float> q1 = Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)(blk + 18))));
                    Vector512.FusedMultiplyAdd(q0, s, Vector512.Load(yb)).Store(yb);
                    Vector512.FusedMultiplyAdd(q1, s, Vector512.Load(yb + 16)).Store(yb + 16);
                }
            }
        }
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        if (x.Format != ActivationFormat.Q8 || x.Cols != Cols)
            throw new ArgumentException("Q8_0 product needs Q8 activations of the same width");
        int blocks = Cols / BlockValues, T = x.Tokens;
        fixed (short* xq = x.Q16Array)
        fixed (float* xs = x.ScaleArray)
        fixed (float* yp = y)
        {
            int i = 0;
            if (Avx512BW.IsSupported && T >= 4)
            {
                // 4 rows x 4 tokens per tile: each weight block is widened once for 4 tokens, each activation
                // block loaded once for 4 rows; 16 accumulators stay in registers. The 4 rows' block scales are
                // converted once per row group, for all token groups.
                float[] scaleBuf = RowScratch(4 * blocks); // not used by anything this product calls
                fixed (float* ds = scaleBuf)
                {
                    for (; i + 4 <= rowCount; i += 4)
                    {
                        for (int k = 0; k < 4; k++)
                            Half16.ToFloatStrided(RowPointer(rowStart + i + k), BlockBytes, blocks, ds + k * blocks);
                        int t = 0;
                        for (; t + 4 <= T; t += 4)
                            Tile4x4(RowPointer(rowStart + i), BytesPerRow, ds, xq + (long)t * Cols, Cols, xs + (long)t * blocks, blocks, yp + (long)t * ldy + i, ldy);
                        for (; t < T; t++)
                        {
                            for (int k = 0; k < 4; k++)
                                yp[(long)t * ldy + i + k] = Dot(RowPointer(rowStart + i + k), xq + (long)t * Cols, xs + (long)t * blocks, blocks);
                        }
                    }
                }
            }
            if (T == 1 && Avx512BW.IsSupported)
            {
                // one token (decode): rows from the two halves of the range in turn, two memory streams (as the
                // interleaved Q4_K product)
                int half = (rowCount - i) / 2;
                for (int k = 0; k < half; k++)
                    DotPair(RowPointer(rowStart + i + k), RowPointer(rowStart + i + half + k), xq, xs, blocks, yp + i + k, yp + i + half + k);
                i += 2 * half;
            }
            for (; i < rowCount; i++)
            {
                byte* w = RowPointer(rowStart + i);
                for (int t = 0; t < T; t++)
                    yp[(long)t * ldy + i] = Dot(w, xq + (long)t * Cols, xs + (long)t * blocks, blocks);
            }
        }
    }

    /// <summary>y[t, r] for 4 rows (stride rowBytes, block scales ds [4, sStride] as fp32) and 4 tokens (stride xStride values, sStride scales).</summary>
    private static void Tile4x4(byte* w, long rowBytes, float* ds, short* xq, int xStride, float* xs, int sStride, float* y, int ldy)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        for (int b = 0; b < sStride; b++)
        {
            long o = (long)b * BlockBytes;
            Vector512<short> q0 = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w0 + o + 2)));
            Vector512<short> q1 = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w1 + o + 2)));
            Vector512<short> q2 = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w2 + o + 2)));
            Vector512<short> q3 = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w3 + o + 2)));
            Vector512<float> d0 = Vector512.Create(ds[b]), d1 = Vector512.Create(ds[sStride + b]);
            Vector512<float> d2 = Vector512.Create(ds[2 * sStride + b]), d3 = Vector512.Create(ds[3 * sStride + b]);
            short* xb = xq + b * BlockValues;
            Vector512<short> x0 = Vector512.Load(xb), x1 = Vector512.Load(xb + xStride);
            Vector512<short> x2 = Vector512.Load(xb + 2 * xStride), x3 = Vector512.Load(xb + 3 * xStride);
            a00 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q0, x0)), d0, a00);
            a01 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q0, x1)), d0, a01);
            a02 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q0, x2)), d0, a02);
            a03 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q0, x3)), d0, a03);
            a10 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q1, x0)), d1, a10);
            a11 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q1, x1)), d1, a11);
            a12 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q1, x2)), d1, a12);
            a13 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q1, x3)), d1, a13);
            a20 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q2, x0)), d2, a20);
            a21 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q2, x1)), d2, a21);
            a22 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q2, x2)), d2, a22);
            a23 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q2, x3)), d2, a23);
            a30 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q3, x0)), d3, a30);
            a31 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q3, x1)), d3, a31);
            a32 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q3, x2)), d3, a32);
            a33 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(q3, x3)), d3, a33);
        }
        float s0 = xs[0], s1 = xs[sStride], s2 = xs[2 * sStride], s3 = xs[3 * sStride];
        y[0] = Vector512.Sum(a00) * s0; y[1] = Vector512.Sum(a10) * s0; y[2] = Vector512.Sum(a20) * s0; y[3] = Vector512.Sum(a30) * s0;
        y += ldy;
        y[0] = Vector512.Sum(a01) * s1; y[1] = Vector512.Sum(a11) * s1; y[2] = Vector512.Sum(a21) * s1; y[3] = Vector512.Sum(a31) * s1;
        y += ldy;
        y[0] = Vector512.Sum(a02) * s2; y[1] = Vector512.Sum(a12) * s2; y[2] = Vector512.Sum(a22) * s2; y[3] = Vector512.Sum(a32) * s2;
        y += ldy;
        y[0] = Vector512.Sum(a03) * s3; y[1] = Vector512.Sum(a13) * s3; y[2] = Vector512.Sum(a23) * s3; y[3] = Vector512.Sum(a33) * s3;
    }

    /// <summary>Σ_b d_w[b]·d_x[b]·Σ_i q_w[b,i]·q_x[b,i] over one row (Q8 inputs: d_x equal for every block).</summary>
    public static float Dot(byte* w, short* xq, float* xs, int blocks)
    {
        // Q8 activations share one scale per token (xs[0] of the row): only the weight scales vary per block
        if (Avx512BW.IsSupported)
        {
            // four blocks per step with independent accumulators: the FMA chain no longer bounds the loop
            Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            int b = 0;
            for (; b + 4 <= blocks; b += 4)
            {
                byte* k = w + b * BlockBytes;
                short* xb = xq + b * BlockValues;
                // decode streams the weights once: keep DRAM requests in flight ahead of the arithmetic
                // (measured: 1.4-1.6x on rows read from memory, none on rows in cache)
                Sse.Prefetch0(k + PrefetchDistance);
                Sse.Prefetch0(k + PrefetchDistance + 64);
                Sse.Prefetch0(k + PrefetchDistance + 128);
                a0 = BlockFma(k, xb, a0);
                a1 = BlockFma(k + BlockBytes, xb + 32, a1);
                a2 = BlockFma(k + 2 * BlockBytes, xb + 64, a2);
                a3 = BlockFma(k + 3 * BlockBytes, xb + 96, a3);
            }
            for (; b < blocks; b++)
                a0 = BlockFma(w + b * BlockBytes, xq + b * BlockValues, a0);
            return Vector512.Sum((a0 + a1) + (a2 + a3)) * xs[0];
        }
        if (Avx2.IsSupported)
        {
            Vector256<float> acc = Vector256<float>.Zero;
            for (int b = 0; b < blocks; b++)
            {
                byte* blk = w + b * BlockBytes;
                Vector256<short> w0 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + 2)));
                Vector256<short> w1 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + 18)));
                Vector256<int> p = Avx2.Add(Avx2.MultiplyAddAdjacent(w0, Vector256.Load(xq + b * BlockValues)),
                                            Avx2.MultiplyAddAdjacent(w1, Vector256.Load(xq + b * BlockValues + 16)));
                acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(Half16.ToFloat(*(ushort*)blk)), acc);
            }
            return Vector256.Sum(acc) * xs[0];
        }
        return DotScalar(w, xq, xs, blocks);
    }

    /// <summary>acc + d_w·Σ q_w·q_x over one block (32 int8 weights widened against 32 int16 activations). Needs AVX-512BW.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> BlockFma(byte* blk, short* x, Vector512<float> acc)
    {
        Vector512<int> p = Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(blk + 2))), Vector512.Load(x));
        return Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p), Vector512.Create(Half16.ToFloat(*(ushort*)blk)), acc);
    }

    /// <summary><see cref="Dot"/> of two rows against one token, two blocks of each in turn. Needs AVX-512BW.</summary>
    private static void DotPair(byte* w0, byte* w1, short* xq, float* xs, int blocks, float* y0, float* y1)
    {
        Vector512<float> a0 = Vector512<float>.Zero, a1 = a0, b0 = a0, b1 = a0;
        int b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            long o = (long)b * BlockBytes;
            short* xb = xq + b * BlockValues;
            Sse.Prefetch0(w0 + o + PrefetchDistance);
            Sse.Prefetch0(w1 + o + PrefetchDistance);
            a0 = BlockFma(w0 + o, xb, a0);
            a1 = BlockFma(w0 + o + BlockBytes, xb + 32, a1);
            b0 = BlockFma(w1 + o, xb, b0);
            b1 = BlockFma(w1 + o + BlockBytes, xb + 32, b1);
        }
        for (; b < blocks; b++)
        {
            long o = (long)b * BlockBytes;
            a0 = BlockFma(w0 + o, xq + b * BlockValues, a0);
            b0 = BlockFma(w1 + o, xq + b * BlockValues, b0);
        }
        *y0 = Vector512.Sum(a0 + a1) * xs[0];
        *y1 = Vector512.Sum(b0 + b1) * xs[0];
    }

    /// <summary>The scalar definition of <see cref="Dot"/>.</summary>
    public static float DotScalar(byte* w, short* xq, float* xs, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + b * BlockBytes;
            sbyte* q = (sbyte*)(blk + 2);
            int isum = 0;
            for (int i = 0; i < BlockValues; i++)
                isum += q[i] * xq[b * BlockValues + i];
            sum += isum * (Half16.ToFloat(*(ushort*)blk) * xs[b]);
        }
        return sum;
    }
}

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
                for (int i = 0; i < rowCount; i++)
                {
                    byte* w = RowPointer(rowStart + i);
                    int t = 0;
                    for (; t + 4 <= T; t += 4)
                        Q4KVnni.Dot4(w, xq + (long)t * Cols, Cols, xd + (long)t * blocks, xsum16 + (long)t * blocks * 8, blocks, yp + (long)t * ldy + i, ldy);
                    for (; t < T; t++)
                        yp[(long)t * ldy + i] = Q4KVnni.Dot(w, xq + (long)t * Cols, xd + (long)t * blocks, xsum16 + (long)t * blocks * 8, blocks);
                }
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

/// <summary>
/// Weights whose products take quantized activations (<see cref="WeightMatrix.InputFormat"/>): the float entry points
/// quantize their input into a per-thread buffer and run <see cref="WeightMatrix.MatMulQuantized"/>; a single row's
/// dot product goes through the dequantized row.
/// </summary>
public abstract class QuantizedProductMatrix : WeightMatrix
{
    protected QuantizedProductMatrix(int rows, int cols) : base(rows, cols)
    {
    }

    public override float DotRow(int row, ReadOnlySpan<float> x)
    {
        Span<float> tmp = RowScratch(Cols).AsSpan(0, Cols);
        ReadRow(row, tmp);
        return System.Numerics.Tensors.TensorPrimitives.Dot(tmp, x.Slice(0, Cols));
    }

    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount) => MatMul(x, 1, y, rowCount, rowStart, rowCount);

    /// <summary>Quantizes the input into a per-thread buffer, then runs the integer product.</summary>
    protected override void MatMulUnpacked(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        QuantizedInput q = InputScratch.Input;
        q.Quantize(InputFormat, x, tokens, Cols);
        MatMulQuantized(q, y, ldy, rowStart, rowCount);
    }
}

/// <summary>
/// Common part of the llama.cpp block formats: rows of fixed-size blocks over a <c>byte*</c> (a memory-mapped
/// GGUF tensor or a native buffer kept alive by the owner), products through quantized activations.
/// </summary>
public abstract unsafe class BlockQuantMatrix : QuantizedProductMatrix
{
    private readonly byte* _data;
    private readonly object? _owner;

    protected BlockQuantMatrix(byte* data, int rows, int cols, int blockValues, int blockBytes, string formatName, object? owner)
        : base(rows, cols)
    {
        if (cols % blockValues != 0)
            throw new ArgumentException($"{formatName} needs a multiple of {blockValues} columns, got {cols}");
        _data = data;
        _owner = owner;
        BytesPerRow = (long)cols / blockValues * blockBytes;
    }

    /// <summary>Bytes of one row of blocks.</summary>
    public long BytesPerRow { get; }

    public override long ByteSize => BytesPerRow * Rows;

    internal object? Owner => _owner;

    /// <summary>Pointer to row r's blocks.</summary>
    public byte* RowPointer(int r) => _data + r * BytesPerRow;

    /// <summary>Writes one row of blocks from fp32 values.</summary>
    public delegate void RowQuantizer(ReadOnlySpan<float> values, byte* destination);

    /// <summary>A native buffer holding <paramref name="src"/> quantized row by row.</summary>
    protected static NativeBuffer QuantizeRows(WeightMatrix src, long rowBytes, RowQuantizer quantizeRow, List<IDisposable> owners)
    {
        var buf = new NativeBuffer(rowBytes * src.Rows);
        owners.Add(buf);
        var row = new float[src.Cols];
        for (int r = 0; r < src.Rows; r++)
        {
            src.ReadRow(r, row);
            quantizeRow(row, buf.Pointer + r * rowBytes);
        }
        return buf;
    }
}

/// <summary>Per-thread scratch for kernels that quantize their input themselves.</summary>
internal static class InputScratch
{
    [ThreadStatic] private static QuantizedInput? t_input;

    public static QuantizedInput Input => t_input ??= new QuantizedInput();
}
