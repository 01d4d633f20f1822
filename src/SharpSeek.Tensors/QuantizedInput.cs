// Activations quantized once per matrix product so that quantized weights can use integer dot products
// (llama.cpp quantizes activations to q8_0 / q8_K the same way). Layouts are ours, chosen for the kernels:
//   Q8:  per token, int16 values (ready for vpmaddwd) with one fp32 scale per token (q = round(x·32767/max|x|)),
//        repeated for every 32-value block so that kernels may read it per block or once per row.
//   Q8K: per token, int8 values, per 256-block one fp32 scale, the sum of each 32-value sub-block (int32 and
//        int16) and of each 16-value group (Q6_K's scale groups, int16); each
//        128-value half of a block is stored as sub-blocks [0, 2, 1, 3] so that one 64-byte load of Q4_K
//        nibbles (low nibbles = sub-blocks 0 and 2, high = 1 and 3) meets its activations contiguously.
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>How a weight format wants its input activations.</summary>
public enum ActivationFormat
{
    /// <summary>Plain fp32.</summary>
    F32,
    /// <summary>int16 with one fp32 scale per token (listed per 32-value block): for Q8_0 and Q4_0 weights.</summary>
    Q8,
    /// <summary>int8 in blocks of 256 with fp32 scales and 32-value sums: for Q4_K weights.</summary>
    Q8K,
}

/// <summary>A batch of activation rows [Tokens, Cols] quantized for integer products; reusable across calls.</summary>
public sealed class QuantizedInput
{
    private short[] _q16 = [];
    private sbyte[] _q8 = [];
    private float[] _scales = [];
    private int[] _sums = [];
    private short[] _sums16 = [];
    private short[] _groupSums = [];

    public ActivationFormat Format { get; private set; }
    public int Tokens { get; private set; }
    public int Cols { get; private set; }

    /// <summary>Q8 values [Tokens, Cols] as int16.</summary>
    public ReadOnlySpan<short> Q16 => _q16.AsSpan(0, Tokens * Cols);
    /// <summary>Q8K values [Tokens, Cols] (permuted per 128 as described above).</summary>
    public ReadOnlySpan<sbyte> Q8 => _q8.AsSpan(0, Tokens * Cols);
    /// <summary>Scales: [Tokens, Cols/32] for Q8 (equal within a token), [Tokens, Cols/256] for Q8K.</summary>
    public ReadOnlySpan<float> Scales => _scales;
    /// <summary>Q8K sums of each 32-value sub-block in natural sub-block order [Tokens, Cols/32].</summary>
    public ReadOnlySpan<int> Sums => _sums;

    internal short[] Q16Array => _q16;
    internal sbyte[] Q8Array => _q8;
    internal float[] ScaleArray => _scales;
    internal int[] SumArray => _sums;
    /// <summary>The Q8K sums as int16 (|sum| ≤ 32·127 fits), for kernels that take them with vpmaddwd.</summary>
    internal short[] Sum16Array => _sums16;
    /// <summary>Q8K sums of each 16-value group in natural order [Tokens, Cols/16] as int16 (Q6_K's scale groups).</summary>
    internal short[] GroupSumArray => _groupSums;

    /// <summary>Quantizes x [tokens, cols] into this buffer.</summary>
    public void Quantize(ActivationFormat format, ReadOnlySpan<float> x, int tokens, int cols)
    {
        int block = format == ActivationFormat.Q8K ? 256 : 32;
        if (format == ActivationFormat.F32 || cols % block != 0)
            throw new ArgumentException($"cannot quantize {cols} columns to {format}");
        Format = format;
        Tokens = tokens;
        Cols = cols;
        int n = tokens * cols;
        if (format == ActivationFormat.Q8)
        {
            if (_q16.Length < n) _q16 = new short[n];
            if (_scales.Length < n / 32) _scales = new float[n / 32];
            for (int t = 0; t < tokens; t++)
            {
                float d = QuantizeInt16(x.Slice(t * cols, cols), _q16.AsSpan(t * cols, cols));
                _scales.AsSpan(t * cols / 32, cols / 32).Fill(d);
            }
        }
        else
        {
            if (_q8.Length < n) _q8 = new sbyte[n];
            if (_scales.Length < n / 256) _scales = new float[n / 256];
            if (_sums.Length < n / 32) _sums = new int[n / 32];
            if (_sums16.Length < n / 32) _sums16 = new short[n / 32];
            if (_groupSums.Length < n / 16) _groupSums = new short[n / 16];
            for (int b = 0; b < n / 256; b++)
                QuantizeQ8KBlock(x.Slice(b * 256, 256), b);
        }
    }

    /// <summary>
    /// One Q8K block: q = round(x·127/max|x|) (half to even), stored in the permuted sub-block order, with its scale,
    /// 32-value sums (int32 and int16) and 16-value sums. AVX-512 path and scalar path give identical results.
    /// </summary>
    private void QuantizeQ8KBlock(ReadOnlySpan<float> x, int b)
    {
        float amax = MathF.Abs(TensorPrimitives.MaxMagnitude(x));
        if (!(amax > 0))
        {
            _scales[b] = 0f;
            _q8.AsSpan(b * 256, 256).Clear();
            _sums.AsSpan(b * 8, 8).Clear();
            _sums16.AsSpan(b * 8, 8).Clear();
            _groupSums.AsSpan(b * 16, 16).Clear();
            return;
        }
        float id = 127f / amax;
        _scales[b] = amax / 127f;
        if (Avx512F.IsSupported)
        {
            var vid = Vector512.Create(id);
            ref float xr = ref MemoryMarshal.GetReference(x);
            for (int g = 0; g < 16; g++)
            {
                Vector512<int> q = Vector512.ConvertToInt32(Vector512.Round(Vector512.LoadUnsafe(ref xr, (nuint)(g * 16)) * vid));
                _groupSums[b * 16 + g] = (short)Vector512.Sum(q);
                int dst = b * 256 + PermutedSubBlock(g >> 1) * 32 + (g & 1) * 16;
                Avx512F.ConvertToVector128SByte(q).StoreUnsafe(ref _q8[dst]);
            }
        }
        else if (Avx2.IsSupported)
        {
            // the loop below in 256 bits (the same rounding, half to even): two vectors per group of 16, packed to int8
            var vid = Vector256.Create(id);
            ref float xr = ref MemoryMarshal.GetReference(x);
            for (int g = 0; g < 16; g++)
            {
                Vector256<int> q0 = Vector256.ConvertToInt32(Vector256.Round(Vector256.LoadUnsafe(ref xr, (nuint)(g * 16)) * vid));
                Vector256<int> q1 = Vector256.ConvertToInt32(Vector256.Round(Vector256.LoadUnsafe(ref xr, (nuint)(g * 16 + 8)) * vid));
                _groupSums[b * 16 + g] = (short)Vector256.Sum(q0 + q1);
                // vpackssdw packs per 128-bit lane ([q0 0-3, q1 0-3 | q0 4-7, q1 4-7]); the 64-bit pairs put back in order
                Vector256<short> w = Avx2.Permute4x64(Avx2.PackSignedSaturate(q0, q1).AsInt64(), 0b11_01_10_00).AsInt16();
                int dst = b * 256 + PermutedSubBlock(g >> 1) * 32 + (g & 1) * 16;
                Sse2.PackSignedSaturate(w.GetLower(), w.GetUpper()).StoreUnsafe(ref _q8[dst]);
            }
        }
        else
        {
            for (int g = 0; g < 16; g++)
            {
                int dst = b * 256 + PermutedSubBlock(g >> 1) * 32 + (g & 1) * 16, sum = 0;
                for (int l = 0; l < 16; l++)
                {
                    int q = (int)MathF.Round(x[g * 16 + l] * id);
                    _q8[dst + l] = (sbyte)q;
                    sum += q;
                }
                _groupSums[b * 16 + g] = (short)sum;
            }
        }
        for (int s = 0; s < 8; s++)
        {
            int sum = _groupSums[b * 16 + 2 * s] + _groupSums[b * 16 + 2 * s + 1];
            _sums[b * 8 + s] = sum;
            _sums16[b * 8 + s] = (short)sum;
        }
    }

    /// <summary>Storage slot of natural sub-block s (0..7) in the Q8K permuted order [0, 2, 1, 3, 4, 6, 5, 7].</summary>
    public static int PermutedSubBlock(int s) => (s & ~3) | ((s & 1) << 1) | ((s >> 1) & 1);

    /// <summary>q = round(x / d) as int16, d = max|x| / 32767 (round half to even, vectorized); returns d.</summary>
    public static float QuantizeInt16(ReadOnlySpan<float> x, Span<short> q)
    {
        float amax = MathF.Abs(TensorPrimitives.MaxMagnitude(x));
        if (!(amax > 0))
        {
            q.Slice(0, x.Length).Clear();
            return 0f;
        }
        float id = 32767f / amax;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vid = Vector512.Create(id);
            ref float xr = ref MemoryMarshal.GetReference(x);
            ref short qr = ref MemoryMarshal.GetReference(q);
            for (; i + 32 <= x.Length; i += 32)
            {
                var a = Vector512.ConvertToInt32(Vector512.Round(Vector512.LoadUnsafe(ref xr, (nuint)i) * vid));
                var b = Vector512.ConvertToInt32(Vector512.Round(Vector512.LoadUnsafe(ref xr, (nuint)(i + 16)) * vid));
                Vector512.Narrow(a, b).StoreUnsafe(ref qr, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vid = Vector256.Create(id);
            ref float xr = ref MemoryMarshal.GetReference(x);
            ref short qr = ref MemoryMarshal.GetReference(q);
            for (; i + 16 <= x.Length; i += 16)
            {
                var a = Vector256.ConvertToInt32(Vector256.Round(Vector256.LoadUnsafe(ref xr, (nuint)i) * vid));
                var b = Vector256.ConvertToInt32(Vector256.Round(Vector256.LoadUnsafe(ref xr, (nuint)(i + 8)) * vid));
                Vector256.Narrow(a, b).StoreUnsafe(ref qr, (nuint)i);
            }
        }
        for (; i < x.Length; i++)
            q[i] = (short)MathF.Round(x[i] * id);
        return amax / 32767f;
    }
}
