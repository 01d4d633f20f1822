// Q6_K products with AVX-VNNI (256-bit vpdpbusd / vpdpwssd; on CPUs without AVX-512 the same integer sums from AVX2,
// Int8Dot), the same scheme as Q4KVnni:
//   code_s = 6-bit values of sub-block s (32 values) as u8 0..63 (one vpternlog per sub-block joins ql and qh bits)
//   dp_s   = vpdpbusd(code_s, x_s)                    8 int32 lanes, each ≤ 4·63·128 = 32256 (fits int16)
//   pair   = vpackssdw(dp_s, dp_s')                   int16 [s 0-3, s' 0-3 | s 4-7, s' 4-7]: lanes 0-3 of a 128-bit
//                                                     half are the sub-block's first 16 values, 4-7 its last 16
//   isum  += vpdpwssd(pair, the int8 group scales sign-extended and placed to match)
// and the −32 offset of the codes is applied once per super-block: −32·Σ_j scale_j·(sum of x over group j), one
// vpmaddwd of the 16 scales against the 16-value activation sums.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>AVX-VNNI kernels for <see cref="Q6KMatrix"/> (used when <see cref="Int8Dot.KernelsSupported"/>).</summary>
internal static unsafe class Q6KVnni
{
    private const int BlockBytes = Q6KMatrix.BlockBytes, QhOffset = 128, ScalesOffset = 192, DOffset = 208;

    public static bool IsSupported => Int8Dot.KernelsSupported;

    // scales of one half (int16 sc[8h..8h+7] in both 128-bit lanes): pair (k0, k1) takes groups [0, 2 | 1, 3],
    // pair (k2, k3) groups [4, 6 | 5, 7]
    // (as constants, not static readonly fields: without tiered compilation a static field read in a loop carries a
    // class-initialization helper call, around which the JIT spilled the accumulators on every block)
    private static Vector256<byte> PairA
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create((byte)0, 1, 0, 1, 0, 1, 0, 1, 4, 5, 4, 5, 4, 5, 4, 5, 2, 3, 2, 3, 2, 3, 2, 3, 6, 7, 6, 7, 6, 7, 6, 7);
    }

    private static Vector256<byte> PairB
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create((byte)8, 9, 8, 9, 8, 9, 8, 9, 12, 13, 12, 13, 12, 13, 12, 13, 10, 11, 10, 11, 10, 11, 10, 11, 14, 15, 14, 15, 14, 15, 14, 15);
    }

    /// <summary>The 6-bit codes of the 4 sub-blocks of half h (natural order k = 0..3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Codes(byte* blk, int h, out Vector256<byte> c0, out Vector256<byte> c1, out Vector256<byte> c2, out Vector256<byte> c3)
    {
        Vector256<byte> m4 = Vector256.Create((byte)0x0F), m6 = Vector256.Create((byte)0x3F);
        Vector256<byte> ql0 = Vector256.Load(blk + 64 * h), ql1 = Vector256.Load(blk + 64 * h + 32);
        Vector256<ushort> qh = Vector256.Load(blk + QhOffset + 32 * h).AsUInt16();
        // low nibble from ql, bits 4-5 from the right pair of qh bits (16-bit shifts: what crosses a byte is masked off)
        c0 = Vector256.ConditionalSelect(m4, ql0, Vector256.ShiftLeft(qh, 4).AsByte()) & m6;
        c1 = Vector256.ConditionalSelect(m4, ql1, Vector256.ShiftLeft(qh, 2).AsByte()) & m6;
        c2 = Vector256.ConditionalSelect(m4, Vector256.ShiftRightLogical(ql0.AsUInt16(), 4).AsByte(), qh.AsByte()) & m6;
        c3 = Vector256.ConditionalSelect(m4, Vector256.ShiftRightLogical(ql1.AsUInt16(), 4).AsByte(), Vector256.ShiftRightLogical(qh, 2).AsByte()) & m6;
    }

    /// <summary>Σ_j sc_j·Σ code·x over one half for one token (x = the half's 128 activations, Q8K slot order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Half(Vector256<byte> c0, Vector256<byte> c1, Vector256<byte> c2, Vector256<byte> c3,
                                       Vector256<short> sA, Vector256<short> sB, sbyte* x)
    {
        // natural sub-blocks k = 0, 1, 2, 3 of the half sit at slots 0, 2, 1, 3
        Vector256<int> a = Int8Dot.Words(Avx2.PackSignedSaturate(
            Int8Dot.Bytes(c0, Vector256.Load(x)), Int8Dot.Bytes(c1, Vector256.Load(x + 64))), sA);
        Vector256<int> b = Int8Dot.Words(Avx2.PackSignedSaturate(
            Int8Dot.Bytes(c2, Vector256.Load(x + 32)), Int8Dot.Bytes(c3, Vector256.Load(x + 96))), sB);
        return a + b;
    }

    /// <summary>The two halves' pair-scale vectors and all 16 scales as int16 (for the offset term).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scales(byte* blk, out Vector256<short> s0A, out Vector256<short> s0B, out Vector256<short> s1A, out Vector256<short> s1B, out Vector256<short> sc)
    {
        sc = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + ScalesOffset)));
        Vector256<byte> lo = Avx2.Permute4x64(sc.AsInt64(), 0b01_00_01_00).AsByte(), hi = Avx2.Permute4x64(sc.AsInt64(), 0b11_10_11_10).AsByte();
        s0A = Avx2.Shuffle(lo, PairA).AsInt16();
        s0B = Avx2.Shuffle(lo, PairB).AsInt16();
        s1A = Avx2.Shuffle(hi, PairA).AsInt16();
        s1B = Avx2.Shuffle(hi, PairB).AsInt16();
    }

    /// <summary>Σ_j sc_j·Σ (code − 32)·x over a block for one token, as 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Block(Vector256<byte> c00, Vector256<byte> c01, Vector256<byte> c02, Vector256<byte> c03,
                                        Vector256<byte> c10, Vector256<byte> c11, Vector256<byte> c12, Vector256<byte> c13,
                                        Vector256<short> s0A, Vector256<short> s0B, Vector256<short> s1A, Vector256<short> s1B,
                                        Vector256<short> sc, sbyte* x, short* groupSums)
    {
        Vector256<int> isum = Half(c00, c01, c02, c03, s0A, s0B, x) + Half(c10, c11, c12, c13, s1A, s1B, x + 128);
        Vector256<int> offset = Avx2.MultiplyAddAdjacent(sc, Vector256.Load(groupSums));
        return isum - Vector256.ShiftLeft(offset, 5);
    }

    public static float Dot(byte* w, sbyte* xq, float* xd, short* groupSums, int blocks)
    {
        float acc = 0;
        for (int b = 0; b < blocks; b++)
            acc = Step(w + (long)b * BlockBytes, xq + (long)b * 256, xd[b], groupSums + (long)b * 16, acc);
        return acc;
    }

    /// <summary><see cref="Dot"/> of two rows against one token, a block of each in turn: two memory streams for
    /// the hardware prefetchers instead of one (decode).</summary>
    public static void DotPair(byte* w0, byte* w1, sbyte* xq, float* xd, short* groupSums, int blocks, float* y0, float* y1)
    {
        float a0 = 0, a1 = 0;
        for (int b = 0; b < blocks; b++)
        {
            long o = (long)b * BlockBytes;
            a0 = Step(w0 + o, xq + (long)b * 256, xd[b], groupSums + (long)b * 16, a0);
            a1 = Step(w1 + o, xq + (long)b * 256, xd[b], groupSums + (long)b * 16, a1);
        }
        *y0 = a0;
        *y1 = a1;
    }

    /// <summary>acc + d·d_x·(one block's Σ_j sc_j·Σ (code − 32)·x) for one token: the block's integer sum is exact, and
    /// then one fused multiply-add per block (as Q6KInterleavedMatrix does per row, so the two layouts give the same bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Step(byte* blk, sbyte* x, float dx, short* g, float acc)
    {
        // decode streams the weights once: keep DRAM requests in flight 4 KB ahead (210-byte blocks)
        Sse.Prefetch0(blk + 4096);
        Sse.Prefetch0(blk + 4096 + 64);
        Sse.Prefetch0(blk + 4096 + 128);
        Sse.Prefetch0(blk + 4096 + 192);
        int sum;
        if (AvxVnni.IsSupported)
        {
            Scales(blk, out var s0A, out var s0B, out var s1A, out var s1B, out var sc);
            Codes(blk, 0, out var c00, out var c01, out var c02, out var c03);
            Codes(blk, 1, out var c10, out var c11, out var c12, out var c13);
            sum = Vector256.Sum(Block(c00, c01, c02, c03, c10, c11, c12, c13, s0A, s0B, s1A, s1B, sc, x, g));
        }
        else
        {
            BlockSumsAvx2<Tokens1>(blk, x, 0, g, 0, out sum, out _, out _, out _);
        }
        return MathF.FusedMultiplyAdd(sum, Half16.ToFloat(*(ushort*)(blk + DOffset)) * dx, acc);
    }

    // ---- AVX2 without VNNI ----
    // vpmaddubsw(code, x) leaves int16 pair sums (|.| ≤ 2·63·127) whose first eight lanes are the sub-block's first 16
    // values (group 2k) and the last eight its last 16 (group 2k + 1), so one vpmaddwd against those two groups' scales
    // (each repeated eight times) gives int32 sums ready to add: two multiplies per 32 values, no packing (Block above
    // takes vpmaddubsw + vpmaddwd against ones per sub-block, then packs pairs of them for the scales). The block's
    // integer total is the same number, so the results are the same bits.

    /// <summary>Byte shuffle putting int16 scale 2k of a 128-bit lane's eight in the low lane's eight words and scale
    /// 2k + 1 in the high lane's (the source holds the same eight scales in both lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> ScalePair(int k)
    {
        byte a = (byte)(4 * k), b = (byte)(4 * k + 2);
        return Vector256.Create(a, (byte)(a + 1), a, (byte)(a + 1), a, (byte)(a + 1), a, (byte)(a + 1), a, (byte)(a + 1), a, (byte)(a + 1), a, (byte)(a + 1), a, (byte)(a + 1),
                                b, (byte)(b + 1), b, (byte)(b + 1), b, (byte)(b + 1), b, (byte)(b + 1), b, (byte)(b + 1), b, (byte)(b + 1), b, (byte)(b + 1), b, (byte)(b + 1));
    }

    /// <summary>isum + Σ over sub-block k's 32 values of sc·code·x (x: the sub-block's activations).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SubBlockAvx2(Vector256<int> isum, Vector256<byte> code, Vector256<short> scales, sbyte* x) =>
        isum + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(code, Vector256.Load(x)), scales);

    /// <summary>One block's integer total Σ_j sc_j·Σ (code − 32)·x for N ≤ 4 tokens (activations xStride bytes apart,
    /// 16-value sums gStride apart): the codes and the scale vectors made once for all of them. Needs AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockSumsAvx2<TN>(byte* blk, sbyte* x, long xStride, short* g, long gStride, out int t0, out int t1, out int t2, out int t3)
        where TN : struct, ITokenCount
    {
        Vector256<short> sc = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(blk + ScalesOffset)));
        Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
        for (int h = 0; h < 2; h++)
        {
            // the half's eight scales in both 128-bit lanes, then per sub-block its two groups' scales
            Vector256<byte> half = (h == 0 ? Avx2.Permute4x64(sc.AsInt64(), 0b01_00_01_00) : Avx2.Permute4x64(sc.AsInt64(), 0b11_10_11_10)).AsByte();
            Codes(blk, h, out var c0, out var c1, out var c2, out var c3);
            sbyte* xh = x + 128 * h;
            // natural sub-blocks k = 0, 1, 2, 3 of the half sit at slots 0, 2, 1, 3
            Vector256<short> s = Avx2.Shuffle(half, ScalePair(0)).AsInt16();
            i0 = SubBlockAvx2(i0, c0, s, xh);
            if (TN.N > 1) i1 = SubBlockAvx2(i1, c0, s, xh + xStride);
            if (TN.N > 2) i2 = SubBlockAvx2(i2, c0, s, xh + 2 * xStride);
            if (TN.N > 3) i3 = SubBlockAvx2(i3, c0, s, xh + 3 * xStride);
            s = Avx2.Shuffle(half, ScalePair(1)).AsInt16();
            i0 = SubBlockAvx2(i0, c1, s, xh + 64);
            if (TN.N > 1) i1 = SubBlockAvx2(i1, c1, s, xh + xStride + 64);
            if (TN.N > 2) i2 = SubBlockAvx2(i2, c1, s, xh + 2 * xStride + 64);
            if (TN.N > 3) i3 = SubBlockAvx2(i3, c1, s, xh + 3 * xStride + 64);
            s = Avx2.Shuffle(half, ScalePair(2)).AsInt16();
            i0 = SubBlockAvx2(i0, c2, s, xh + 32);
            if (TN.N > 1) i1 = SubBlockAvx2(i1, c2, s, xh + xStride + 32);
            if (TN.N > 2) i2 = SubBlockAvx2(i2, c2, s, xh + 2 * xStride + 32);
            if (TN.N > 3) i3 = SubBlockAvx2(i3, c2, s, xh + 3 * xStride + 32);
            s = Avx2.Shuffle(half, ScalePair(3)).AsInt16();
            i0 = SubBlockAvx2(i0, c3, s, xh + 96);
            if (TN.N > 1) i1 = SubBlockAvx2(i1, c3, s, xh + xStride + 96);
            if (TN.N > 2) i2 = SubBlockAvx2(i2, c3, s, xh + 2 * xStride + 96);
            if (TN.N > 3) i3 = SubBlockAvx2(i3, c3, s, xh + 3 * xStride + 96);
        }
        // the −32 offset: −32·Σ_j sc_j·(Σx over group j)
        t0 = Vector256.Sum(i0 - Vector256.ShiftLeft(Avx2.MultiplyAddAdjacent(sc, Vector256.Load(g)), 5));
        t1 = TN.N > 1 ? Vector256.Sum(i1 - Vector256.ShiftLeft(Avx2.MultiplyAddAdjacent(sc, Vector256.Load(g + gStride)), 5)) : 0;
        t2 = TN.N > 2 ? Vector256.Sum(i2 - Vector256.ShiftLeft(Avx2.MultiplyAddAdjacent(sc, Vector256.Load(g + 2 * gStride)), 5)) : 0;
        t3 = TN.N > 3 ? Vector256.Sum(i3 - Vector256.ShiftLeft(Avx2.MultiplyAddAdjacent(sc, Vector256.Load(g + 3 * gStride)), 5)) : 0;
    }

    /// <summary>Q6_K rows against a tile of tokens: <see cref="DotTokens{TN}"/>, a single token through <see cref="Dot"/>.</summary>
    internal readonly struct Tile : IQ8KTileKernel
    {
        public static int SumsPerBlock => 16;

        public static void Run<TN>(byte* w, sbyte* xq, int cols, float* xd, short* sums, int blocks, float* y, int ldy) where TN : struct, ITokenCount
        {
            if (TN.N == 1)
                *y = Dot(w, xq, xd, sums, blocks);
            else
                DotTokens<TN>(w, xq, cols, xd, sums, blocks, y, ldy);
        }
    }

    /// <summary>One row against N ≤ 4 tokens (activations xStride apart, scales and 16-value sums per token after each
    /// other); y[u·ldy] for token u: codes and scales unpacked once per block for all of them, each token's sum formed
    /// as <see cref="Dot"/> forms it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotTokens<TN>(byte* w, sbyte* xq, int xStride, float* xd, short* groupSums, int blocks, float* y, int ldy)
        where TN : struct, ITokenCount
    {
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int gStride = blocks * 16;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            sbyte* x = xq + (long)b * 256;
            short* g = groupSums + (long)b * 16;
            int t0, t1 = 0, t2 = 0, t3 = 0;
            if (AvxVnni.IsSupported)
            {
                Scales(blk, out var s0A, out var s0B, out var s1A, out var s1B, out var sc);
                Codes(blk, 0, out var c00, out var c01, out var c02, out var c03);
                Codes(blk, 1, out var c10, out var c11, out var c12, out var c13);
                t0 = Vector256.Sum(Block(c00, c01, c02, c03, c10, c11, c12, c13, s0A, s0B, s1A, s1B, sc, x, g));
                if (TN.N > 1) t1 = Vector256.Sum(Block(c00, c01, c02, c03, c10, c11, c12, c13, s0A, s0B, s1A, s1B, sc, x + xStride, g + gStride));
                if (TN.N > 2) t2 = Vector256.Sum(Block(c00, c01, c02, c03, c10, c11, c12, c13, s0A, s0B, s1A, s1B, sc, x + 2L * xStride, g + 2 * gStride));
                if (TN.N > 3) t3 = Vector256.Sum(Block(c00, c01, c02, c03, c10, c11, c12, c13, s0A, s0B, s1A, s1B, sc, x + 3L * xStride, g + 3 * gStride));
            }
            else
            {
                BlockSumsAvx2<TN>(blk, x, xStride, g, gStride, out t0, out t1, out t2, out t3);
            }
            float d = Half16.ToFloat(*(ushort*)(blk + DOffset));
            a0 = MathF.FusedMultiplyAdd(t0, d * xd[b], a0);
            if (TN.N > 1) a1 = MathF.FusedMultiplyAdd(t1, d * xd[blocks + b], a1);
            if (TN.N > 2) a2 = MathF.FusedMultiplyAdd(t2, d * xd[2 * blocks + b], a2);
            if (TN.N > 3) a3 = MathF.FusedMultiplyAdd(t3, d * xd[3 * blocks + b], a3);
        }
        y[0] = a0;
        if (TN.N > 1) y[ldy] = a1;
        if (TN.N > 2) y[2 * ldy] = a2;
        if (TN.N > 3) y[3 * ldy] = a3;
    }
}
