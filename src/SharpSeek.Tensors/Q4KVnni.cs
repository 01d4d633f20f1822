// Q4_K products with AVX-VNNI (the VEX, 256-bit vpdpbusd / vpdpwssd that .NET exposes as AvxVnni), or the same integer
// sums from AVX2 on CPUs without AVX-512 (Int8Dot).
//
// Per super-block (256 values, 8 sub-blocks of 32) and token:
//   dp_s  = vpdpbusd(nibbles of sub-block s as u8, activations as s8)  8 int32 lanes, each |.| ≤ 4·15·128 (fits int16)
//   pair  = vpackssdw(dp_2c, dp_2c+1)                                   int16 lanes [dp_2c 0-3, dp_2c+1 0-3 | 4-7, 4-7]
//   isum += vpdpwssd(pair, scales [sc_2c ×4, sc_2c+1 ×4 | same])        Σ_s sc_s·dp_s as 8 int32 lanes
// so 32 multiply-adds cost 1.5 uops on two ports instead of the 2 (maddubs + maddwd) that 512-bit AVX-512BW issues on
// one port here, and no 512-bit instruction runs (port 1 stays open to vector work). The mins term Σ_s m_s·sum_s(x)
// is one vpmaddwd of the 8 mins against the int16 sub-block sums. The 6-bit scales and mins are unpacked in a vector
// register; d and dmin come from the fp16 table (Half16.ToFloat) as broadcast loads.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>AVX-VNNI kernels for <see cref="Q4KMatrix"/> (used when <see cref="Int8Dot.KernelsSupported"/>).</summary>
internal static unsafe class Q4KVnni
{
    private const int BlockBytes = Q4KMatrix.BlockBytes, PrefetchDistance = 4096;

    public static bool IsSupported => Int8Dot.KernelsSupported;

    /// <summary>From the unpacked scale bytes [sc0..sc7, m0..m7], per 128-bit lane: int16 lanes 0-3 take sub-block
    /// 2c's scale, lanes 4-7 sub-block 2c+1's (high bytes zeroed by the 0x80 index).</summary>
    private static readonly Vector256<byte> s_pair0 = PairMask(0), s_pair1 = PairMask(1), s_pair2 = PairMask(2), s_pair3 = PairMask(3);

    private static Vector256<byte> PairMask(int c)
    {
        var m = new byte[32];
        for (int lane = 0; lane < 2; lane++)
        {
            for (int i = 0; i < 4; i++)
            {
                m[lane * 16 + 2 * i] = (byte)(2 * c);
                m[lane * 16 + 2 * i + 1] = 0x80;
                m[lane * 16 + 8 + 2 * i] = (byte)(2 * c + 1);
                m[lane * 16 + 8 + 2 * i + 1] = 0x80;
            }
        }
        return Vector256.Create(m);
    }

    // the 12 packed bytes q[0..11] of scales and mins (llama.cpp get_scale_min_k4):
    //   sc_j = q[j] & 63,                          m_j = q[j+4] & 63                          (j < 4)
    //   sc_j = (q[j+4] & 15) | ((q[j-4] >> 6) << 4), m_j = (q[j+4] >> 4) | ((q[j] >> 6) << 4)   (j ≥ 4)
    private static readonly Vector128<byte> s_low = Vector128.Create((byte)0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11);
    private static readonly Vector128<byte> s_top = Vector128.Create((byte)0x80, 0x80, 0x80, 0x80, 0, 1, 2, 3, 0x80, 0x80, 0x80, 0x80, 4, 5, 6, 7);
    private static readonly Vector128<byte> s_lowMask = Vector128.Create((byte)63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
    private static readonly Vector128<byte> s_highNibble = Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15);
    private static readonly Vector128<byte> s_mins = Vector128.Create((byte)8, 0x80, 9, 0x80, 10, 0x80, 11, 0x80, 12, 0x80, 13, 0x80, 14, 0x80, 15, 0x80);

    /// <summary>The 8 scales and 8 mins of a block as bytes [sc0..sc7, m0..m7], unpacked in a vector register (two
    /// shuffles, masks and shifts instead of the scalar bit twiddling and two GPR-to-vector moves).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<byte> ScaleBytes(byte* blk)
    {
        Vector128<byte> q = Vector128.Load(blk + 4); // bytes 12-15 (the first nibbles) are not used
        Vector128<byte> low = Ssse3.Shuffle(q, s_low), top = Ssse3.Shuffle(q, s_top);
        return (low & s_lowMask)
             | (Vector128.ShiftRightLogical(low.AsUInt16(), 4).AsByte() & s_highNibble)
             | (Vector128.ShiftRightLogical(top.AsUInt16(), 2).AsByte() & Vector128.Create((byte)0x30));
    }

    /// <summary>Σ_s sc_s·Σ q·x over one super-block for one token (activations x in the Q8K permuted order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> Block(Vector256<byte> lo0, Vector256<byte> hi0, Vector256<byte> lo1, Vector256<byte> hi1,
                                        Vector256<byte> lo2, Vector256<byte> hi2, Vector256<byte> lo3, Vector256<byte> hi3,
                                        Vector256<short> s0, Vector256<short> s1, Vector256<short> s2, Vector256<short> s3, sbyte* x)
    {
        // natural sub-block s sits at activation slot [0, 2, 1, 3, 4, 6, 5, 7][s]
        // two accumulation chains: the four dependent vpdpwssd of one chain (latency 5 each) held too many blocks in flight
        Vector256<int> a = Int8Dot.Words(Avx2.PackSignedSaturate(
            Int8Dot.Bytes(lo0, Vector256.Load(x)), Int8Dot.Bytes(hi0, Vector256.Load(x + 64))), s0);
        Vector256<int> b = Int8Dot.Words(Avx2.PackSignedSaturate(
            Int8Dot.Bytes(lo1, Vector256.Load(x + 32)), Int8Dot.Bytes(hi1, Vector256.Load(x + 96))), s1);
        a = Int8Dot.Words(a, Avx2.PackSignedSaturate(
            Int8Dot.Bytes(lo2, Vector256.Load(x + 128)), Int8Dot.Bytes(hi2, Vector256.Load(x + 192))), s2);
        b = Int8Dot.Words(b, Avx2.PackSignedSaturate(
            Int8Dot.Bytes(lo3, Vector256.Load(x + 160)), Int8Dot.Bytes(hi3, Vector256.Load(x + 224))), s3);
        return a + b;
    }

    /// <summary>The 4 pair-scale vectors and the 8 mins (int16) of a block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Scales(byte* blk, out Vector256<short> s0, out Vector256<short> s1, out Vector256<short> s2, out Vector256<short> s3, out Vector128<short> mins)
    {
        Vector128<byte> r = ScaleBytes(blk);
        Vector256<byte> both = Vector256.Create(r, r);
        s0 = Avx2.Shuffle(both, s_pair0).AsInt16();
        s1 = Avx2.Shuffle(both, s_pair1).AsInt16();
        s2 = Avx2.Shuffle(both, s_pair2).AsInt16();
        s3 = Avx2.Shuffle(both, s_pair3).AsInt16();
        mins = Ssse3.Shuffle(r, s_mins).AsInt16();
    }

    /// <summary>A block format with Q4_K's scales, mins and d / dmin (Q4_K, Q5_K): its byte size and its integer sum
    /// Σ_s sc_s·Σ q·x over one block (codes ≤ 31, through <see cref="Block"/>).</summary>
    internal interface IBlockCodes
    {
        static abstract int BlockBytes { get; }

        /// <summary>The codes of sub-blocks 0-7 (c0 = sub-block 0, c1 = 1, ...).</summary>
        static abstract void Codes(byte* blk, out Vector256<byte> c0, out Vector256<byte> c1, out Vector256<byte> c2, out Vector256<byte> c3,
                                   out Vector256<byte> c4, out Vector256<byte> c5, out Vector256<byte> c6, out Vector256<byte> c7);
    }

    /// <summary>Σ_s sc_s·Σ q·x over one block of <typeparamref name="TCodes"/> for one token.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sum<TCodes>(byte* blk, Vector256<short> s0, Vector256<short> s1, Vector256<short> s2, Vector256<short> s3, sbyte* x)
        where TCodes : IBlockCodes
    {
        TCodes.Codes(blk, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7);
        return Block(c0, c1, c2, c3, c4, c5, c6, c7, s0, s1, s2, s3, x);
    }

    /// <summary>Q4_K's codes: the nibbles of its four 32-byte chunks.</summary>
    internal readonly struct Nibbles : IBlockCodes
    {
        public static int BlockBytes => Q4KMatrix.BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Codes(byte* blk, out Vector256<byte> c0, out Vector256<byte> c1, out Vector256<byte> c2, out Vector256<byte> c3,
                                 out Vector256<byte> c4, out Vector256<byte> c5, out Vector256<byte> c6, out Vector256<byte> c7)
        {
            Vector256<byte> mask = Vector256.Create((byte)0xF);
            Vector256<byte> q0 = Vector256.Load(blk + 16), q1 = Vector256.Load(blk + 48), q2 = Vector256.Load(blk + 80), q3 = Vector256.Load(blk + 112);
            c0 = q0 & mask;
            c1 = Vector256.ShiftRightLogical(q0.AsUInt16(), 4).AsByte() & mask;
            c2 = q1 & mask;
            c3 = Vector256.ShiftRightLogical(q1.AsUInt16(), 4).AsByte() & mask;
            c4 = q2 & mask;
            c5 = Vector256.ShiftRightLogical(q2.AsUInt16(), 4).AsByte() & mask;
            c6 = q3 & mask;
            c7 = Vector256.ShiftRightLogical(q3.AsUInt16(), 4).AsByte() & mask;
        }
    }

    /// <summary>Σ over super-blocks of d_x·(d·Σ_s sc_s·Σ q·x − dmin·Σ_s m_s·sum_s(x)) for one row and one token.</summary>
    public static float Dot(byte* w, sbyte* xq, float* xd, short* xsum, int blocks) => Dot<Nibbles>(w, xq, xd, xsum, blocks);

    /// <summary><see cref="Dot(byte*, sbyte*, float*, short*, int)"/> for any format with Q4_K's scales (<typeparamref name="TCodes"/>).</summary>
    internal static float Dot<TCodes>(byte* w, sbyte* xq, float* xd, short* xsum, int blocks) where TCodes : IBlockCodes
    {
        Vector256<float> acc = Vector256<float>.Zero;
        Vector128<float> macc = Vector128<float>.Zero;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * TCodes.BlockBytes;
            // decode streams the weights once: keep DRAM requests in flight ahead of the arithmetic
            Sse.Prefetch0(blk + PrefetchDistance);
            Sse.Prefetch0(blk + PrefetchDistance + 64);
            Sse.Prefetch0(blk + PrefetchDistance + 128);
            Scales(blk, out var s0, out var s1, out var s2, out var s3, out var mins);
            Vector256<int> isum = Sum<TCodes>(blk, s0, s1, s2, s3, xq + (long)b * 256);
            // d and dmin by table lookup, broadcast straight from memory; x's scale in a second multiply
            Vector256<float> dx = Vector256.Create(xd[b]);
            acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(isum) * Vector256.Create(Half16.ToFloat(*(ushort*)blk)), dx, acc);
            Vector128<int> m = Sse2.MultiplyAddAdjacent(mins, Vector128.Load(xsum + (long)b * 8));
            macc = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(m) * Vector128.Create(Half16.ToFloat(*(ushort*)(blk + 2))), dx.GetLower(), macc);
        }
        return Vector256.Sum(acc) - Vector128.Sum(macc);
    }

    /// <summary>Q4_K-scaled rows (<typeparamref name="TCodes"/>) against a tile of tokens: <see cref="DotTokens{TN, TCodes}"/>,
    /// a single token through <see cref="Dot{TCodes}"/>.</summary>
    internal readonly struct Tile<TCodes> : IQ8KTileKernel where TCodes : IBlockCodes
    {
        public static int SumsPerBlock => 8;

        public static void Run<TN>(byte* w, sbyte* xq, int cols, float* xd, short* sums, int blocks, float* y, int ldy) where TN : struct, ITokenCount
        {
            if (TN.N == 1)
                *y = Dot<TCodes>(w, xq, xd, sums, blocks);
            else
                DotTokens<TN, TCodes>(w, xq, cols, xd, sums, blocks, y, ldy);
        }
    }

    /// <summary>One row against N ≤ 4 tokens (activation stride xStride values, blocks scales/sums per token after each
    /// other); y[u·ldy] for token u: codes and scales unpacked once per super-block for all of them, each token's sum
    /// formed as <see cref="Dot{TCodes}"/> forms it (so a batch gives each token's one-token result, bit for bit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void DotTokens<TN, TCodes>(byte* w, sbyte* xq, int xStride, float* xd, short* xsum, int blocks, float* y, int ldy)
        where TN : struct, ITokenCount where TCodes : IBlockCodes
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector128<float> m0 = default, m1 = default, m2 = default, m3 = default;
        int sumStride = blocks * 8;
        for (int b = 0; b < blocks; b++)
        {
            byte* blk = w + (long)b * TCodes.BlockBytes;
            Scales(blk, out var s0, out var s1, out var s2, out var s3, out var mins);
            TCodes.Codes(blk, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7);
            Vector256<float> d = Vector256.Create(Half16.ToFloat(*(ushort*)blk));
            Vector128<float> dmin = Vector128.Create(Half16.ToFloat(*(ushort*)(blk + 2)));
            sbyte* x = xq + (long)b * 256;
            short* xs = xsum + (long)b * 8;
            Step(ref a0, ref m0, Block(c0, c1, c2, c3, c4, c5, c6, c7, s0, s1, s2, s3, x), mins, xs, d, dmin, xd[b]);
            if (TN.N > 1)
                Step(ref a1, ref m1, Block(c0, c1, c2, c3, c4, c5, c6, c7, s0, s1, s2, s3, x + xStride), mins, xs + sumStride, d, dmin, xd[blocks + b]);
            if (TN.N > 2)
                Step(ref a2, ref m2, Block(c0, c1, c2, c3, c4, c5, c6, c7, s0, s1, s2, s3, x + 2L * xStride), mins, xs + 2 * sumStride, d, dmin, xd[2 * blocks + b]);
            if (TN.N > 3)
                Step(ref a3, ref m3, Block(c0, c1, c2, c3, c4, c5, c6, c7, s0, s1, s2, s3, x + 3L * xStride), mins, xs + 3 * sumStride, d, dmin, xd[3 * blocks + b]);
        }
        y[0] = Vector256.Sum(a0) - Vector128.Sum(m0);
        if (TN.N > 1) y[ldy] = Vector256.Sum(a1) - Vector128.Sum(m1);
        if (TN.N > 2) y[2 * ldy] = Vector256.Sum(a2) - Vector128.Sum(m2);
        if (TN.N > 3) y[3 * ldy] = Vector256.Sum(a3) - Vector128.Sum(m3);
    }

    /// <summary>One block of one token, the float steps of <see cref="Dot{TCodes}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(ref Vector256<float> acc, ref Vector128<float> macc, Vector256<int> isum, Vector128<short> mins, short* xs,
                             Vector256<float> d, Vector128<float> dmin, float xd)
    {
        Vector256<float> dx = Vector256.Create(xd);
        acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(isum) * d, dx, acc);
        macc = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(Sse2.MultiplyAddAdjacent(mins, Vector128.Load(xs))) * dmin, dx.GetLower(), macc);
    }
}
