// Fast scalar fp16 → fp32 for the block scales of quantized formats (GGUF stores them as IEEE half).
using System.Runtime.CompilerServices;

namespace SharpSeek.Tensors;

/// <summary>fp16 bit-pattern conversions.</summary>
public static class Half16
{
    /// <summary>Exact for zero, subnormal and normal halves (not for Inf/NaN, which scales never hold).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort h)
    {
        // move exponent+mantissa into fp32 position, rescale by 2^112 (handles subnormals), then restore the sign
        float mag = BitConverter.Int32BitsToSingle((h & 0x7FFF) << 13) * 5.192296858534828e33f;
        return BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(mag) | ((h & 0x8000) << 16));
    }

    /// <summary>
    /// The fp16 values at <paramref name="src"/>, <paramref name="src"/> + stride, ... (n of them) as fp32, the same
    /// numbers as <see cref="ToFloat"/>, in integer registers for normal values (block scales of quantized rows,
    /// converted ahead of a kernel's loop so that it reads them with broadcast loads).
    /// </summary>
    public static unsafe void ToFloatStrided(byte* src, int stride, int n, float* dst)
    {
        uint* d = (uint*)dst;
        for (int i = 0; i < n; i++)
        {
            // exponent rebias 127 - 15 = 112 for normal halves; zero, subnormals (and Inf/NaN) take the exact path
            uint h = *(ushort*)(src + (long)i * stride);
            d[i] = (h & 0x7C00) is 0 or 0x7C00 ? BitConverter.SingleToUInt32Bits(ToFloat((ushort)h))
                                                : (((h & 0x7FFF) << 13) + (112u << 23)) | ((h & 0x8000) << 16);
        }
    }

    /// <summary>Round to nearest even fp16.</summary>
    public static ushort FromFloat(float f) => BitConverter.HalfToUInt16Bits((Half)f);
}
