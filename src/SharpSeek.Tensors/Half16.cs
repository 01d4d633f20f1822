// Fast scalar fp16 → fp32 for the block scales of quantized formats (GGUF stores them as IEEE half).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>fp16 bit-pattern conversions.</summary>
public static class Half16
{
    /// <summary>Every fp16 bit pattern as fp32 (256 KB, built once by .NET's own exact conversion).</summary>
    private static readonly unsafe float* s_table = BuildTable();

    /// <summary>The table itself, for vector gathers (index = the fp16 bits, scale 4).</summary>
    internal static unsafe float* Table => s_table;

    private static unsafe float* BuildTable()
    {
        var table = (float*)NativeMemory.AlignedAlloc(65536 * sizeof(float), 64);
        for (int h = 0; h < 65536; h++)
            table[h] = (float)BitConverter.UInt16BitsToHalf((ushort)h);
        return table;
    }

    /// <summary>Exact for every half (a table lookup: one load, no arithmetic).</summary>
    /// <remarks>
    /// The block scales of Q8_0, Q4_K and Q6_K are read once per 32 or 256 weights in the decode products; converting
    /// them arithmetically cost a branch, five integer operations and a GPR-to-vector move per block, which left the
    /// Q8_0 product compute-bound (12.6-20 GB/s in cache on one thread); with the lookup (as llama.cpp's
    /// ggml_table_f32_f16) it reads 28-30 GB/s. The table is touched sparsely: a matrix's scales span a few binades,
    /// a few KB of it. Subnormal halves come out as normal floats, so no denormal operand (and its microcode assist)
    /// reaches the kernels.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float ToFloat(ushort h) => s_table[h];

    /// <summary>The eight fp16 values at <paramref name="src"/> as fp32 by one gather from the table (the per-row scales of
    /// eight interleaved rows). Needs AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe Vector256<float> ToFloat8(ushort* src) =>
        Avx2.GatherVector256(s_table, Avx2.ConvertToVector256Int32(src), 4);

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
