// Q2_K and Q3_K, the llama.cpp k-quants of its smallest files (Q2_K, Q3_K_S/M/L: the sizes that fit DeepSeek-V3/R1 into
// a workstation's memory), used in place from GGUF (ggml-common.h block_q2_K / block_q3_K, ggml-quants.c
// dequantize_row_q2_K / q3_K). Both are 16 groups of 16 values per 256, with a scale per group:
//   Q2_K (84 bytes):  scales[16] (low nibble: scale, high nibble: min), qs[64] (2 bits), fp16 d, fp16 dmin;
//                     value = d·sc_g·q − dmin·m_g
//   Q3_K (110 bytes): hmask[32] (third bits), qs[64] (2 bits), scales[12] (16 six-bit scales), fp16 d;
//                     value = d·(sc_g − 32)·(q − 4), q = two bits | third bit << 2
// Value v of a block: half h = v / 128, j = (v % 128) / 32 (the 2-bit field: bits 2j of qs[32h + v % 32]), group
// g = v / 16; Q3_K's third bit is bit 4h + j of hmask[v % 32]. Products take Q8K activations: per 32-value sub-block s
// (= 4h + j) the codes against its activations by vpmaddubsw (|pair| ≤ 2·7·128), then vpmaddwd against the two
// groups' scales; the offset terms through the 16-value group sums. Each kernel has a scalar reference.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Q2_K or Q3_K weights: super-blocks of 256 values in 16 groups of 16 with a scale (and, Q2_K, a min) each.</summary>
public sealed unsafe class LowBitKMatrix : BlockQuantMatrix
{
    public const int BlockValues = 256;
    private readonly bool _q3;
    private readonly int _blockBytes;

    public LowBitKMatrix(WeightFormat format, byte* data, int rows, int cols, object? owner)
        : base(data, rows, cols, BlockValues, BlockBytes(format), format.ToString(), owner)
    {
        Format = format;
        _q3 = format == WeightFormat.Q3_K;
        _blockBytes = BlockBytes(format);
    }

    /// <summary>Bytes of one block of 256 values.</summary>
    public static int BlockBytes(WeightFormat format) => format switch
    {
        WeightFormat.Q2_K => 84,
        WeightFormat.Q3_K => 110,
        _ => throw new ArgumentException($"{format} is not Q2_K or Q3_K", nameof(format)),
    };

    public override WeightFormat Format { get; }
    public override ActivationFormat InputFormat => ActivationFormat.Q8K;

    /// <summary>Group scales (Q3_K: sc − 32; Q2_K: the low nibbles) and mins (Q2_K: the high nibbles; Q3_K: 0) of a block.</summary>
    private void Scales(byte* blk, short* sc, short* mn)
    {
        if (!_q3)
        {
            for (int g = 0; g < 16; g++)
            {
                sc[g] = (short)(blk[g] & 0xF);
                mn[g] = (short)(blk[g] >> 4);
            }
            return;
        }
        const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        byte* s = blk + 96;
        uint a0 = Unsafe.ReadUnaligned<uint>(s), a1 = Unsafe.ReadUnaligned<uint>(s + 4), tmp = Unsafe.ReadUnaligned<uint>(s + 8);
        uint* aux = stackalloc uint[4];
        aux[0] = (a0 & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4);
        aux[2] = ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        for (int g = 0; g < 16; g++)
        {
            sc[g] = (short)(((sbyte*)aux)[g] - 32);
            mn[g] = 0;
        }
    }

    /// <summary>Code of value v (Q2_K: 0..3; Q3_K: 0..7, the value being d·sc·(code − 4)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Code(byte* blk, int v)
    {
        int h = v >> 7, j = (v & 127) >> 5, l = v & 31;
        int q = (blk[(_q3 ? 32 : 16) + 32 * h + l] >> (2 * j)) & 3;
        if (_q3)
            q |= ((blk[l] >> (4 * h + j)) & 1) << 2;
        return q;
    }

    public override void ReadRow(int row, Span<float> dst)
    {
        CheckReadRow(row, dst);
        byte* p = RowPointer(row);
        int bytes = _blockBytes, qsAt = _q3 ? 32 : 16;
        short* sc = stackalloc short[16], mn = stackalloc short[16];
        fixed (float* o = dst)
        {
            for (int b = 0; b < Cols / BlockValues; b++)
            {
                byte* blk = p + (long)b * bytes;
                Scales(blk, sc, mn);
                float d = Half16.ToFloat(*(ushort*)(blk + (_q3 ? 108 : 80))), dmin = _q3 ? 0 : Half16.ToFloat(*(ushort*)(blk + 82));
                float* y = o + b * 256;
                if (Avx2.IsSupported)
                {
                    // per group of 16: (d·sc)·q − dmin·m (Q2_K) or (d·sc)·(q − 4) (Q3_K), as the scalar definition rounds
                    Vector256<ushort> hm = _q3 ? Vector256.Load(blk).AsUInt16() : default;
                    for (int s = 0; s < 8; s++)
                    {
                        Vector256<byte> codes = Vector256.ShiftRightLogical(Vector256.Load(blk + qsAt + 32 * (s >> 2)).AsUInt16(), 2 * (s & 3)).AsByte() & Vector256.Create((byte)3);
                        if (_q3)
                        {
                            Vector256<ushort> at2 = s <= 2 ? Vector256.ShiftLeft(hm, 2 - s) : Vector256.ShiftRightLogical(hm, s - 2);
                            codes |= at2.AsByte() & Vector256.Create((byte)4);
                        }
                        for (int half = 0; half < 2; half++)
                        {
                            int g = 2 * s + half;
                            Vector256<short> q16 = Avx2.ConvertToVector256Int16(half == 0 ? codes.GetLower() : codes.GetUpper());
                            if (_q3)
                                q16 -= Vector256.Create((short)4);
                            (Vector256<int> q0, Vector256<int> q1) = Vector256.Widen(q16);
                            Vector256<float> dl = Vector256.Create(d * sc[g]), ml = Vector256.Create(dmin * mn[g]);
                            float* yg = y + 16 * g;
                            if (_q3)
                            {
                                (Vector256.ConvertToSingle(q0) * dl).Store(yg);
                                (Vector256.ConvertToSingle(q1) * dl).Store(yg + 8);
                            }
                            else
                            {
                                (Vector256.ConvertToSingle(q0) * dl - ml).Store(yg);
                                (Vector256.ConvertToSingle(q1) * dl - ml).Store(yg + 8);
                            }
                        }
                    }
                    continue;
                }
                for (int v = 0; v < 256; v++)
                {
                    int g = v >> 4;
                    y[v] = _q3 ? d * sc[g] * (Code(blk, v) - 4) : d * sc[g] * Code(blk, v) - dmin * mn[g];
                }
            }
        }
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        if (!Avx2.IsSupported)
        {
            MatMulQ8K<RowDot>(x, y, ldy, rowStart, rowCount, Format.ToString());
            return;
        }
        CheckQuantizedProduct(x, ActivationFormat.Q8K, y.Length, ldy, rowStart, rowCount, Format.ToString());
        // a row at a time against tiles of up to four tokens: codes and group scales made once per tile
        fixed (sbyte* xq = x.Q8Array)
        fixed (float* xd = x.ScaleArray)
        fixed (short* gs = x.GroupSumArray)
        fixed (float* yp = y)
        {
            if (_q3)
                RowTiles(new Q8KTiles<Tile<Q3Codes>>(xq, xd, gs, Cols, yp, ldy), rowStart, 0, rowCount, x.Tokens);
            else
                RowTiles(new Q8KTiles<Tile<Q2Codes>>(xq, xd, gs, Cols, yp, ldy), rowStart, 0, rowCount, x.Tokens);
        }
    }

    private readonly struct Tile<TF> : IQ8KTileKernel where TF : ILowBitCodes
    {
        public static int SumsPerBlock => 16;

        public static void Run<TN>(byte* w, sbyte* xq, int cols, float* xd, short* sums, int blocks, float* y, int ldy) where TN : struct, ITokenCount =>
            DotTokens<TN, TF>(w, xq, cols, xd, sums, blocks, y, ldy);
    }

    private readonly struct RowDot : IQ8KRowDot
    {
        public static float Dot(QuantizedProductMatrix m, int row, in Q8KToken x, int blocks)
        {
            var k = Unsafe.As<LowBitKMatrix>(m);
            return k.DotScalar(k.RowPointer(row), x.Q, x.Scales, x.GroupSums, blocks);
        }
    }

    /// <summary>Q2_K or Q3_K as a type, so that the kernel is compiled once per format.</summary>
    private interface ILowBitCodes
    {
        static abstract bool Q3 { get; }
    }

    private readonly struct Q2Codes : ILowBitCodes { public static bool Q3 => false; }

    private readonly struct Q3Codes : ILowBitCodes { public static bool Q3 => true; }

    /// <summary>The 16 group scales as signed bytes (Q3_K: sc − 32) and the 16 mins (Q2_K; Q3_K: the scales again, its
    /// offset term being 4·Σ_g sc_g·Σx_g) as int16, from vector registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<sbyte> ScaleBytes<TF>(byte* blk, out Vector256<short> offsets) where TF : ILowBitCodes
    {
        if (!TF.Q3)
        {
            Vector128<byte> raw = Vector128.Load(blk);
            offsets = Avx2.ConvertToVector256Int16(Vector128.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0xF));
            return (raw & Vector128.Create((byte)0xF)).AsSByte();
        }
        const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        byte* q = blk + 96;
        uint a0 = Unsafe.ReadUnaligned<uint>(q), a1 = Unsafe.ReadUnaligned<uint>(q + 4), tmp = Unsafe.ReadUnaligned<uint>(q + 8);
        Vector128<sbyte> sc = Vector128.Create((a0 & kmask2) | (((tmp >> 0) & kmask1) << 4), (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4),
                                               ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4), ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)).AsSByte()
                              - Vector128.Create((sbyte)32);
        offsets = Avx2.ConvertToVector256Int16(sc);
        return sc;
    }

    /// <summary>Σ_b d_x·(d·Σ_g sc_g·Σ q·x − (Q2_K: dmin·Σ_g m_g·Σx_g; Q3_K: 4·d·Σ_g sc_g·Σx_g)) for one row and N ≤ 4
    /// tokens (activations xStride apart, scales and 16-value sums per token after each other), y[u·ldy] for token u:
    /// the codes and group scales made once per block for all of them; each token's sums formed alike whatever N.
    /// Needs AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotTokens<TN, TF>(byte* w, sbyte* xq, int xStride, float* xd, short* gsum, int blocks, float* y, int ldy)
        where TN : struct, ITokenCount where TF : ILowBitCodes
    {
        int bytes = TF.Q3 ? 110 : 84, gStride = blocks * 16;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, m0 = default, m1 = default, m2 = default, m3 = default;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * bytes;
            Sse.Prefetch0(blk + StreamPrefetch.Distance);
            Sse.Prefetch0(blk + StreamPrefetch.Distance + 64);
            Vector128<sbyte> sc = ScaleBytes<TF>(blk, out Vector256<short> offsets);
            Vector256<byte> scales = Vector256.Create(sc, sc).AsByte();
            Vector256<ushort> hm = TF.Q3 ? Vector256.Load(blk).AsUInt16() : default;
            Vector256<ushort> q0 = Vector256.Load(blk + (TF.Q3 ? 32 : 16)).AsUInt16(), q1 = Vector256.Load(blk + (TF.Q3 ? 64 : 48)).AsUInt16();
            sbyte* x = xq + (long)b * 256;
            Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
            SubBlock<TN, TF>(q0, hm, scales, 0, x, xStride, ref i0, ref i1, ref i2, ref i3);
            SubBlock<TN, TF>(q0, hm, scales, 1, x, xStride, ref i0, ref i1, ref i2, ref i3);
            SubBlock<TN, TF>(q0, hm, scales, 2, x, xStride, ref i0, ref i1, ref i2, ref i3);
            SubBlock<TN, TF>(q0, hm, scales, 3, x, xStride, ref i0, ref i1, ref i2, ref i3);
            SubBlock<TN, TF>(q1, hm, scales, 4, x, xStride, ref i0, ref i1, ref i2, ref i3);
            SubBlock<TN, TF>(q1, hm, scales, 5, x, xStride, ref i0, ref i1, ref i2, ref i3);
            SubBlock<TN, TF>(q1, hm, scales, 6, x, xStride, ref i0, ref i1, ref i2, ref i3);
            SubBlock<TN, TF>(q1, hm, scales, 7, x, xStride, ref i0, ref i1, ref i2, ref i3);
            float d = Half16.ToFloat(*(ushort*)(blk + (TF.Q3 ? 108 : 80))), dmin = TF.Q3 ? 0 : Half16.ToFloat(*(ushort*)(blk + 82));
            short* g = gsum + (long)b * 16;
            Finish<TF>(ref a0, ref m0, i0, offsets, g, d, dmin, xd[b]);
            if (TN.N > 1) Finish<TF>(ref a1, ref m1, i1, offsets, g + gStride, d, dmin, xd[blocks + b]);
            if (TN.N > 2) Finish<TF>(ref a2, ref m2, i2, offsets, g + 2 * gStride, d, dmin, xd[2 * blocks + b]);
            if (TN.N > 3) Finish<TF>(ref a3, ref m3, i3, offsets, g + 3 * gStride, d, dmin, xd[3 * blocks + b]);
        }
        y[0] = Vector256.Sum(a0) - Vector256.Sum(m0);
        if (TN.N > 1) y[ldy] = Vector256.Sum(a1) - Vector256.Sum(m1);
        if (TN.N > 2) y[2 * ldy] = Vector256.Sum(a2) - Vector256.Sum(m2);
        if (TN.N > 3) y[3 * ldy] = Vector256.Sum(a3) - Vector256.Sum(m3);
    }

    /// <summary>Sub-block s (= 4h + j, the 2-bit field j of q): its codes (Q3_K: with the third bits of hm) against each
    /// token's activations by vpmaddubsw (|pair| ≤ 2·7·128), then vpmaddwd against its two groups' scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SubBlock<TN, TF>(Vector256<ushort> q, Vector256<ushort> hm, Vector256<byte> scales, int s, sbyte* x, long xStride,
                                         ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3)
        where TN : struct, ITokenCount where TF : ILowBitCodes
    {
        Vector256<byte> codes = Vector256.ShiftRightLogical(q, 2 * (s & 3)).AsByte() & Vector256.Create((byte)3);
        if (TF.Q3)
        {
            Vector256<ushort> at2 = s <= 2 ? Vector256.ShiftLeft(hm, 2 - s) : Vector256.ShiftRightLogical(hm, s - 2);
            codes |= at2.AsByte() & Vector256.Create((byte)4);
        }
        // pshufb: every byte of the low 128 bits picks scale 2s, of the high 128 bits scale 2s + 1; as int16 that is
        // (b << 8 | b), which an arithmetic shift by 8 turns into b sign-extended
        Vector256<byte> pick = Vector256.Create(Vector128.Create((byte)(2 * s)), Vector128.Create((byte)(2 * s + 1)));
        Vector256<short> groupScales = Vector256.ShiftRightArithmetic(Avx2.Shuffle(scales, pick).AsInt16(), 8);
        sbyte* xs = x + QuantizedInput.PermutedSubBlock(s) * 32;
        i0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(codes, Vector256.Load(xs)), groupScales);
        if (TN.N > 1) i1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(codes, Vector256.Load(xs + xStride)), groupScales);
        if (TN.N > 2) i2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(codes, Vector256.Load(xs + 2 * xStride)), groupScales);
        if (TN.N > 3) i3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(codes, Vector256.Load(xs + 3 * xStride)), groupScales);
    }

    /// <summary>One block of one token: the offsets (Q2_K Σ_g m_g·Σx_g, Q3_K Σ_g sc_g·Σx_g; int32, |Σx_g| ≤ 16·128) and
    /// the float steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish<TF>(ref Vector256<float> acc, ref Vector256<float> macc, Vector256<int> isum, Vector256<short> offsets, short* g,
                                   float d, float dmin, float dx) where TF : ILowBitCodes
    {
        Vector256<int> off = Avx2.MultiplyAddAdjacent(offsets, Vector256.Load(g));
        if (TF.Q3)
        {
            acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(isum - Vector256.ShiftLeft(off, 2)), Vector256.Create(d * dx), acc);
        }
        else
        {
            acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(isum), Vector256.Create(d * dx), acc);
            macc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(off), Vector256.Create(dmin * dx), macc);
        }
    }

    /// <summary>The scalar definition of <see cref="DotTokens{TN, TF}"/>.</summary>
    internal float DotScalar(byte* w, sbyte* xq, float* xd, short* gsum, int blocks)
    {
        int bytes = _blockBytes;
        short* sc = stackalloc short[16], mn = stackalloc short[16];
        float total = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * bytes;
            Scales(blk, sc, mn);
            int dot = 0, offset = 0;
            for (int v = 0; v < 256; v++)
                dot += sc[v >> 4] * Code(blk, v) * xq[b * 256 + QuantizedInput.PermutedSubBlock(v >> 5) * 32 + (v & 31)];
            for (int g = 0; g < 16; g++)
                offset += (_q3 ? sc[g] : mn[g]) * gsum[b * 16 + g];
            float d = Half16.ToFloat(*(ushort*)(blk + (_q3 ? 108 : 80)));
            total += _q3 ? xd[b] * (d * (dot - 4 * offset)) : xd[b] * (d * dot - Half16.ToFloat(*(ushort*)(blk + 82)) * offset);
        }
        return total;
    }
}
