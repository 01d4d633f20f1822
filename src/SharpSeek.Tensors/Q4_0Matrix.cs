// Q4_0, a llama.cpp block format used in place from GGUF files (ggml-common.h, ggml-quants.c):
//   Q4_0 (18 bytes / 32 values): fp16 d, uint8 qs[16]; value j = d · ((qs[j] & 0xF) − 8), value 16 + j = d · ((qs[j] >> 4) − 8)
// Q4_0 multiplies Q8 activations (int16-widened int8 per 32), accumulating integer products per block as
// llama.cpp's vec_dot_q4_0_q8_0 does. The kernel has a scalar reference (DotScalar).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Q4_0 weights: blocks of 32 4-bit values with one fp16 scale (llama.cpp block_q4_0).</summary>
public sealed unsafe class Q4_0Matrix : BlockQuantMatrix
{
    public const int BlockValues = 32, BlockBytes = 18;

    public Q4_0Matrix(byte* data, int rows, int cols, object? owner)
        : base(data, rows, cols, BlockValues, BlockBytes, "Q4_0", owner)
    {
    }

    public override WeightFormat Format => WeightFormat.Q4_0;
    public override ActivationFormat InputFormat => ActivationFormat.Q8;
    public static long RowBytes(int cols) => (long)cols / BlockValues * BlockBytes;


    /// <summary>Quantizes a matrix into Q4_0 blocks (llama.cpp quantize_row_q4_0_ref).</summary>
    public static Q4_0Matrix Quantize(WeightMatrix src, List<IDisposable> owners)
    {
        NativeBuffer buf = QuantizeRows(src, RowBytes(src.Cols), QuantizeRow, owners);
        return new Q4_0Matrix(buf.Pointer, src.Rows, src.Cols, buf);
    }

    /// <summary>Writes one row: d = (value of largest magnitude) / −8, codes min(15, trunc(x / d + 8.5)).</summary>
    public static void QuantizeRow(ReadOnlySpan<float> x, byte* dst)
    {
        if (x.Length % BlockValues != 0)
            throw new ArgumentException($"Q4_0 rows need a multiple of {BlockValues} values, got {x.Length}");
        for (int b = 0; b < x.Length / BlockValues; b++)
        {
            ReadOnlySpan<float> v = x.Slice(b * BlockValues, BlockValues);
            float amax = 0, max = 0;
            foreach (float f in v)
            {
                if (amax < MathF.Abs(f))
                {
                    amax = MathF.Abs(f);
                    max = f;
                }
            }
            float d = max / -8, id = d != 0 ? 1f / d : 0f;
            byte* blk = dst + (long)b * BlockBytes;
            *(ushort*)blk = Half16.FromFloat(d);
            for (int j = 0; j < 16; j++)
            {
                int x0 = Math.Min(15, (int)(v[j] * id + 8.5f));
                int x1 = Math.Min(15, (int)(v[16 + j] * id + 8.5f));
                blk[2 + j] = (byte)(x0 | x1 << 4);
            }
        }
    }

    public override void ReadRow(int row, Span<float> dst)
    {
        byte* p = RowPointer(row);
        for (int b = 0; b < Cols / BlockValues; b++)
        {
            byte* blk = p + (long)b * BlockBytes;
            float d = Half16.ToFloat(*(ushort*)blk);
            for (int j = 0; j < 16; j++)
            {
                dst[b * 32 + j] = d * ((blk[2 + j] & 0xF) - 8);
                dst[b * 32 + 16 + j] = d * ((blk[2 + j] >> 4) - 8);
            }
        }
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount) =>
        MatMulQ8<RowDot>(x, y, ldy, rowStart, rowCount, "Q4_0");

    // a struct, so the shared product loop is compiled for this kernel (a class type argument would share the code)
    private readonly struct RowDot : IQ8RowDot
    {
        public static float Dot(QuantizedProductMatrix m, int row, short* xq, float* xs, int blocks) =>
            Q4_0Matrix.Dot(Unsafe.As<Q4_0Matrix>(m).RowPointer(row), xq, xs, blocks);
    }

    /// <summary>Σ_b d_w[b]·d_x[b]·Σ_i (q_w[b,i] − 8)·q_x[b,i] over one row.</summary>
    public static float Dot(byte* w, short* xq, float* xs, int blocks)
    {
        if (Avx512BW.IsSupported)
        {
            Vector512<float> a0 = Vector512<float>.Zero, a1 = a0;
            int b = 0;
            for (; b + 2 <= blocks; b += 2)
            {
                byte* k = w + (long)b * BlockBytes;
                a0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(Widen512(k + 2), Vector512.Load(xq + b * 32))),
                    Vector512.Create(Half16.ToFloat(*(ushort*)k) * xs[b]), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(Widen512(k + BlockBytes + 2), Vector512.Load(xq + b * 32 + 32))),
                    Vector512.Create(Half16.ToFloat(*(ushort*)(k + BlockBytes)) * xs[b + 1]), a1);
            }
            for (; b < blocks; b++)
            {
                byte* k = w + (long)b * BlockBytes;
                a0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(Widen512(k + 2), Vector512.Load(xq + b * 32))),
                    Vector512.Create(Half16.ToFloat(*(ushort*)k) * xs[b]), a0);
            }
            return Vector512.Sum(a0 + a1);
        }
        if (Avx2.IsSupported)
        {
            Vector256<float> acc = Vector256<float>.Zero;
            Vector128<byte> m4 = Vector128.Create((byte)0xF);
            Vector128<sbyte> c8 = Vector128.Create((sbyte)8);
            for (int b = 0; b < blocks; b++)
            {
                byte* k = w + (long)b * BlockBytes;
                Vector128<byte> q = Vector128.Load(k + 2);
                Vector256<short> lo = Avx2.ConvertToVector256Int16((q & m4).AsSByte() - c8);
                Vector256<short> hi = Avx2.ConvertToVector256Int16((Vector128.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m4).AsSByte() - c8);
                Vector256<int> p = Avx2.MultiplyAddAdjacent(lo, Vector256.Load(xq + b * 32)) + Avx2.MultiplyAddAdjacent(hi, Vector256.Load(xq + b * 32 + 16));
                acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(Half16.ToFloat(*(ushort*)k) * xs[b]), acc);
            }
            return Vector256.Sum(acc);
        }
        return DotScalar(w, xq, xs, blocks);
    }

    // the 32 codes of a block minus 8, widened to int16 in value order (16 low nibbles, then 16 high nibbles)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Widen512(byte* qs)
    {
        Vector128<byte> q = Vector128.Load(qs), m4 = Vector128.Create((byte)0xF);
        Vector256<byte> codes = Vector256.Create(q & m4, Vector128.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m4);
        return Avx512BW.ConvertToVector512Int16(codes.AsSByte() - Vector256.Create((sbyte)8));
    }

    /// <summary>The scalar definition of <see cref="Dot"/>.</summary>
    public static float DotScalar(byte* w, short* xq, float* xs, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            int isum = 0;
            for (int j = 0; j < 16; j++)
            {
                isum += ((blk[2 + j] & 0xF) - 8) * xq[b * 32 + j];
                isum += ((blk[2 + j] >> 4) - 8) * xq[b * 32 + 16 + j];
            }
            sum += isum * (Half16.ToFloat(*(ushort*)blk) * xs[b]);
        }
        return sum;
    }
}
