// MXFP4 as DeepSeek-V4's safetensors store it (inference/model.py Linear with float4_e2m1fn_x2): the codes
// [rows, cols/2], two per byte (low nibble the even element, high nibble the odd one), and the E8M0 scales
// [rows, cols/32] in a separate tensor. Used in place: the products read both arrays as stored, with the same integer
// arithmetic as the ggml block layout (Mxfp4Matrix), the lookups interleaved back into element order.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>MXFP4 weights with codes and scales in two arrays (DeepSeek-V4 checkpoint layout).</summary>
public sealed unsafe class Mxfp4SplitMatrix : QuantizedProductMatrix
{
    private static readonly sbyte[] Codes = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];
    private readonly byte* _codes, _scales;
    private readonly object? _owner;

    public Mxfp4SplitMatrix(byte* codes, byte* scales, int rows, int cols, object? owner)
        : base(rows, cols)
    {
        if (cols % 32 != 0)
            throw new ArgumentException($"MXFP4 needs a multiple of 32 columns, got {cols}");
        _codes = codes;
        _scales = scales;
        _owner = owner;
    }

    public override WeightFormat Format => WeightFormat.Mxfp4;
    public override ActivationFormat InputFormat => ActivationFormat.Q8;
    public override long ByteSize => (long)Rows * (Cols / 2 + Cols / 32);

    internal object? Owner => _owner;

    /// <summary>Row <paramref name="row"/> repacked bit-exactly into ggml block_mxfp4 layout (Cols/32 blocks of 17 bytes) in <paramref name="dst"/>.</summary>
    public ReadOnlySpan<byte> CopyGgmlRow(int row, Span<byte> dst)
    {
        int blocks = Cols / 32;
        byte* q = _codes + (long)row * (Cols / 2), s = _scales + (long)row * blocks;
        for (int b = 0; b < blocks; b++)
        {
            Span<byte> blk = dst.Slice(b * Mxfp4Matrix.BlockBytes, Mxfp4Matrix.BlockBytes);
            blk[0] = s[b];
            // element i = nibble i%2 of byte i/2 here; ggml keeps element j (j < 16) in the low nibble of qs[j], 16 + j in the high one
            for (int j = 0; j < 16; j++)
            {
                int lo = Nibble(q + b * 16, j), hi = Nibble(q + b * 16, 16 + j);
                blk[1 + j] = (byte)(lo | hi << 4);
            }
        }
        return dst.Slice(0, blocks * Mxfp4Matrix.BlockBytes);
    }

    private static int Nibble(byte* q, int i) => (i & 1) == 0 ? q[i >> 1] & 0xF : q[i >> 1] >> 4;

    public override void ReadRow(int row, Span<float> dst)
    {
        byte* q = _codes + (long)row * (Cols / 2), s = _scales + (long)row * (Cols / 32);
        for (int c = 0; c < Cols; c += 2)
        {
            float d = Mxfp4Matrix.HalfScale(s[c / 32]);
            dst[c] = d * Codes[q[c / 2] & 0xF];
            dst[c + 1] = d * Codes[q[c / 2] >> 4];
        }
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount) =>
        MatMulQ8<RowDot>(x, y, ldy, rowStart, rowCount, "MXFP4");

    // a struct, so the shared product loop is compiled for this kernel
    private readonly struct RowDot : IQ8RowDot
    {
        public static float Dot(QuantizedProductMatrix m, int row, short* xq, float* xs, int blocks)
        {
            var s = Unsafe.As<Mxfp4SplitMatrix>(m);
            return Mxfp4SplitMatrix.Dot(s._codes + (long)row * (s.Cols / 2), s._scales + (long)row * blocks, xq, xs, blocks);
        }
    }

    /// <summary>Σ_b (s_b/2)·d_x[b]·Σ_i k[q_w[b,i]]·q_x[b,i] over one row of codes <paramref name="q"/> and scales <paramref name="s"/>.</summary>
    public static float Dot(byte* q, byte* s, short* xq, float* xs, int blocks)
    {
        if (Avx2.IsSupported)
        {
            Vector128<sbyte> lut = Vector128.Create(Codes.AsSpan());
            Vector128<byte> m4 = Vector128.Create((byte)0xF);
            Vector256<float> acc = Vector256<float>.Zero;
            for (int b = 0; b < blocks; b++)
            {
                Vector128<byte> v = Vector128.Load(q + b * 16);
                Vector128<sbyte> even = Ssse3.Shuffle(lut, (v & m4).AsSByte());
                Vector128<sbyte> odd = Ssse3.Shuffle(lut, (Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4).AsSByte());
                Vector128<sbyte> first = Sse2.UnpackLow(even, odd), second = Sse2.UnpackHigh(even, odd); // element order
                Vector256<int> p = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(first), Vector256.Load(xq + b * 32))
                                   + Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(second), Vector256.Load(xq + b * 32 + 16));
                acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(p), Vector256.Create(Mxfp4Matrix.HalfScale(s[b]) * xs[b]), acc);
            }
            return Vector256.Sum(acc);
        }
        return DotScalar(q, s, xq, xs, blocks);
    }

    /// <summary>The scalar definition of <see cref="Dot"/>.</summary>
    public static float DotScalar(byte* q, byte* s, short* xq, float* xs, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            int isum = 0;
            for (int j = 0; j < 16; j++)
            {
                isum += Codes[q[b * 16 + j] & 0xF] * xq[b * 32 + 2 * j];
                isum += Codes[q[b * 16 + j] >> 4] * xq[b * 32 + 2 * j + 1];
            }
            sum += isum * (Mxfp4Matrix.HalfScale(s[b]) * xs[b]);
        }
        return sum;
    }
}
