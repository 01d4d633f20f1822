// Fast scalar fp16 → fp32 for the block scales of quantized formats (GGUF stores them as IEEE half).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpSeek.Tensors;

/// <summary>fp16 bit-pattern conversions.</summary>
public static class Half16
{
    /// <summary>Exact for zero, subnormal and normal halves (not for Inf/NaN, which scales never hold).</summary>
    /// <remarks>
    /// Normal halves are rebiased in integer registers; zero and subnormal halves are converted as the integer
    /// mantissa times 2^-24. No step produces a denormal float: the former magic-number multiply did for subnormal
    /// halves, and each denormal operand costs a microcode assist of 100+ cycles. Block scales of small weights are
    /// subnormal halves often (Q6_K d of a weight matrix with values around 0.02 is about 1e-5): a Q6_K product ran at
    /// 2.5 GB/s from memory instead of 9 because of it.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort h)
    {
        // the bits are assembled in an integer register on the normal path (one move to a vector register at the end)
        uint m = h & 0x7FFFu;
        uint bits = m >= 0x400 ? (m << 13) + (112u << 23) : BitConverter.SingleToUInt32Bits((int)m * 5.9604644775390625e-8f);
        return BitConverter.UInt32BitsToSingle(bits | ((h & 0x8000u) << 16));
    }

    /// <summary>Two or four halves (in the low 16 bits of each lane) to fp32, the same numbers as <see cref="ToFloat"/>, without denormal intermediates.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> ToFloat(Vector128<uint> h)
    {
        Vector128<uint> m = h & Vector128.Create(0x7FFFu);
        Vector128<float> normal = (Vector128.ShiftLeft(m, 13) + Vector128.Create(112u << 23)).AsSingle();
        Vector128<float> small = Vector128.ConvertToSingle(m.AsInt32()) * Vector128.Create(5.9604644775390625e-8f);
        Vector128<float> mag = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(m.AsInt32(), Vector128.Create(0x400)).AsSingle(), normal, small);
        return (mag.AsUInt32() | Vector128.ShiftLeft(h & Vector128.Create(0x8000u), 16)).AsSingle();
    }

    /// <summary>
    /// The fp16 values at <paramref name="src"/>, <paramref name="src"/> + stride, ... (n of them) as fp32 by
    /// <see cref="ToFloat(ushort)"/> (block scales of quantized rows, converted ahead of a kernel's loop so that it
    /// reads them with broadcast loads).
    /// </summary>
    public static unsafe void ToFloatStrided(byte* src, int stride, int n, float* dst)
    {
        for (int i = 0; i < n; i++)
            dst[i] = ToFloat(*(ushort*)(src + (long)i * stride));
    }

    /// <summary>Round to nearest even fp16.</summary>
    public static ushort FromFloat(float f) => BitConverter.HalfToUInt16Bits((Half)f);
}
