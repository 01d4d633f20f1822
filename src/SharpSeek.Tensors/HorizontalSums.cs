// Lane sums of 256-bit accumulators by one horizontal-add network, shared by the 256-bit kernels (Bf16Avx2, the AVX2
// attention blocks): four accumulators reduced together cost three vhaddps and one add instead of four separate
// reductions, and a single accumulator goes through the same operations so that its sum has the same bits.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

internal static class HorizontalSums
{
    /// <summary>The lane sums of a0..a3, ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) each (AVX).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3)
    {
        Vector256<float> h = Avx.HorizontalAdd(Avx.HorizontalAdd(a0, a1), Avx.HorizontalAdd(a2, a3));
        return h.GetLower() + h.GetUpper();
    }

    /// <summary>The lane sum of a in <see cref="Sum4"/>'s order (the same operations on zeros beside it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum1(Vector256<float> a)
    {
        Vector256<float> h = Avx.HorizontalAdd(Avx.HorizontalAdd(a, Vector256<float>.Zero), Vector256<float>.Zero);
        return h.ToScalar() + h.GetUpper().ToScalar();
    }
}
