// Q8_0, a llama.cpp block format used in place (GGUF tensors map straight in) or produced at load:
//   34 bytes / 32 values: fp16 d, int8 q[32];  w = d·q
// Products quantize the activations once (QuantizedInput) and accumulate int8·int8 dot products per block through
// int16 vpmaddwd, scaled to fp32 per block. Each kernel has a scalar reference; Vector512/Vector256 paths are taken when present.
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
                // one token (decode): two rows at a time from two memory streams (as the interleaved Q4_K product)
                i = RowPairs(new Pair(xq, xs, blocks, yp), rowStart, i, rowCount);
            }
            if (!Avx512BW.IsSupported && Avx2.IsSupported && Fma.IsSupported)
            {
                if (T == 1)
                {
                    // one token (decode): rows from the two halves of the range in turn, two memory streams
                    int half = rowCount / 2;
                    for (int k = 0; k < half; k++)
                        DotPairAvx2(RowPointer(rowStart + k), RowPointer(rowStart + half + k), xq, xs, blocks, yp + k, yp + half + k);
                    i = 2 * half;
                }
                else
                {
                    for (; i + 2 <= rowCount; i += 2)
                    {
                        byte* w0 = RowPointer(rowStart + i), w1 = RowPointer(rowStart + i + 1);
                        int t = 0;
                        for (; t + 2 <= T; t += 2)
                            Tile2x2Avx2(w0, w1, xq + (long)t * Cols, Cols, xs + (long)t * blocks, blocks, blocks, yp + (long)t * ldy + i, ldy, t == 0);
                        if (t < T)
                            DotPairAvx2(w0, w1, xq + (long)t * Cols, xs + (long)t * blocks, blocks, yp + (long)t * ldy + i, yp + (long)t * ldy + i + 1);
                    }
                }
            }
            for (; i < rowCount; i++)
            {
                byte* w = RowPointer(rowStart + i);
                for (int t = 0; t < T; t++)
                    yp[(long)t * ldy + i] = Dot(w, xq + (long)t * Cols, xs + (long)t * blocks, blocks);
            }
        }
    }

    private readonly struct Pair(short* xq, float* xs, int blocks, float* y) : IRowPair
    {
        public void Run(byte* w0, byte* w1, int i0, int i1) => DotPair(w0, w1, xq, xs, blocks, y + i0, y + i1);
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
        // the sixteen lane sums reduced together in Vector512.Sum's order (HorizontalSums.Sum16), each times its token's scale
        Vector512<float> sums = HorizontalSums.Sum16(a00, a10, a20, a30, a01, a11, a21, a31, a02, a12, a22, a32, a03, a13, a23, a33)
            * Vector512.Create(Vector256.Create(Vector128.Create(xs[0]), Vector128.Create(xs[sStride])),
                               Vector256.Create(Vector128.Create(xs[2 * sStride]), Vector128.Create(xs[3 * sStride])));
        sums.GetLower().GetLower().Store(y);
        sums.GetLower().GetUpper().Store(y + ldy);
        sums.GetUpper().GetLower().Store(y + 2 * ldy);
        sums.GetUpper().GetUpper().Store(y + 3 * ldy);
    }

    /// <summary>Σ_b d_w[b]·d_x[b]·Σ_i q_w[b,i]·q_x[b,i] over one row (Q8 inputs: d_x equal for every block).</summary>
    public static float Dot(byte* w, short* xq, float* xs, int blocks)
    {
        // Q8 activations share one scale per token (xs[0] of the row): only the weight scales vary per block
        if (Avx512BW.IsSupported)
        {
            // one accumulator, blocks in order: the (row, token) sum of Tile4x4 and DotPair too, so a token's
            // products do not depend on the batch it came in
            Vector512<float> acc = Vector512<float>.Zero;
            for (int b = 0; b < blocks; b++)
            {
                // decode streams the weights once: keep DRAM requests in flight ahead of the arithmetic
                // (measured: 1.4-1.6x on rows read from memory, none on rows in cache)
                Sse.Prefetch0(w + b * BlockBytes + PrefetchDistance);
                acc = BlockFma(w + b * BlockBytes, xq + b * BlockValues, acc);
            }
            return Vector512.Sum(acc) * xs[0];
        }
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            // one accumulator, blocks in order: the (row, token) sum of Tile2x2Avx2 and DotPairAvx2 too
            Vector256<float> acc = Vector256<float>.Zero;
            for (int b = 0; b < blocks; b++)
                acc = BlockFma256(w + b * BlockBytes, xq + b * BlockValues, acc);
            return Vector256.Sum(acc) * xs[0];
        }
        return DotScalar(w, xq, xs, blocks);
    }

    /// <summary>acc + d_w·Σ q_w·q_x over one block, 256 bits wide. Needs AVX2 and FMA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockFma256(byte* blk, short* x, Vector256<float> acc)
    {
        Vector256<short> w0 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + 2)));
        Vector256<short> w1 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + 18)));
        Vector256<int> p = Avx2.Add(Avx2.MultiplyAddAdjacent(w0, Vector256.Load(x)), Avx2.MultiplyAddAdjacent(w1, Vector256.Load(x + 16)));
        return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(Half16.ToFloat(*(ushort*)blk)), acc);
    }

    /// <summary><see cref="Dot"/> of two rows against one token on AVX2 (decode: two memory streams, weights requested
    /// 4 KB ahead), each row's sum formed as Dot forms it.</summary>
    private static void DotPairAvx2(byte* w0, byte* w1, short* xq, float* xs, int blocks, float* y0, float* y1)
    {
        Vector256<float> a = Vector256<float>.Zero, b = a;
        for (int k = 0; k < blocks; k++)
        {
            long o = (long)k * BlockBytes;
            if ((k & 1) == 0)
            {
                Sse.Prefetch0(w0 + o + PrefetchDistance);
                Sse.Prefetch0(w1 + o + PrefetchDistance);
            }
            a = BlockFma256(w0 + o, xq + k * BlockValues, a);
            b = BlockFma256(w1 + o, xq + k * BlockValues, b);
        }
        *y0 = Vector256.Sum(a) * xs[0];
        *y1 = Vector256.Sum(b) * xs[0];
    }

    /// <summary>Two rows against two tokens on AVX2 (x1 = x0 + xStride, s1 = s0 + sStride): each row's blocks widened
    /// once for both tokens, each activation block loaded once for both rows; every (row, token) sum formed as
    /// <see cref="Dot"/> forms it. y[t·ldy + r].</summary>
    private static void Tile2x2Avx2(byte* w0, byte* w1, short* x0, int xStride, float* s0, int sStride, int blocks, float* y, int ldy, bool prefetch)
    {
        Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default;
        short* x1 = x0 + xStride;
        for (int k = 0; k < blocks; k++)
        {
            long o = (long)k * BlockBytes;
            if (prefetch)
            {
                Sse.Prefetch0(w0 + o + PrefetchDistance);
                Sse.Prefetch0(w1 + o + PrefetchDistance);
            }
            short* xa = x0 + k * BlockValues, xb = x1 + k * BlockValues;
            Vector256<short> xa0 = Vector256.Load(xa), xa1 = Vector256.Load(xa + 16), xb0 = Vector256.Load(xb), xb1 = Vector256.Load(xb + 16);
            byte* blk = w0 + o;
            Vector256<short> q0 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + 2)));
            Vector256<short> q1 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + 18)));
            Vector256<float> d = Vector256.Create(Half16.ToFloat(*(ushort*)blk));
            a00 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Avx2.Add(Avx2.MultiplyAddAdjacent(q0, xa0), Avx2.MultiplyAddAdjacent(q1, xa1))), d, a00);
            a01 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Avx2.Add(Avx2.MultiplyAddAdjacent(q0, xb0), Avx2.MultiplyAddAdjacent(q1, xb1))), d, a01);
            blk = w1 + o;
            q0 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + 2)));
            q1 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + 18)));
            d = Vector256.Create(Half16.ToFloat(*(ushort*)blk));
            a10 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Avx2.Add(Avx2.MultiplyAddAdjacent(q0, xa0), Avx2.MultiplyAddAdjacent(q1, xa1))), d, a10);
            a11 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Avx2.Add(Avx2.MultiplyAddAdjacent(q0, xb0), Avx2.MultiplyAddAdjacent(q1, xb1))), d, a11);
        }
        float sa = s0[0], sb = s0[sStride];
        y[0] = Vector256.Sum(a00) * sa;
        y[1] = Vector256.Sum(a10) * sa;
        y[ldy] = Vector256.Sum(a01) * sb;
        y[ldy + 1] = Vector256.Sum(a11) * sb;
    }

    /// <summary>acc + d_w·Σ q_w·q_x over one block (32 int8 weights widened against 32 int16 activations). Needs AVX-512BW.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> BlockFma(byte* blk, short* x, Vector512<float> acc)
    {
        Vector512<int> p = Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(blk + 2))), Vector512.Load(x));
        return Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(p), Vector512.Create(Half16.ToFloat(*(ushort*)blk)), acc);
    }

    /// <summary><see cref="Dot"/> of two rows against one token (each row's sum formed as Dot forms it; the two
    /// rows are the independent chains). Needs AVX-512BW.</summary>
    private static void DotPair(byte* w0, byte* w1, short* xq, float* xs, int blocks, float* y0, float* y1)
    {
        Vector512<float> a = Vector512<float>.Zero, c = a;
        for (int b = 0; b < blocks; b++)
        {
            long o = (long)b * BlockBytes;
            short* xb = xq + b * BlockValues;
            if ((b & 1) == 0)
            {
                Sse.Prefetch0(w0 + o + PrefetchDistance);
                Sse.Prefetch0(w1 + o + PrefetchDistance);
            }
            a = BlockFma(w0 + o, xb, a);
            c = BlockFma(w1 + o, xb, c);
        }
        *y0 = Vector512.Sum(a) * xs[0];
        *y1 = Vector512.Sum(c) * xs[0];
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
