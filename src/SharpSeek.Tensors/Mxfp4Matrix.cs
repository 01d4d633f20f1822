// MXFP4 (OCP microscaling FP4), the format DeepSeek-V4 ships its routed experts in, used in place from GGUF files
// (ggml block_mxfp4, 17 bytes / 32 values): uint8 e (E8M0 scale 2^(e-127)), uint8 qs[16]; value j = s · fp4(qs[j] & 0xF),
// value 16 + j = s · fp4(qs[j] >> 4), where fp4 is E2M1 {0, 0.5, 1, 1.5, 2, 3, 4, 6} with a sign bit (code 8..15).
// As ggml, the codes are held as twice their value (int8 {0, 1, 2, 3, 4, 6, 8, 12, ...}) against half the scale, so the
// products are integer: Σ_b s_b/2 · d_x · Σ_i k[q_i] · q_x[i] over Q8 activations (int16 per token). The kernel has a
// scalar reference (DotScalar).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>MXFP4 weights: blocks of 32 E2M1 values with one E8M0 scale (ggml block_mxfp4).</summary>
public sealed unsafe class Mxfp4Matrix : BlockQuantMatrix
{
    public const int BlockValues = 32, BlockBytes = 17;

    /// <summary>The E2M1 codes as twice their value (ggml kvalues_mxfp4).</summary>
    private static readonly sbyte[] Codes = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

    public Mxfp4Matrix(byte* data, int rows, int cols, object? owner)
        : base(data, rows, cols, BlockValues, BlockBytes, "MXFP4", owner)
    {
    }

    public override WeightFormat Format => WeightFormat.Mxfp4;
    public override ActivationFormat InputFormat => ActivationFormat.Q8;
    public static long RowBytes(int cols) => (long)cols / BlockValues * BlockBytes;

    /// <summary>Half the E8M0 scale 2^(e-127) (the codes are doubled), as ggml_e8m0_to_fp32_half: subnormal for e &lt; 2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfScale(byte e) => BitConverter.Int32BitsToSingle(e < 2 ? 0x00200000 << e : (e - 1) << 23);

    public override void ReadRow(int row, Span<float> dst)
    {
        byte* p = RowPointer(row);
        for (int b = 0; b < Cols / BlockValues; b++)
        {
            byte* blk = p + (long)b * BlockBytes;
            float d = HalfScale(blk[0]);
            for (int j = 0; j < 16; j++)
            {
                dst[b * 32 + j] = d * Codes[blk[1 + j] & 0xF];
                dst[b * 32 + 16 + j] = d * Codes[blk[1 + j] >> 4];
            }
        }
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount) =>
        MatMulQ8<RowDot>(x, y, ldy, rowStart, rowCount, "MXFP4");

    // a struct, so the shared product loop is compiled for this kernel (a class type argument would share the code)
    private readonly struct RowDot : IQ8RowDot
    {
        public static float Dot(QuantizedProductMatrix m, int row, short* xq, float* xs, int blocks) =>
            Mxfp4Matrix.Dot(Unsafe.As<Mxfp4Matrix>(m).RowPointer(row), xq, xs, blocks);
    }

    /// <summary>Σ_b (s_b/2)·d_x[b]·Σ_i k[q_w[b,i]]·q_x[b,i] over one row.</summary>
    public static float Dot(byte* w, short* xq, float* xs, int blocks)
    {
        if (Avx512BW.IsSupported)
        {
            Vector128<sbyte> lut = Vector128.Create(Codes.AsSpan());
            Vector512<float> a0 = Vector512<float>.Zero, a1 = a0;
            int b = 0;
            for (; b + 2 <= blocks; b += 2)
            {
                byte* k = w + (long)b * BlockBytes;
                a0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(Widen512(k + 1, lut), Vector512.Load(xq + b * 32))),
                    Vector512.Create(HalfScale(k[0]) * xs[b]), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(Widen512(k + BlockBytes + 1, lut), Vector512.Load(xq + b * 32 + 32))),
                    Vector512.Create(HalfScale(k[BlockBytes]) * xs[b + 1]), a1);
            }
            for (; b < blocks; b++)
            {
                byte* k = w + (long)b * BlockBytes;
                a0 = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(Avx512BW.MultiplyAddAdjacent(Widen512(k + 1, lut), Vector512.Load(xq + b * 32))),
                    Vector512.Create(HalfScale(k[0]) * xs[b]), a0);
            }
            return Vector512.Sum(a0 + a1);
        }
        if (Avx2.IsSupported)
        {
            Vector128<sbyte> lut = Vector128.Create(Codes.AsSpan());
            Vector256<float> acc = Vector256<float>.Zero;
            Vector128<byte> m4 = Vector128.Create((byte)0xF);
            for (int b = 0; b < blocks; b++)
            {
                byte* k = w + (long)b * BlockBytes;
                Vector128<byte> q = Vector128.Load(k + 1);
                Vector128<sbyte> lo = Ssse3.Shuffle(lut, (q & m4).AsSByte());
                Vector128<sbyte> hi = Ssse3.Shuffle(lut, (Vector128.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m4).AsSByte());
                Vector256<int> p = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(lo), Vector256.Load(xq + b * 32))
                                   + Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(hi), Vector256.Load(xq + b * 32 + 16));
                acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(HalfScale(k[0]) * xs[b]), acc);
            }
            return Vector256.Sum(acc);
        }
        return DotScalar(w, xq, xs, blocks);
    }

    // the 32 doubled values of a block, widened to int16 in value order (16 low nibbles, then 16 high nibbles)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Widen512(byte* qs, Vector128<sbyte> lut)
    {
        Vector128<byte> q = Vector128.Load(qs), m4 = Vector128.Create((byte)0xF);
        Vector128<sbyte> lo = Ssse3.Shuffle(lut, (q & m4).AsSByte());
        Vector128<sbyte> hi = Ssse3.Shuffle(lut, (Vector128.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m4).AsSByte());
        return Avx512BW.ConvertToVector512Int16(Vector256.Create(lo, hi));
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
                isum += Codes[blk[1 + j] & 0xF] * xq[b * 32 + j];
                isum += Codes[blk[1 + j] >> 4] * xq[b * 32 + 16 + j];
            }
            sum += isum * (HalfScale(blk[0]) * xs[b]);
        }
        return sum;
    }

    /// <summary>
    /// Quantizes a row into MXFP4 blocks (for tests and conversions): e = floor(log2(max|x|)) - 2 + 127 as ggml's
    /// quantize_row_mxfp4_ref (0 for an all-zero block), each code the nearest doubled E2M1 value of x / (scale/2).
    /// </summary>
    public static void QuantizeRow(ReadOnlySpan<float> x, byte* dst)
    {
        if (x.Length % BlockValues != 0)
            throw new ArgumentException($"MXFP4 rows need a multiple of {BlockValues} values, got {x.Length}");
        for (int b = 0; b < x.Length / BlockValues; b++)
        {
            ReadOnlySpan<float> v = x.Slice(b * BlockValues, BlockValues);
            float amax = 0;
            foreach (float f in v)
                amax = MathF.Max(amax, MathF.Abs(f));
            byte e = amax > 0 ? (byte)Math.Clamp((int)MathF.Floor(MathF.Log2(amax)) - 2 + 127, 1, 254) : (byte)0;
            float inv = 1f / HalfScale(e);
            byte* blk = dst + (long)b * BlockBytes;
            blk[0] = e;
            for (int j = 0; j < 16; j++)
                blk[1 + j] = (byte)(Nearest(v[j] * inv) | Nearest(v[16 + j] * inv) << 4);
        }
    }

    private static int Nearest(float v)
    {
        int best = 0;
        float err = float.MaxValue;
        for (int c = 0; c < 16; c++)
        {
            float d = MathF.Abs(v - Codes[c]);
            if (d < err)
            {
                err = d;
                best = c;
            }
        }
        return best;
    }

    /// <summary>Quantizes a matrix into MXFP4 blocks.</summary>
    public static Mxfp4Matrix Quantize(WeightMatrix src, List<IDisposable> owners)
    {
        NativeBuffer buf = QuantizeRows(src, RowBytes(src.Cols), QuantizeRow, owners);
        return new Mxfp4Matrix(buf.Pointer, src.Rows, src.Cols, buf);
    }
}
