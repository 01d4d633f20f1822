// Lane sums of 256-bit accumulators by one horizontal-add network, shared by the 256-bit kernels (Bf16Avx2, the AVX2
// attention blocks, the AVX2 fp32 tiles): four accumulators reduced together cost three vhaddps and one add instead of
// four separate reductions, each in Vector256.Sum's order (tested), and a single accumulator goes through the same
// operations so that its sum has the same bits.
// For 512-bit accumulators, Sum16 / Sum8 / Sum4 reduce sixteen, eight or four together by a shuffle network that adds the same pairs
// in the same tree as Vector512.Sum does for each alone, [((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))] + [the same
// over l8..l15], so a kernel that reduces its accumulators together gives the bits a kernel summing each one alone
// gives (tested against Vector512.Sum): 45 operations for sixteen sums instead of ~150.
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

    // lanes (0, 1) and (2, 3) of every 128-bit block of a and b summed: [a0 + a1, a2 + a3, b0 + b1, b2 + b3] per block
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pairs(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle(a, b, 0x88) + Avx512F.Shuffle(a, b, 0xDD);

    // 128-bit blocks (0, 1) and (2, 3) of a and b summed: [a.B0 + a.B1, a.B2 + a.B3, b.B0 + b.B1, b.B2 + b.B3]
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> BlockPairs(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle4x128(a, b, 0x88) + Avx512F.Shuffle4x128(a, b, 0xDD);

    /// <summary>Lane j = Vector512.Sum(a_j), bit for bit, for sixteen accumulators (AVX-512F).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sum16(
        Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7,
        Vector512<float> a8, Vector512<float> a9, Vector512<float> a10, Vector512<float> a11,
        Vector512<float> a12, Vector512<float> a13, Vector512<float> a14, Vector512<float> a15)
    {
        // per 128-bit block k: [s0, s1, s2, s3] of each group of four (s = (l0 + l1) + (l2 + l3) of that block)
        Vector512<float> g0 = Pairs(Pairs(a0, a1), Pairs(a2, a3));
        Vector512<float> g1 = Pairs(Pairs(a4, a5), Pairs(a6, a7));
        Vector512<float> g2 = Pairs(Pairs(a8, a9), Pairs(a10, a11));
        Vector512<float> g3 = Pairs(Pairs(a12, a13), Pairs(a14, a15));
        // blocks (0 + 1), (2 + 3), then their sum: [a0..a3 | a4..a7 | a8..a11 | a12..a15]
        return BlockPairs(BlockPairs(g0, g1), BlockPairs(g2, g3));
    }

    /// <summary>Lanes 0..7 = Vector512.Sum(a0..a7), bit for bit (AVX-512F).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sum8(
        Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7)
    {
        Vector512<float> h = BlockPairs(Pairs(Pairs(a0, a1), Pairs(a2, a3)), Pairs(Pairs(a4, a5), Pairs(a6, a7)));
        return BlockPairs(h, h).GetLower(); // [a0..a3 | a4..a7]
    }

    /// <summary>
    /// The lane sums of a 4-row x <paramref name="tokens"/>-token tile (tokens 1..4; accumulator a{row}{token}, those of
    /// tokens past the count unused) stored as y[t·ldy + r], four rows of a token at once, each in Vector512.Sum's order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreRows4(float* y, int ldy, int tokens,
        Vector512<float> a00, Vector512<float> a10, Vector512<float> a20, Vector512<float> a30,
        Vector512<float> a01, Vector512<float> a11, Vector512<float> a21, Vector512<float> a31,
        Vector512<float> a02, Vector512<float> a12, Vector512<float> a22, Vector512<float> a32,
        Vector512<float> a03, Vector512<float> a13, Vector512<float> a23, Vector512<float> a33)
    {
        if (tokens == 1)
        {
            Sum4(a00, a10, a20, a30).Store(y);
        }
        else if (tokens == 2)
        {
            Vector256<float> s = Sum8(a00, a10, a20, a30, a01, a11, a21, a31);
            s.GetLower().Store(y);
            s.GetUpper().Store(y + ldy);
        }
        else
        {
            // three tokens: the fourth token's accumulators are zeros, its sums not stored
            Vector512<float> s = Sum16(a00, a10, a20, a30, a01, a11, a21, a31, a02, a12, a22, a32, a03, a13, a23, a33);
            s.GetLower().GetLower().Store(y);
            s.GetLower().GetUpper().Store(y + ldy);
            s.GetUpper().GetLower().Store(y + 2 * ldy);
            if (tokens > 3)
                s.GetUpper().GetUpper().Store(y + 3 * ldy);
        }
    }

    /// <summary>Lanes 0..3 = Vector512.Sum(a0..a3), bit for bit (AVX-512F).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        Vector512<float> g = Pairs(Pairs(a0, a1), Pairs(a2, a3));
        Vector512<float> h = BlockPairs(g, g); // [B0 + B1, B2 + B3, the same]
        return h.GetLower().GetLower() + h.GetLower().GetUpper();
    }
}
