// The two integer dot-product steps of the Q4_K / Q6_K kernels: AVX-VNNI's vpdpbusd / vpdpwssd where the CPU has them,
// else the same integer sums from AVX2 (vpmaddubsw + vpmaddwd against ones, as llama.cpp does on AVX2). The results are
// equal, not close: the kernels' unsigned operands are codes ≤ 63 and the signed ones int8, so vpmaddubsw's int16 pair
// sums (|.| ≤ 2·63·128 = 16128) never saturate, and vpmaddwd sums int16 products exactly as vpdpwssd does.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Integer dot-product steps, AVX-VNNI or AVX2.</summary>
internal static class Int8Dot
{
    /// <summary>Whether the kernels built on these steps run: AVX-VNNI, or AVX2 on a CPU without AVX-512 (where there is
    /// AVX-512BW without AVX-VNNI, its own 512-bit kernels were measured and stay).</summary>
    public static bool KernelsSupported => AvxVnni.IsSupported || (Avx2.IsSupported && !Avx512BW.IsSupported);

    /// <summary>Σ of each 4 adjacent u·s products per int32 lane (u ≤ 63).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Bytes(Vector256<byte> u, Vector256<sbyte> s) =>
        AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s) : BytesAvx2(u, s);

    /// <summary>Σ of each 4 adjacent u·s products per int32 lane, from AVX2 alone (u ≤ 63).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> BytesAvx2(Vector256<byte> u, Vector256<sbyte> s) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1));

    /// <summary>Σ of each 2 adjacent a·b int16 products per int32 lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Words(Vector256<short> a, Vector256<short> b) =>
        AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, a, b) : Avx2.MultiplyAddAdjacent(a, b);

    /// <summary>acc + Σ of each 2 adjacent a·b int16 products per int32 lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Words(Vector256<int> acc, Vector256<short> a, Vector256<short> b) =>
        AvxVnni.IsSupported ? AvxVnni.MultiplyWideningAndAdd(acc, a, b) : acc + Avx2.MultiplyAddAdjacent(a, b);
}

/// <summary>
/// A running sum of u·s byte dot products (4 adjacent products per int32 lane) over at most 8 <see cref="Add"/> calls
/// with 4-bit codes u ≤ 15 and int8 s: vpdpbusd into int32 lanes with AVX-VNNI; without it vpmaddubsw's int16 pair sums
/// added in int16 (|lane| ≤ 8·2·15·128 = 30720, no wrap) and widened once by vpmaddwd in <see cref="Sum"/>, one
/// instruction per step instead of the three of <see cref="Int8Dot.BytesAvx2"/> plus an add.
/// Either way the same int32 sums.
/// </summary>
internal struct NibbleDots
{
    private Vector256<int> _lanes;
    private Vector256<short> _pairs;

    /// <summary>Adds Σ of each 4 adjacent u·s products (u ≤ 15).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(Vector256<byte> u, Vector256<sbyte> s)
    {
        if (AvxVnni.IsSupported)
            _lanes = AvxVnni.MultiplyWideningAndAdd(_lanes, u, s);
        else
            _pairs += Avx2.MultiplyAddAdjacent(u, s);
    }

    /// <summary>The sums as 8 int32 lanes.</summary>
    public readonly Vector256<int> Sum
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => AvxVnni.IsSupported ? _lanes : Avx2.MultiplyAddAdjacent(_pairs, Vector256.Create((short)1));
    }
}
