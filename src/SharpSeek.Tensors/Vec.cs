// Small pointer-based vector loops of the training kernels (System.Numerics.Vector, scalar tails).
using System.Numerics;

namespace SharpSeek.Tensors;

/// <summary>Elementwise helpers on raw float pointers.</summary>
internal static unsafe class Vec
{
    /// <summary>dst[i] = a[i] + b[i] (dst may alias a or b).</summary>
    public static void Add(float* a, float* b, float* dst, int n)
    {
        int i = 0, w = Vector<float>.Count;
        for (; i <= n - w; i += w)
            Vector.Store(Vector.Load(a + i) + Vector.Load(b + i), dst + i);
        for (; i < n; i++)
            dst[i] = a[i] + b[i];
    }

    /// <summary>dst[i] = s · a[i].</summary>
    public static void Scale(float* a, float s, float* dst, int n)
    {
        int i = 0, w = Vector<float>.Count;
        var sv = new Vector<float>(s);
        for (; i <= n - w; i += w)
            Vector.Store(Vector.Load(a + i) * sv, dst + i);
        for (; i < n; i++)
            dst[i] = a[i] * s;
    }

    /// <summary>Σ a[i]·b[i] in lanes, then the lanes and the tail.</summary>
    public static float Dot(float* a, float* b, int n)
    {
        int i = 0, w = Vector<float>.Count;
        Vector<float> acc = Vector<float>.Zero;
        for (; i <= n - w; i += w)
            acc += Vector.Load(a + i) * Vector.Load(b + i);
        float s = Vector.Sum(acc);
        for (; i < n; i++)
            s += a[i] * b[i];
        return s;
    }
}

/// <summary>Large elementwise passes split over a backend's workers (fixed chunks of 16K floats).</summary>
internal static unsafe class ParallelOps
{
    private const int Chunk = 1 << 14;

    /// <summary>dst = a + b.</summary>
    public static void Add(ComputeBackend? be, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst)
    {
        int n = dst.Length;
        if (a.Length < n || b.Length < n)
            throw new ArgumentException("Add: operands shorter than the destination");
        fixed (float* pa = a, pb = b, pd = dst)
            Rows.For(be, n, Chunk, new AddJob(pa, pb, pd));
    }

    /// <summary>dst = src.</summary>
    public static void Copy(ComputeBackend? be, ReadOnlySpan<float> src, Span<float> dst)
    {
        int n = dst.Length;
        if (src.Length < n)
            throw new ArgumentException("Copy: source shorter than the destination");
        fixed (float* ps = src, pd = dst)
            Rows.For(be, n, Chunk, new CopyJob(ps, pd));
    }

    /// <summary>dst = 0.</summary>
    public static void Clear(ComputeBackend? be, Span<float> dst)
    {
        fixed (float* pd = dst)
            Rows.For(be, dst.Length, Chunk, new ClearJob(pd));
    }

    private readonly struct AddJob(float* a, float* b, float* d) : IRowJob
    {
        public void Run(int block, int r0, int r1) => Vec.Add(a + r0, b + r0, d + r0, r1 - r0);
    }

    private readonly struct CopyJob(float* s, float* d) : IRowJob
    {
        public void Run(int block, int r0, int r1) => Buffer.MemoryCopy(s + r0, d + r0, (r1 - r0) * 4L, (r1 - r0) * 4L);
    }

    private readonly struct ClearJob(float* d) : IRowJob
    {
        public void Run(int block, int r0, int r1) => new Span<float>(d + r0, r1 - r0).Clear();
    }
}
