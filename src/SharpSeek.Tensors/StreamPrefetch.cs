// The first bytes of a weight stream, requested before a decode kernel starts on it. The kernels prefetch a fixed
// distance ahead of the block they are on, so the first distance's worth of a stream (of each chunk a product is split
// into) would otherwise arrive one miss at a time before the hardware prefetchers catch on: ~0.5-1 us per stream,
// measured as the cost of each extra chunk of a 512 x 1024 product.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Prefetches the start of a stream that a kernel is about to read.</summary>
internal static unsafe class StreamPrefetch
{
    /// <summary>The distance the decode kernels prefetch ahead.</summary>
    public const int Distance = 4096;

    /// <summary>Requests the first min(<paramref name="bytes"/>, <see cref="Distance"/>) bytes at <paramref name="p"/>.</summary>
    public static void Start(byte* p, long bytes) => Lines(p, (int)Math.Min(bytes, Distance));

    /// <summary>Requests the cache lines of [<paramref name="p"/>, <paramref name="p"/> + <paramref name="bytes"/>) (a
    /// kernel's block, <see cref="Distance"/> ahead of the one it is on).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Lines(byte* p, int bytes)
    {
        if (!Sse.IsSupported)
            return;
        for (int i = 0; i < bytes; i += 64)
            Sse.Prefetch0(p + i);
    }
}
