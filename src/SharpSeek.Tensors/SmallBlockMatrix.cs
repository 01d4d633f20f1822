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
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Vector256<sbyte> SignedLevels(byte* blk) =>
        _levels ? Avx2.Shuffle(s_levels, Codes(blk).AsSByte()) : Codes(blk).AsSByte() - Vector256.Create((sbyte)16);

    /// <summary>The 32 codes of a block in value order (needs AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Vector256<byte> Codes(byte* blk)
    {
        Vector128<byte> m4 = Vector128.Create((byte)0xF), qs = Vector128.Load(blk + _qs);
        Vector256<byte> codes = Vector256.Create(qs & m4, Vector128.ShiftRightLogical(qs.AsUInt16(), 4).AsByte() & m4);
        if (_highBit)
        {
            Vector256<byte> h = Avx2.Shuffle(Vector256.Create(*(uint*)(blk + (_offset ? 4 : 2))).AsByte(), s_spread);
            codes |= Vector256.Equals(h & s_bits, s_bits) & Vector256.Create((byte)16);
        }
        return codes;
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        if (x.Tokens != 1 || !Avx2.IsSupported || rowCount < 2)
        {
            MatMulQ8<RowDot>(x, y, ldy, rowStart, rowCount, Format.ToString());
            return;
        }
        CheckRows(rowStart, rowCount);
        if (x.Format != ActivationFormat.Q8 || x.Cols != Cols)
            throw new ArgumentException($"{Format} product needs Q8 activations of the same width");
        if (y.Length < rowCount)
            throw new ArgumentException("MatMulQuantized: y too small");
        // one token (decode): rows from the two halves of the range in turn, two memory streams and two independent sums
        int blocks = Cols / BlockValues, half = rowCount / 2;
        fixed (short* xq = x.Q16Array)
        fixed (float* xs = x.ScaleArray)
        fixed (float* yp = y)
        {
            StreamPrefetch.Start(RowPointer(rowStart), (long)half * BytesPerRow);
            StreamPrefetch.Start(RowPointer(rowStart + half), (long)half * BytesPerRow);
            for (int i = 0; i < half; i++)
                DotPairAvx2(RowPointer(rowStart + i), RowPointer(rowStart + half + i), xq, xs, blocks, yp + i, yp + half + i);
            if (2 * half < rowCount)
                yp[rowCount - 1] = DotAvx2(RowPointer(rowStart + rowCount - 1), xq, xs, blocks);
        }
    }

    // a struct, so the shared product loop is compiled for this kernel
    private readonly struct RowDot : IQ8RowDot
    {
        public static float Dot(QuantizedProductMatrix m, int row, short* xq, float* xs, int blocks)
        {
            var s = Unsafe.As<SmallBlockMatrix>(m);
            return Avx2.IsSupported ? s.DotAvx2(s.RowPointer(row), xq, xs, blocks) : s.DotScalar(s.RowPointer(row), xq, xs, blocks);
        }
    }

    /// <summary>One row against one token's Q8 activations: Σ_b d_x[b]·(d·Σ q·x + m·Σ x) (Q5_0: d·Σ (q − 16)·x).</summary>
    internal float DotAvx2(byte* w, short* xq, float* xs, int blocks)
    {
        int bytes = _blockBytes;
        Vector256<float> acc = Vector256<float>.Zero, macc = acc;
        for (int b = 0; b < blocks; b++)
            BlockStep(w + (long)b * bytes, xq + b * 32, xs[b], ref acc, ref macc);
        return Vector256.Sum(acc + macc);
    }

    /// <summary><see cref="DotAvx2"/> of two rows, block by block in turn (each row's sums formed as DotAvx2 forms them).</summary>
    private void DotPairAvx2(byte* w0, byte* w1, short* xq, float* xs, int blocks, float* y0, float* y1)
    {
        int bytes = _blockBytes;
        Vector256<float> a0 = Vector256<float>.Zero, m0 = a0, a1 = a0, m1 = a0;
        for (int b = 0; b < blocks; b++)
        {
            long o = (long)b * bytes;
            if ((b & 1) == 0)
            {
                Sse.Prefetch0(w0 + o + StreamPrefetch.Distance);
                Sse.Prefetch0(w1 + o + StreamPrefetch.Distance);
            }
            BlockStep(w0 + o, xq + b * 32, xs[b], ref a0, ref m0);
            BlockStep(w1 + o, xq + b * 32, xs[b], ref a1, ref m1);
        }
        *y0 = Vector256.Sum(a0 + m0);
        *y1 = Vector256.Sum(a1 + m1);
    }

    /// <summary>One block of a row against 32 int16 activations with scale dx: acc += d·dx·Σ q·x, macc += m·dx·Σ x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void BlockStep(byte* blk, short* x, float dx, ref Vector256<float> acc, ref Vector256<float> macc)
    {
        Vector256<short> lo, hi;
        if (_offset)
        {
            Vector256<byte> codes = Codes(blk);
            lo = Avx2.ConvertToVector256Int16(codes.GetLower());
            hi = Avx2.ConvertToVector256Int16(codes.GetUpper());
        }
        else
        {
            Vector256<sbyte> v = SignedLevels(blk);
            lo = Avx2.ConvertToVector256Int16(v.GetLower());
            hi = Avx2.ConvertToVector256Int16(v.GetUpper());
        }
        Vector256<short> x0 = Vector256.Load(x), x1 = Vector256.Load(x + 16);
        Vector256<int> p = Avx2.MultiplyAddAdjacent(lo, x0) + Avx2.MultiplyAddAdjacent(hi, x1);
        acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(Half16.ToFloat(*(ushort*)blk) * dx), acc);
        if (_offset)
        {
            Vector256<short> ones = Vector256.Create((short)1);
            Vector256<int> sx = Avx2.MultiplyAddAdjacent(x0, ones) + Avx2.MultiplyAddAdjacent(x1, ones);
            macc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sx), Vector256.Create(Half16.ToFloat(*(ushort*)(blk + 2)) * dx), macc);
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
