// The other 32-value llama.cpp block formats (ggml-common.h, ggml-quants.c dequantize_row_*), used in place from GGUF
// files. llama-quantize writes them where a row is not a multiple of 256 (its fallbacks: Q4_K -> Q5_0, Q5_K -> Q5_1,
// so a Q4_K_M DeepSeek file holds attn_k_b, 128 values a row, as Q5_0) and as file types of their own:
//   Q4_1 (20 bytes): fp16 d, fp16 m, uint8 qs[16];                 value j = d·q_j + m, q_j = qs[j] & 0xF, q_16+j = qs[j] >> 4
//   Q5_0 (22 bytes): fp16 d, uint32 qh, uint8 qs[16];              value j = d·(q_j − 16), q_j = nibble | bit j of qh << 4
//   Q5_1 (24 bytes): fp16 d, fp16 m, uint32 qh, uint8 qs[16];      value j = d·q_j + m, q_j as Q5_0's
//   IQ4_NL (18 bytes): fp16 d, uint8 qs[16];                       value j = d·kvalues_iq4nl[q_j], the 4-bit codes as Q4_1's
//                      (a non-linear table of 16 int8 levels; llama-quantize's fallback for IQ4_XS rows)
// Products take Q8 activations (int16 values, one scale per token) as Q4_0's do: per block the integer sums Σ q·x
// (and Σ x for the offset formats), then acc += d·d_x·Σ q·x (+ m·d_x·Σ x). Each kernel has a scalar reference.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Q4_1, Q5_0, Q5_1 or IQ4_NL weights: blocks of 32 values with an fp16 scale, 4 or 5 bits a value, and an
/// fp16 offset (Q4_1, Q5_1), a fixed one (Q5_0: −16) or a table of levels (IQ4_NL).</summary>
public sealed unsafe class SmallBlockMatrix : BlockQuantMatrix
{
    public const int BlockValues = 32;

    private readonly int _qs;        // offset of qs[16] in a block
    private readonly bool _highBit;  // a fifth bit per value in qh
    private readonly bool _offset;   // an fp16 m after d
    private readonly bool _levels;   // codes index kvalues_iq4nl (IQ4_NL)
    private readonly int _blockBytes;

    /// <summary>ggml's kvalues_iq4nl: the 16 levels of IQ4_NL and IQ4_XS codes.</summary>
    internal static ReadOnlySpan<sbyte> Levels => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    private static readonly Vector256<sbyte> s_levels = Vector256.Create(Vector128.Create(Levels), Vector128.Create(Levels));

    public SmallBlockMatrix(WeightFormat format, byte* data, int rows, int cols, object? owner)
        : base(data, rows, cols, BlockValues, BlockBytes(format), format.ToString(), owner)
    {
        Format = format;
        _offset = format is WeightFormat.Q4_1 or WeightFormat.Q5_1;
        _highBit = format is WeightFormat.Q5_0 or WeightFormat.Q5_1;
        _levels = format == WeightFormat.IQ4_NL;
        _blockBytes = BlockBytes(format);
        _qs = (_offset ? 4 : 2) + (_highBit ? 4 : 0);
    }

    /// <summary>Bytes of one block of 32 values.</summary>
    public static int BlockBytes(WeightFormat format) => format switch
    {
        WeightFormat.Q4_1 => 20,
        WeightFormat.Q5_0 => 22,
        WeightFormat.Q5_1 => 24,
        WeightFormat.IQ4_NL => 18,
        _ => throw new ArgumentException($"{format} is not a 32-value block format of SmallBlockMatrix", nameof(format)),
    };

    public override WeightFormat Format { get; }
    public override ActivationFormat InputFormat => ActivationFormat.Q8;

    /// <summary>Code j (0..31) of a block: 4 or 5 bits, as dequantize_row_q4_1 / q5_0 / q5_1 read it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Code(byte* blk, int j)
    {
        int q = j < 16 ? blk[_qs + j] & 0xF : blk[_qs + j - 16] >> 4;
        if (_highBit)
            q |= (int)((*(uint*)(blk + (_offset ? 4 : 2)) >> j) & 1) << 4;
        return q;
    }

    public override void ReadRow(int row, Span<float> dst)
    {
        CheckReadRow(row, dst);
        byte* p = RowPointer(row);
        int bytes = _blockBytes;
        fixed (float* o = dst)
        {
            for (int b = 0; b < Cols / BlockValues; b++)
            {
                byte* blk = p + (long)b * bytes;
                float d = Half16.ToFloat(*(ushort*)blk), m = _offset ? Half16.ToFloat(*(ushort*)(blk + 2)) : 0;
                float* y = o + b * BlockValues;
                if (Avx2.IsSupported)
                {
                    if (_offset)
                    {
                        Q4KMatrix.Dequant32(Codes(blk), d, -m, y); // q·d − (−m): the same bits as q·d + m
                        continue;
                    }
                    // (q − 16)·d or level·d: the integer is exact in int8, one rounding in the product
                    Vector256<sbyte> c = SignedLevels(blk);
                    (Vector256<short> a, Vector256<short> b2) = Vector256.Widen(c);
                    Vector256<float> dv = Vector256.Create(d);
                    (Vector256<int> a0, Vector256<int> a1) = Vector256.Widen(a);
                    (Vector256<int> b0, Vector256<int> b1) = Vector256.Widen(b2);
                    (Vector256.ConvertToSingle(a0) * dv).Store(y);
                    (Vector256.ConvertToSingle(a1) * dv).Store(y + 8);
                    (Vector256.ConvertToSingle(b0) * dv).Store(y + 16);
                    (Vector256.ConvertToSingle(b1) * dv).Store(y + 24);
                    continue;
                }
                for (int j = 0; j < BlockValues; j++)
                    y[j] = _offset ? d * Code(blk, j) + m : d * Level(blk, j);
            }
        }
    }

    // byte j of the 32 takes byte j / 8 of qh, then its bit j % 8
    private static readonly Vector256<byte> s_spread = Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    private static readonly Vector256<byte> s_bits = Vector256.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);

    /// <summary>Value j's integer: the code (Q4_1, Q5_1), the code − 16 (Q5_0) or its level (IQ4_NL).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Level(byte* blk, int j) => _offset ? Code(blk, j) : _levels ? Levels[Code(blk, j)] : Code(blk, j) - 16;

    /// <summary>The 32 signed integers of a block without an offset (Q5_0: code − 16, IQ4_NL: its level; needs AVX2).</summary>
    private Vector256<sbyte> SignedLevels(byte* blk) => Format switch
    {
        WeightFormat.IQ4_NL => SignedLevels<Iq4Nl>(blk),
        _ => SignedLevels<Q5_0>(blk), // ReadRow asks only the formats without an offset: IQ4_NL and Q5_0
    };

    private Vector256<byte> Codes(byte* blk) => Format switch
    {
        WeightFormat.Q4_1 => Codes<Q4_1>(blk),
        WeightFormat.Q5_0 => Codes<Q5_0>(blk),
        WeightFormat.Q5_1 => Codes<Q5_1>(blk),
        _ => Codes<Iq4Nl>(blk),
    };

    /// <summary>A block layout as a type, so that each kernel is compiled once per format: an fp16 m after d (Q4_1,
    /// Q5_1), a fifth bit per value in qh (Q5_0, Q5_1), codes indexing kvalues_iq4nl (IQ4_NL).</summary>
    private interface ILayout
    {
        static abstract bool Offset { get; }
        static abstract bool HighBit { get; }
        static abstract bool Levels { get; }
    }

    private readonly struct Q4_1 : ILayout { public static bool Offset => true; public static bool HighBit => false; public static bool Levels => false; }

    private readonly struct Q5_0 : ILayout { public static bool Offset => false; public static bool HighBit => true; public static bool Levels => false; }

    private readonly struct Q5_1 : ILayout { public static bool Offset => true; public static bool HighBit => true; public static bool Levels => false; }

    private readonly struct Iq4Nl : ILayout { public static bool Offset => false; public static bool HighBit => false; public static bool Levels => true; }

    /// <summary>Bytes of a block of <typeparamref name="TL"/> and the offset of its qs[16].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Bytes<TL>() where TL : ILayout => 18 + (TL.Offset ? 2 : 0) + (TL.HighBit ? 4 : 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int QsAt<TL>() where TL : ILayout => (TL.Offset ? 4 : 2) + (TL.HighBit ? 4 : 0);

    /// <summary>The signed values of a block without an offset: IQ4_NL's levels or Q5_0's code − 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> SignedLevels<TL>(byte* blk) where TL : ILayout =>
        TL.Levels ? Avx2.Shuffle(s_levels, Codes<TL>(blk).AsSByte()) : Codes<TL>(blk).AsSByte() - Vector256.Create((sbyte)16);

    /// <summary>The 32 codes of a block in value order (qs low nibbles, then high nibbles; the fifth bits from qh).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Codes<TL>(byte* blk) where TL : ILayout
    {
        Vector128<byte> m4 = Vector128.Create((byte)0xF), qs = Vector128.Load(blk + QsAt<TL>());
        Vector256<byte> codes = Vector256.Create(qs & m4, Vector128.ShiftRightLogical(qs.AsUInt16(), 4).AsByte() & m4);
        if (TL.HighBit)
        {
            Vector256<byte> h = Avx2.Shuffle(Vector256.Create(*(uint*)(blk + (TL.Offset ? 4 : 2))).AsByte(), s_spread);
            codes |= Vector256.Equals(h & s_bits, s_bits) & Vector256.Create((byte)16);
        }
        return codes;
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        if (!Avx2.IsSupported)
        {
            MatMulQ8<RowDot>(x, y, ldy, rowStart, rowCount, Format.ToString());
            return;
        }
        CheckQuantizedProduct(x, ActivationFormat.Q8, y.Length, ldy, rowStart, rowCount, Format.ToString());
        switch (Format)
        {
            case WeightFormat.Q4_1: Product<Q4_1>(x, y, ldy, rowStart, rowCount); break;
            case WeightFormat.Q5_0: Product<Q5_0>(x, y, ldy, rowStart, rowCount); break;
            case WeightFormat.Q5_1: Product<Q5_1>(x, y, ldy, rowStart, rowCount); break;
            default: Product<Iq4Nl>(x, y, ldy, rowStart, rowCount); break;
        }
    }

    private void Product<TL>(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount) where TL : ILayout
    {
        int blocks = Cols / BlockValues, T = x.Tokens;
        fixed (short* xq = x.Q16Array)
        fixed (float* xs = x.ScaleArray)
        fixed (float* yp = y)
        {
            // one token (decode): two rows at a time from two memory streams, two independent sums
            int i = T == 1 ? RowPairs(new Pair<TL>(xq, xs, blocks, yp), rowStart, 0, rowCount) : 0;
            // a row at a time against tiles of up to four tokens: the row's values widened once per tile
            RowTiles(new Q8Tiles<Tile<TL>>(xq, xs, Cols, yp, ldy), rowStart, i, rowCount, T);
        }
    }

    private readonly struct Pair<TL>(short* xq, float* xs, int blocks, float* y) : IRowPair where TL : ILayout
    {
        public void Run(byte* w0, byte* w1, int i0, int i1) => DotPair<TL>(w0, w1, xq, xs, blocks, y + i0, y + i1);
    }

    private readonly struct Tile<TL> : IQ8TileKernel where TL : ILayout
    {
        public static void Run<TN>(byte* w, short* xq, int cols, float* xs, float* y, int ldy) where TN : struct, ITokenCount =>
            DotTokens<TN, TL>(w, xq, cols, xs, cols / BlockValues, y, ldy);
    }

    // a struct, so the shared product loop is compiled for this kernel (without AVX2)
    private readonly struct RowDot : IQ8RowDot
    {
        public static float Dot(QuantizedProductMatrix m, int row, short* xq, float* xs, int blocks)
        {
            var s = Unsafe.As<SmallBlockMatrix>(m);
            return s.DotScalar(s.RowPointer(row), xq, xs, blocks);
        }
    }

    /// <summary>One row against N ≤ 4 tokens' Q8 activations (xStride values apart, scales blocks apart), y[u·ldy] for
    /// token u: Σ_b d_x[b]·(d·Σ q·x + m·Σ x) (Q5_0, IQ4_NL: d·Σ v·x), the block's values widened once for all tokens,
    /// each token's sums formed alike whatever N (and as <see cref="DotPair{TL}"/> forms them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotTokens<TN, TL>(byte* w, short* xq, int xStride, float* xs, int blocks, float* y, int ldy)
        where TN : struct, ITokenCount where TL : ILayout
    {
        int bytes = Bytes<TL>();
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, m0 = default, m1 = default, m2 = default, m3 = default;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * bytes;
            Widen<TL>(blk, out Vector256<short> lo, out Vector256<short> hi);
            float d = Half16.ToFloat(*(ushort*)blk), m = TL.Offset ? Half16.ToFloat(*(ushort*)(blk + 2)) : 0;
            short* x = xq + b * 32;
            Step<TL>(lo, hi, x, d, m, xs[b], ref a0, ref m0);
            if (TN.N > 1) Step<TL>(lo, hi, x + xStride, d, m, xs[blocks + b], ref a1, ref m1);
            if (TN.N > 2) Step<TL>(lo, hi, x + 2L * xStride, d, m, xs[2 * blocks + b], ref a2, ref m2);
            if (TN.N > 3) Step<TL>(lo, hi, x + 3L * xStride, d, m, xs[3 * blocks + b], ref a3, ref m3);
        }
        y[0] = Vector256.Sum(a0 + m0);
        if (TN.N > 1) y[ldy] = Vector256.Sum(a1 + m1);
        if (TN.N > 2) y[2 * ldy] = Vector256.Sum(a2 + m2);
        if (TN.N > 3) y[3 * ldy] = Vector256.Sum(a3 + m3);
    }

    /// <summary>Two rows against one token, block by block in turn (decode: two memory streams), each row's sums formed as
    /// <see cref="DotTokens{TN, TL}"/> forms them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotPair<TL>(byte* w0, byte* w1, short* xq, float* xs, int blocks, float* y0, float* y1) where TL : ILayout
    {
        int bytes = Bytes<TL>();
        Vector256<float> a0 = Vector256<float>.Zero, m0 = a0, a1 = a0, m1 = a0;
        for (int b = 0; b < blocks; b++)
        {
            long o = (long)b * bytes;
            if ((b & 1) == 0)
            {
                Sse.Prefetch0(w0 + o + StreamPrefetch.Distance);
                Sse.Prefetch0(w1 + o + StreamPrefetch.Distance);
            }
            Widen<TL>(w0 + o, out Vector256<short> lo, out Vector256<short> hi);
            Step<TL>(lo, hi, xq + b * 32, Half16.ToFloat(*(ushort*)(w0 + o)), TL.Offset ? Half16.ToFloat(*(ushort*)(w0 + o + 2)) : 0, xs[b], ref a0, ref m0);
            Widen<TL>(w1 + o, out lo, out hi);
            Step<TL>(lo, hi, xq + b * 32, Half16.ToFloat(*(ushort*)(w1 + o)), TL.Offset ? Half16.ToFloat(*(ushort*)(w1 + o + 2)) : 0, xs[b], ref a1, ref m1);
        }
        *y0 = Vector256.Sum(a0 + m0);
        *y1 = Vector256.Sum(a1 + m1);
    }

    /// <summary>A block's 32 values as int16 (codes for the offset formats, signed values otherwise), in two halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Widen<TL>(byte* blk, out Vector256<short> lo, out Vector256<short> hi) where TL : ILayout
    {
        if (TL.Offset)
        {
            Vector256<byte> codes = Codes<TL>(blk);
            lo = Avx2.ConvertToVector256Int16(codes.GetLower());
            hi = Avx2.ConvertToVector256Int16(codes.GetUpper());
        }
        else
        {
            Vector256<sbyte> v = SignedLevels<TL>(blk);
            lo = Avx2.ConvertToVector256Int16(v.GetLower());
            hi = Avx2.ConvertToVector256Int16(v.GetUpper());
        }
    }

    /// <summary>One block against 32 int16 activations with scale dx: acc += d·dx·Σ q·x, macc += m·dx·Σ x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step<TL>(Vector256<short> lo, Vector256<short> hi, short* x, float d, float m, float dx, ref Vector256<float> acc, ref Vector256<float> macc)
        where TL : ILayout
    {
        Vector256<short> x0 = Vector256.Load(x), x1 = Vector256.Load(x + 16);
        Vector256<int> p = Avx2.MultiplyAddAdjacent(lo, x0) + Avx2.MultiplyAddAdjacent(hi, x1);
        acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(d * dx), acc);
        if (TL.Offset)
        {
            Vector256<short> ones = Vector256.Create((short)1);
            Vector256<int> sx = Avx2.MultiplyAddAdjacent(x0, ones) + Avx2.MultiplyAddAdjacent(x1, ones);
            macc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sx), Vector256.Create(m * dx), macc);
        }
    }

    /// <summary>The scalar definition of the product of one row with one token's Q8 activations.</summary>
    internal float DotScalar(byte* w, short* xq, float* xs, int blocks)
    {
        int bytes = _blockBytes;
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * bytes;
            int isum = 0, xsum = 0;
            for (int j = 0; j < BlockValues; j++)
            {
                int q = Level(blk, j);
                isum += q * xq[b * 32 + j];
                xsum += xq[b * 32 + j];
            }
            float dx = xs[b];
            sum += isum * (Half16.ToFloat(*(ushort*)blk) * dx);
            if (_offset)
                sum += xsum * (Half16.ToFloat(*(ushort*)(blk + 2)) * dx);
        }
        return sum;
    }
}
