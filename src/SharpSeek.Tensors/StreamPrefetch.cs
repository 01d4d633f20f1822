// The first bytes of a weight stream, requested before a decode kernel starts on it. The kernels prefetch a fixed
// distance ahead of the block they are on, so the first distance's worth of a stream (of each chunk a product is split
// into) would otherwise arrive one miss at a time before the hardware prefetchers catch on: ~0.5-1 us per stream,
// measured as the cost of each extra chunk of a 512 x 1024 product.
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Prefetches the start of a stream that a kernel is about to read.</summary>
internal static unsafe class StreamPrefetch
{
    /// <summary>The distance the decode kernels prefetch ahead.</summary>
    public const int Distance = 4096;

    /// <summary>Requests the first min(<paramref name="bytes"/>, <see cref="Distance"/>) bytes at <paramref name="p"/>.</summary>
    public static void Start(byte* p, long bytes)
    {
        if (!Sse.IsSupported)
            return;
        long n = Math.Min(bytes, Distance);
        for (long i = 0; i < n; i += 64)
            Sse.Prefetch0(p + i);
    }
}
