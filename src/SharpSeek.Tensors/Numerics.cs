// Scalar number formats used by checkpoints: bfloat16, IEEE half (System.Half) and FP8 E4M3 (OCP "e4m3fn").
// Reference for E4M3: docs/deepseek-architecture.md section 6 (bias 7, no infinities, max 448, NaN = S.1111.111).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Conversions between fp32 and bfloat16 (the upper 16 bits of an fp32).</summary>
public static class Bf16
{
    // Reading bf16 in the products themselves: a 64-byte load of 32 bf16 values holds, in each 32-bit lane i, values 2i
    // (low half) and 2i+1 (high half); lane << 16 is value 2i as fp32 and lane & 0xFFFF0000 is value 2i+1, two ALU
    // operations for 32 values. A dot product does not care about order, so the fp32 operand is permuted the same way
    // (per 32 values: the 16 even ones, then the 16 odd ones), and accumulators kept in that order are put back at the end.

    /// <summary>Of 32 bf16 values loaded as 16 lanes, values 2i as fp32 (lane i).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Even(Vector512<uint> x) => Vector512.ShiftLeft(x, 16).AsSingle();

    /// <summary>Of 32 bf16 values loaded as 16 lanes, values 2i + 1 as fp32 (lane i).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Odd(Vector512<uint> x) => (x & Vector512.Create(0xFFFF0000u)).AsSingle();

    /// <summary>Of 16 bf16 values loaded as 8 lanes, values 2i as fp32 (lane i; the 256-bit kernels, Bf16Avx2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Even(Vector256<uint> x) => Vector256.ShiftLeft(x, 16).AsSingle();

    /// <summary>Of 16 bf16 values loaded as 8 lanes, values 2i + 1 as fp32 (lane i).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Odd(Vector256<uint> x) => (x & Vector256.Create(0xFFFF0000u)).AsSingle();

    /// <summary>For each 32 values (n a multiple of 32): dst[0..16] = src[0, 2, .., 30], dst[16..32] = src[1, 3, .., 31]. AVX-512 only.</summary>
    public static unsafe void EvenOdd(float* src, float* dst, int n)
    {
        Vector512<int> even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), odd = even + Vector512<int>.One;
        for (int i = 0; i < n; i += 32)
        {
            Vector512<float> a = Vector512.Load(src + i), b = Vector512.Load(src + i + 16);
            Avx512F.PermuteVar16x32x2(a, even, b).Store(dst + i);
            Avx512F.PermuteVar16x32x2(a, odd, b).Store(dst + i + 16);
        }
    }

    /// <summary>The inverse of <see cref="EvenOdd"/>, in place. AVX-512 only.</summary>
    public static unsafe void Interleave(float* p, int n)
    {
        Vector512<int> lo = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), hi = lo + Vector512.Create(8);
        for (int i = 0; i < n; i += 32)
        {
            Vector512<float> e = Vector512.Load(p + i), d = Vector512.Load(p + i + 16);
            Avx512F.PermuteVar16x32x2(e, lo, d).Store(p + i);
            Avx512F.PermuteVar16x32x2(e, hi, d).Store(p + i + 16);
        }
    }

    /// <summary>Widens a bfloat16 bit pattern to fp32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Rounds fp32 to the nearest bfloat16, ties to even; NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u)
            return (ushort)((u >> 16) | 0x40); // quiet NaN
        u += 0x7FFFu + ((u >> 16) & 1u);
        return (ushort)(u >> 16);
    }

    /// <summary>The 16 bfloat16 values at <paramref name="p"/> as fp32 (AVX-512F: vpmovzxwd from memory, then a shift).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Widen16(ref ushort p) =>
        Vector512.ShiftLeft(Avx512F.ConvertToVector512UInt32(Vector256.LoadUnsafe(ref p)), 16).AsSingle();

    /// <summary>dst[i] = ToFloat(src[i]).</summary>
    public static void ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length)
            throw new ArgumentException("destination too short", nameof(dst));
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref float d = ref MemoryMarshal.GetReference(dst);
        nuint n = (nuint)src.Length, i = 0;
        if (Avx512F.IsSupported)
        {
            // vpmovzxwd from memory then a shift: half the instructions of the 256-bit widening below
            for (; i + 32 <= n; i += 32)
            {
                Widen16(ref Unsafe.Add(ref s, i)).StoreUnsafe(ref d, i);
                Widen16(ref Unsafe.Add(ref s, i + 16)).StoreUnsafe(ref d, i + 16);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                Vector256<ushort> v = Vector256.LoadUnsafe(ref s, i);
                (Vector256<uint> lo, Vector256<uint> hi) = Vector256.Widen(v);
                Vector256.ShiftLeft(lo, 16).AsSingle().StoreUnsafe(ref d, i);
                Vector256.ShiftLeft(hi, 16).AsSingle().StoreUnsafe(ref d, i + 8);
            }
        }
        for (; i < n; i++)
            Unsafe.Add(ref d, i) = ToFloat(Unsafe.Add(ref s, i));
    }

    /// <summary>dst[i] = FromFloat(src[i]).</summary>
    public static void FromFloat(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length)
            throw new ArgumentException("destination too short", nameof(dst));
        for (int i = 0; i < src.Length; i++)
            dst[i] = FromFloat(src[i]);
    }
}

/// <summary>FP8 E4M3 (e4m3fn): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities; 0x7F/0xFF are NaN.</summary>
public static class Fp8E4M3
{
    /// <summary>The fp32 value of every byte, indexed by the byte.</summary>
    public static ReadOnlySpan<float> Table => s_table;

    private static readonly float[] s_table = BuildTable();

    /// <summary>The largest finite magnitude, 448.</summary>
    public const float MaxValue = 448f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(byte b) => s_table[b];

    /// <summary>Decodes one byte from its bit fields (the definition the table is built from).</summary>
    public static float Decode(byte b)
    {
        int s = b >> 7, e = (b >> 3) & 0xF, m = b & 7;
        float v;
        if (e == 0)
            v = MathF.ScaleB(m / 8f, -6);             // subnormal: 2^-6 * m/8
        else if (e == 15 && m == 7)
            return float.NaN;
        else
            v = MathF.ScaleB(1f + m / 8f, e - 7);
        return s != 0 ? -v : v;
    }

    /// <summary>Rounds fp32 to the nearest E4M3 value (ties to even), saturating at +-448; NaN maps to 0x7F.</summary>
    public static byte FromFloat(float value)
    {
        if (float.IsNaN(value))
            return 0x7F;
        byte sign = value < 0 || (value == 0 && float.IsNegative(value)) ? (byte)0x80 : (byte)0;
        float a = MathF.Abs(value);
        if (a >= MaxValue)
            return (byte)(sign | 0x7E);
        // Search the 127 non-negative finite codes (monotonic in the code): nearest, ties to the even code.
        int lo = 0, hi = 0x7E;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) >> 1;
            if (s_table[mid] <= a) lo = mid; else hi = mid;
        }
        float dl = a - s_table[lo], dh = s_table[hi] - a;
        int code = dl < dh ? lo : dh < dl ? hi : ((lo & 1) == 0 ? lo : hi);
        return (byte)(sign | code);
    }

    private static float[] BuildTable()
    {
        var t = new float[256];
        for (int i = 0; i < 256; i++)
            t[i] = Decode((byte)i);
        return t;
    }
}
