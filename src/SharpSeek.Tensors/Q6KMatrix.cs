// Q6_K, a llama.cpp block format used in place from GGUF files (ggml-common.h, ggml-quants.c):
//   Q6_K (210 bytes / 256 values): uint8 ql[128] (low 4 bits), uint8 qh[64] (high 2 bits), int8 scales[16], fp16 d;
//        value v = d · scales[v / 16] · (q6(v) − 32), where for v = 128h + 32k + l (h < 2, k < 4, l < 32)
//        q6 = nibble (k < 2: low, else high) of ql[64h + 32(k & 1) + l] | ((qh[32h + l] >> 2k) & 3) << 4
// Q6_K multiplies Q8K activations (QuantizedInput: int8 per 256 with the [0, 2, 1, 3] sub-block order per 128),
// accumulating integer products per block as llama.cpp's vec_dot_q6_K_q8_K does. Each kernel has a scalar reference (DotScalar).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Q6_K weights: super-blocks of 256 6-bit values with int8 scales per 16 (llama.cpp block_q6_K).</summary>
public sealed unsafe class Q6KMatrix : BlockQuantMatrix
{
    public const int BlockValues = 256, BlockBytes = 210;
    private const int QhOffset = 128, ScalesOffset = 192, DOffset = 208;

    public Q6KMatrix(byte* data, int rows, int cols, object? owner)
        : base(data, rows, cols, BlockValues, BlockBytes, "Q6_K", owner)
    {
    }

    public override WeightFormat Format => WeightFormat.Q6_K;
    public override ActivationFormat InputFormat => ActivationFormat.Q8K;
    public static long RowBytes(int cols) => (long)cols / BlockValues * BlockBytes;


    /// <summary>The 6-bit code (0..63) of value v (0..255) of a block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Code(byte* blk, int v)
    {
        int h = v >> 7, k = (v >> 5) & 3, l = v & 31;
        int ql = blk[64 * h + 32 * (k & 1) + l];
        int lo = k < 2 ? ql & 0xF : ql >> 4;
        int hi = (blk[QhOffset + 32 * h + l] >> (2 * k)) & 3;
        return lo | hi << 4;
    }

    /// <summary>Quantizes a matrix into Q6_K blocks (llama.cpp quantize_row_q6_K_ref).</summary>
    public static Q6KMatrix Quantize(WeightMatrix src, List<IDisposable> owners)
    {
        NativeBuffer buf = QuantizeRows(src, RowBytes(src.Cols), QuantizeRow, owners);
        return new Q6KMatrix(buf.Pointer, src.Rows, src.Cols, buf);
    }

    /// <summary>
    /// Writes one row of blocks as llama.cpp's quantize_row_q6_K_ref does: per 16 values a weighted least-squares
    /// scale (make_qx_quants, nmax 32, weights x²), the 16 scales quantized to int8 against d = max scale / −128,
    /// then the values re-quantized to [−32, 31] with the stored scales.
    /// </summary>
    public static void QuantizeRow(ReadOnlySpan<float> x, byte* dst)
    {
        if (x.Length % BlockValues != 0)
            throw new ArgumentException($"Q6_K rows need a multiple of {BlockValues} values, got {x.Length}");
        Span<sbyte> L = stackalloc sbyte[BlockValues];
        Span<float> scales = stackalloc float[16];
        for (int b = 0; b < x.Length / BlockValues; b++)
        {
            ReadOnlySpan<float> v = x.Slice(b * BlockValues, BlockValues);
            byte* blk = dst + (long)b * BlockBytes;
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ib++)
            {
                float scale = MakeQxQuants(v.Slice(16 * ib, 16), 32, L.Slice(16 * ib, 16));
                scales[ib] = scale;
                if (MathF.Abs(scale) > maxAbsScale)
                {
                    maxAbsScale = MathF.Abs(scale);
                    maxScale = scale;
                }
            }
            new Span<byte>(blk, BlockBytes).Clear();
            if (maxAbsScale < 1e-15f)
                continue;
            float iscale = -128f / maxScale;
            ushort dBits = Half16.FromFloat(1 / iscale);
            *(ushort*)(blk + DOffset) = dBits;
            sbyte* sc = (sbyte*)(blk + ScalesOffset);
            for (int ib = 0; ib < 16; ib++)
                sc[ib] = (sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
            float dStored = Half16.ToFloat(dBits);
            for (int j = 0; j < 16; j++)
            {
                float d = dStored * sc[j];
                if (d == 0)
                    continue;
                for (int i = 0; i < 16; i++)
                {
                    int l = Math.Clamp(NearestInt(v[16 * j + i] / d), -32, 31);
                    L[16 * j + i] = (sbyte)(l + 32);
                }
            }
            for (int h = 0; h < 2; h++)
            {
                byte* ql = blk + 64 * h, qh = blk + QhOffset + 32 * h;
                for (int l = 0; l < 32; l++)
                {
                    int q1 = L[128 * h + l], q2 = L[128 * h + l + 32], q3 = L[128 * h + l + 64], q4 = L[128 * h + l + 96];
                    ql[l] = (byte)((q1 & 0xF) | (q3 & 0xF) << 4);
                    ql[l + 32] = (byte)((q2 & 0xF) | (q4 & 0xF) << 4);
                    qh[l] = (byte)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
                }
            }
        }
    }

    /// <summary>llama.cpp make_qx_quants with rmse_type 1: returns the scale, L holds codes + nmax.</summary>
    private static float MakeQxQuants(ReadOnlySpan<float> x, int nmax, Span<sbyte> L)
    {
        float max = 0, amax = 0;
        foreach (float f in x)
        {
            if (MathF.Abs(f) > amax)
            {
                amax = MathF.Abs(f);
                max = f;
            }
        }
        if (amax < 1e-15f)
        {
            L.Clear();
            return 0;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0)
                continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < x.Length; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < x.Length; i++)
                    L[i] = (sbyte)(nmax + Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>Round to nearest, ties to even (llama.cpp nearest_int).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int NearestInt(float f) => (int)MathF.Round(f, MidpointRounding.ToEven);

    public override void ReadRow(int row, Span<float> dst)
    {
        byte* p = RowPointer(row);
        if (Avx2.IsSupported && dst.Length >= Cols)
        {
            // the codes of 32 values per vector (Q6KVnni.Codes), widened 8 at a time: the same d·sc·(code − 32) as below
            fixed (float* dp = dst)
            {
                for (int b = 0; b < Cols / BlockValues; b++)
                {
                    byte* blk = p + (long)b * BlockBytes;
                    float d = Half16.ToFloat(*(ushort*)(blk + DOffset));
                    sbyte* sc = (sbyte*)(blk + ScalesOffset);
                    float* o = dp + b * BlockValues;
                    for (int h = 0; h < 2; h++)
                    {
                        Q6KVnni.Codes(blk, h, out var c0, out var c1, out var c2, out var c3);
                        Dequantize32(c0, d * sc[8 * h], d * sc[8 * h + 1], o + 128 * h);
                        Dequantize32(c1, d * sc[8 * h + 2], d * sc[8 * h + 3], o + 128 * h + 32);
                        Dequantize32(c2, d * sc[8 * h + 4], d * sc[8 * h + 5], o + 128 * h + 64);
                        Dequantize32(c3, d * sc[8 * h + 6], d * sc[8 * h + 7], o + 128 * h + 96);
                    }
                }
            }
            return;
        }
        for (int b = 0; b < Cols / BlockValues; b++)
        {
            byte* blk = p + (long)b * BlockBytes;
            float d = Half16.ToFloat(*(ushort*)(blk + DOffset));
            sbyte* sc = (sbyte*)(blk + ScalesOffset);
            for (int v = 0; v < BlockValues; v++)
                dst[b * BlockValues + v] = d * sc[v >> 4] * (Code(blk, v) - 32);
        }
    }

    // dst[0..32) = (code − 32)·s for 32 codes: s0 for the first 16, s1 for the last 16
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dequantize32(Vector256<byte> codes, float s0, float s1, float* dst)
    {
        Vector256<int> off = Vector256.Create(32);
        Vector128<byte> lo = codes.GetLower(), hi = codes.GetUpper();
        Vector256<float> a = Vector256.Create(s0), b = Vector256.Create(s1);
        (Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(lo) - off) * a).Store(dst);
        (Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(lo, 8)) - off) * a).Store(dst + 8);
        (Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(hi) - off) * b).Store(dst + 16);
        (Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(hi, 8)) - off) * b).Store(dst + 24);
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        CheckQuantizedProduct(x, ActivationFormat.Q8K, y.Length, ldy, rowStart, rowCount, "Q6_K");
        int blocks = Cols / BlockValues, T = x.Tokens;
        fixed (sbyte* xq = x.Q8Array)
        fixed (float* xd = x.ScaleArray)
        fixed (short* gs = x.GroupSumArray)
        fixed (float* yp = y)
        {
            if (Q6KVnni.IsSupported)
            {
                // one token (decode): two rows at a time from two memory streams
                int i = T == 1 ? RowPairs(new VnniPair(xq, xd, gs, blocks, yp), rowStart, 0, rowCount) : 0;
                // a row at a time against tiles of up to four tokens (codes and scales unpacked once per tile)
                RowTiles(new Q8KTiles<Q6KVnni.Tile>(xq, xd, gs, Cols, yp, ldy), rowStart, i, rowCount, T);
                return;
            }
            if (Avx512BW.IsSupported)
            {
                // each token's activations laid out once per product for the 512-bit kernels (Prepare512)
                int perToken = blocks * PreparedBlockBytes;
                byte[] prepared = PreparedScratch((long)T * perToken);
                fixed (byte* xe = prepared)
                {
                    for (int t = 0; t < T; t++)
                        Prepare512(xq + (long)t * Cols, blocks, xe + (long)t * perToken);
                    for (int i = 0; i < rowCount; i++)
                    {
                        byte* w = RowPointer(rowStart + i);
                        if (T == 1)
                        {
                            Dot512Tile<Tokens1>(w, xe, perToken, xd, blocks, yp + i, ldy, prefetch: true); // decode
                            continue;
                        }
                        int t = 0;
                        for (; t + 4 <= T; t += 4)
                            Dot512Tile<Tokens4>(w, xe + (long)t * perToken, perToken, xd + (long)t * blocks, blocks, yp + (long)t * ldy + i, ldy);
                        byte* xt = xe + (long)t * perToken;
                        float* dt = xd + (long)t * blocks, yt = yp + (long)t * ldy + i;
                        switch (T - t)
                        {
                            case 3: Dot512Tile<Tokens3>(w, xt, perToken, dt, blocks, yt, ldy); break;
                            case 2: Dot512Tile<Tokens2>(w, xt, perToken, dt, blocks, yt, ldy); break;
                            case 1: Dot512Tile<Tokens1>(w, xt, perToken, dt, blocks, yt, ldy); break;
                        }
                    }
                }
                return;
            }
            for (int i = 0; i < rowCount; i++)
            {
                byte* w = RowPointer(rowStart + i);
                for (int t = 0; t < T; t++)
                    yp[(long)t * ldy + i] = Dot(w, xq + (long)t * Cols, xd + (long)t * blocks, blocks);
            }
        }
    }

    // Prepared activations of one super-block for the 512-bit kernels, per 128-value half h: the half's values 0..63
    // and 64..127 in natural order (x01, x23: one load each, where Q8K's slot order [0, 2, 1, 3] needs two), then
    // vpmaddubsw(32, x01) and vpmaddubsw(32, x23) (the codes' −32 offset, the same int16 pair sums the kernels
    // subtracted before, now formed once per token instead of once per row)
    private const int PreparedBlockBytes = 512;

    [ThreadStatic] private static byte[]? t_prepared;

    private static byte[] PreparedScratch(long bytes)
    {
        byte[]? b = t_prepared;
        if (b == null || b.Length < bytes)
            t_prepared = b = new byte[Math.Max(bytes, 4096)];
        return b;
    }

    /// <summary>Lays out one token's Q8K activations (blocks super-blocks) for <see cref="Dot512Tile"/>.</summary>
    private static void Prepare512(sbyte* xq, int blocks, byte* xe)
    {
        Vector512<byte> one32 = Vector512.Create((byte)32);
        for (int b = 0; b < blocks; b++)
        {
            for (int h = 0; h < 2; h++)
            {
                sbyte* x = xq + b * 256 + 128 * h;
                byte* o = xe + (long)b * PreparedBlockBytes + 256 * h;
                Vector512<sbyte> x01 = Vector512.Create(Vector256.Load(x), Vector256.Load(x + 64));
                Vector512<sbyte> x23 = Vector512.Create(Vector256.Load(x + 32), Vector256.Load(x + 96));
                x01.Store((sbyte*)o);
                x23.Store((sbyte*)(o + 64));
                Avx512BW.MultiplyAddAdjacent(one32, x01).Store((short*)(o + 128));
                Avx512BW.MultiplyAddAdjacent(one32, x23).Store((short*)(o + 192));
            }
        }
    }

    /// <summary>The 6-bit codes of half h of a block: values 0..63 (q01) and 64..127 (q23) of the half, as bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Codes512(byte* blk, int h, out Vector512<byte> q01, out Vector512<byte> q23)
    {
        Vector512<byte> m4 = Vector512.Create((byte)0xF), m6 = Vector512.Create((byte)0x3F);
        Vector512<byte> ql = Vector512.Load(blk + 64 * h);
        Vector256<byte> qh256 = Vector256.Load(blk + QhOffset + 32 * h);
        // values 32..63 (and 96..127) take the next pair of qh bits
        Vector512<ushort> qh = Vector512.Create(qh256, Vector256.ShiftRightLogical(qh256.AsUInt16(), 2).AsByte()).AsUInt16();
        // low nibble from ql, bits 4-5 from qh (16-bit shifts: what crosses a byte is masked off)
        q01 = Vector512.ConditionalSelect(m4, ql, Vector512.ShiftLeft(qh, 4).AsByte()) & m6;
        q23 = Vector512.ConditionalSelect(m4, Vector512.ShiftRightLogical(ql.AsUInt16(), 4).AsByte(), qh.AsByte()) & m6;
    }

    private readonly struct VnniPair(sbyte* xq, float* xd, short* gs, int blocks, float* y) : IRowPair
    {
        public void Run(byte* w0, byte* w1, int i0, int i1) => Q6KVnni.DotPair(w0, w1, xq, xd, gs, blocks, y + i0, y + i1);
    }

    /// <summary>One row against 1-4 tokens (prepared activations, stride xStride bytes): codes and scales are unpacked
    /// once per super-block for all of them.</summary>
    private static void Dot512Tile<TN>(byte* w, byte* xe, int xStride, float* xd, int blocks, float* y, int ldy, bool prefetch = false) where TN : struct, ITokenCount
    {
        // the static index vectors read once, before the loop (a static read inside it carries a class-initialization
        // helper call without tiered compilation, around which the JIT spills the accumulators)
        Vector512<short> idx0 = s_index0, idx1 = s_index1, idx2 = s_index2, idx3 = s_index3;
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            if (prefetch)
            {
                // decode streams the weights once: keep DRAM requests in flight 4 KB ahead (210-byte blocks)
                Sse.Prefetch0(blk + 4096);
                Sse.Prefetch0(blk + 4096 + 64);
                Sse.Prefetch0(blk + 4096 + 128);
                Sse.Prefetch0(blk + 4096 + 192);
            }
            Vector512<short> sc = Avx512BW.ConvertToVector512Int16(Vector256.Create(Vector128.Load((sbyte*)(blk + ScalesOffset)), Vector128<sbyte>.Zero));
            Vector512<int> i0 = default, i1 = default, i2 = default, i3 = default;
            for (int h = 0; h < 2; h++)
            {
                Codes512(blk, h, out Vector512<byte> q01, out Vector512<byte> q23);
                Vector512<short> s01 = Avx512BW.PermuteVar32x16(sc, h == 0 ? idx0 : idx2);
                Vector512<short> s23 = Avx512BW.PermuteVar32x16(sc, h == 0 ? idx1 : idx3);
                byte* x = xe + (long)b * PreparedBlockBytes + 256 * h;
                i0 += Half6(q01, q23, s01, s23, x);
                if (TN.N > 1)
                    i1 += Half6(q01, q23, s01, s23, x + xStride);
                if (TN.N > 2)
                    i2 += Half6(q01, q23, s01, s23, x + 2L * xStride);
                if (TN.N > 3)
                    i3 += Half6(q01, q23, s01, s23, x + 3L * xStride);
            }
            float d = Half16.ToFloat(*(ushort*)(blk + DOffset));
            acc0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(i0), Vector512.Create(d * xd[b]), acc0);
            if (TN.N > 1)
                acc1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(i1), Vector512.Create(d * xd[blocks + b]), acc1);
            if (TN.N > 2)
                acc2 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(i2), Vector512.Create(d * xd[2 * blocks + b]), acc2);
            if (TN.N > 3)
                acc3 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(i3), Vector512.Create(d * xd[3 * blocks + b]), acc3);
        }
        // lane sums in Vector512.Sum's order (HorizontalSums.Sum4)
        Vector128<float> sums = HorizontalSums.Sum4(acc0, acc1, acc2, acc3);
        y[0] = sums.GetElement(0);
        if (TN.N > 1)
            y[ldy] = sums.GetElement(1);
        if (TN.N > 2)
            y[2 * ldy] = sums.GetElement(2);
        if (TN.N > 3)
            y[3 * ldy] = sums.GetElement(3);
    }

    // Σ (q − 32)·x·scale over one 128-value half for one token (x: the half's prepared activations), as 16 int32 lanes
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Half6(Vector512<byte> q01, Vector512<byte> q23, Vector512<short> s01, Vector512<short> s23, byte* x)
    {
        Vector512<short> p01 = Avx512BW.MultiplyAddAdjacent(q01, Vector512.Load((sbyte*)x)) - Vector512.Load((short*)(x + 128));
        Vector512<short> p23 = Avx512BW.MultiplyAddAdjacent(q23, Vector512.Load((sbyte*)(x + 64))) - Vector512.Load((short*)(x + 192));
        return Avx512BW.MultiplyAddAdjacent(p01, s01) + Avx512BW.MultiplyAddAdjacent(p23, s23);
    }

    /// <summary>Σ over super-blocks of d_x · d · Σ_j scales[j] · Σ_{16 values} (q − 32) · x.</summary>
    public static float Dot(byte* w, sbyte* xq, float* xd, int blocks)
    {
        if (Avx512BW.IsSupported)
        {
            byte[] prepared = PreparedScratch((long)blocks * PreparedBlockBytes);
            fixed (byte* xe = prepared)
            {
                Prepare512(xq, blocks, xe);
                float y;
                Dot512Tile<Tokens1>(w, xe, 0, xd, blocks, &y, 0, prefetch: false);
                return y;
            }
        }
        if (Avx2.IsSupported)
            return Dot256(w, xq, xd, blocks);
        return DotScalar(w, xq, xd, blocks);
    }

    // int16 lane i of a 64-value product covers values 2i and 2i + 1, so it takes scale index base + i / 8
    private static readonly Vector512<short> s_index0 = Index(0), s_index1 = Index(4), s_index2 = Index(8), s_index3 = Index(12);

    private static Vector512<short> Index(int baseScale)
    {
        Vector512<short> v = default;
        for (int i = 0; i < 32; i++)
            v = v.WithElement(i, (short)(baseScale + i / 8));
        return v;
    }

    private static float Dot256(byte* w, sbyte* xq, float* xd, int blocks)
    {
        Vector256<byte> m4 = Vector256.Create((byte)0xF), m2 = Vector256.Create((byte)3), one32 = Vector256.Create((byte)32);
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            sbyte* sc = (sbyte*)(blk + ScalesOffset);
            Vector256<int> isum = Vector256<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                Vector256<byte> qh = Vector256.Load(blk + QhOffset + 32 * h);
                for (int k = 0; k < 4; k++) // natural sub-block 4h + k: 32 values, scales 8h + 2k and 8h + 2k + 1
                {
                    Vector256<byte> ql = Vector256.Load(blk + 64 * h + 32 * (k & 1));
                    Vector256<byte> lo = k < 2 ? ql & m4 : Vector256.ShiftRightLogical(ql.AsUInt16(), 4).AsByte() & m4;
                    Vector256<byte> hi = Vector256.ShiftRightLogical(qh.AsUInt16(), 2 * k).AsByte() & m2;
                    Vector256<byte> q = lo | Vector256.ShiftLeft(hi.AsUInt16(), 4).AsByte();
                    Vector256<sbyte> x = Vector256.Load(xq + b * 256 + 32 * QuantizedInput.PermutedSubBlock(4 * h + k));
                    Vector256<short> p = Avx2.MultiplyAddAdjacent(q, x) - Avx2.MultiplyAddAdjacent(one32, x);
                    Vector256<short> s = Vector256.Create(Vector128.Create((short)sc[8 * h + 2 * k]), Vector128.Create((short)sc[8 * h + 2 * k + 1]));
                    isum += Avx2.MultiplyAddAdjacent(p, s);
                }
            }
            total += Half16.ToFloat(*(ushort*)(blk + DOffset)) * xd[b] * Vector256.Sum(isum);
        }
        return total;
    }

    /// <summary>The scalar definition of <see cref="Dot"/>.</summary>
    public static float DotScalar(byte* w, sbyte* xq, float* xd, int blocks)
    {
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            sbyte* sc = (sbyte*)(blk + ScalesOffset);
            long isum = 0;
            for (int j = 0; j < 16; j++)
            {
                int dot = 0;
                for (int i = 0; i < 16; i++)
                {
                    int v = 16 * j + i;
                    int slot = QuantizedInput.PermutedSubBlock(v >> 5) * 32 + (v & 31);
                    dot += (Code(blk, v) - 32) * xq[b * 256 + slot];
                }
                isum += (long)sc[j] * dot;
            }
            total += Half16.ToFloat(*(ushort*)(blk + DOffset)) * xd[b] * isum;
        }
        return total;
    }
}
