// Machine limits measured in the same run as a benchmark: DRAM read bandwidth (threads summing a buffer far
// larger than the caches), fp32 FMA throughput and the int8 maddubs throughput (register-only loops).
using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Measures the hardware ceilings a kernel is compared against.</summary>
public static unsafe class Roofline
{
    /// <summary>Bytes per second read by <paramref name="threads"/> threads streaming a buffer of <paramref name="bytes"/> (best of several passes).</summary>
    public static double ReadBandwidth(int threads, long bytes = 1L << 30, int passes = 5)
    {
        using NativeBuffer buf = BandwidthBuffer(bytes);
        return ReadBandwidth(threads, buf, passes);
    }

    /// <summary>A buffer for <see cref="ReadBandwidth(int, NativeBuffer, int)"/>, every page touched (so that no pass
    /// times page faults), for repeated measurements without a new allocation each.</summary>
    public static NativeBuffer BandwidthBuffer(long bytes)
    {
        var buf = new NativeBuffer(bytes);
        float* p = (float*)buf.Pointer;
        for (long i = 0; i < bytes / 4; i += 1024)
            p[i] = 1f;
        return buf;
    }

    /// <summary>Bytes per second read by <paramref name="threads"/> threads streaming <paramref name="buf"/> (from
    /// <see cref="BandwidthBuffer"/>; best of several passes).</summary>
    public static double ReadBandwidth(int threads, NativeBuffer buf, int passes)
    {
        float* p = (float*)buf.Pointer;
        long bytes = buf.Length, n = bytes / 4;
        var sums = new double[threads];
        double best = FastestPass(threads, passes, t =>
        {
            long start = n / threads * t, end = t == threads - 1 ? n : n / threads * (t + 1);
            sums[t] = Sum(p + start, end - start);
        });
        GC.KeepAlive(sums);
        return bytes / best;
    }

    /// <summary>Seconds of the fastest of <paramref name="passes"/> runs of body(t) on threads t = 0 .. threads-1 at once.</summary>
    private static double FastestPass(int threads, int passes, Action<int> body)
    {
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        double best = double.MaxValue;
        for (int pass = 0; pass < passes; pass++)
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, threads, options, body);
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    private static double Sum(float* p, long n)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        long i = 0;
        for (; i + 64 <= n; i += 64)
        {
            a0 += Vector512.Load(p + i);
            a1 += Vector512.Load(p + i + 16);
            a2 += Vector512.Load(p + i + 32);
            a3 += Vector512.Load(p + i + 48);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3);
    }

    /// <summary>fp32 FLOP/s of <paramref name="threads"/> threads running independent FMA chains.</summary>
    public static double FmaPeak(int threads, int passes = Passes)
    {
        long iterations = 10_000_000;
        FastestPass(threads, 1, _ => FmaLoop(iterations / 10)); // warm-up
        double best = FastestPass(threads, passes, _ => FmaLoop(iterations));
        int width = Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 1;
        return threads * (double)iterations * 8 * width * 2 / best;
    }

    /// <summary>
    /// Timed passes of each arithmetic peak, the fastest kept: on a shared host one pass can land on a slow moment,
    /// and a peak measured low would overstate every fraction computed against it.
    /// </summary>
    public const int Passes = 5;

    private static float FmaLoop(long iterations)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> m = Vector512.Create(0.999999f), c = Vector512.Create(1e-7f);
            Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            for (long i = 0; i < iterations; i++)
            {
                a0 = Vector512.FusedMultiplyAdd(a0, m, c); a1 = Vector512.FusedMultiplyAdd(a1, m, c);
                a2 = Vector512.FusedMultiplyAdd(a2, m, c); a3 = Vector512.FusedMultiplyAdd(a3, m, c);
                a4 = Vector512.FusedMultiplyAdd(a4, m, c); a5 = Vector512.FusedMultiplyAdd(a5, m, c);
                a6 = Vector512.FusedMultiplyAdd(a6, m, c); a7 = Vector512.FusedMultiplyAdd(a7, m, c);
            }
            return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);
        }
        Vector256<float> n = Vector256.Create(0.999999f), d = Vector256.Create(1e-7f);
        Vector256<float> b0 = Vector256.Create(1f), b1 = b0, b2 = b0, b3 = b0, b4 = b0, b5 = b0, b6 = b0, b7 = b0;
        for (long i = 0; i < iterations; i++)
        {
            b0 = Vector256.FusedMultiplyAdd(b0, n, d); b1 = Vector256.FusedMultiplyAdd(b1, n, d);
            b2 = Vector256.FusedMultiplyAdd(b2, n, d); b3 = Vector256.FusedMultiplyAdd(b3, n, d);
            b4 = Vector256.FusedMultiplyAdd(b4, n, d); b5 = Vector256.FusedMultiplyAdd(b5, n, d);
            b6 = Vector256.FusedMultiplyAdd(b6, n, d); b7 = Vector256.FusedMultiplyAdd(b7, n, d);
        }
        return Vector256.Sum(b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7);
    }

    /// <summary>int8 OP/s (2 per multiply-add) of the maddubs + maddwd + add sequence, the int8 product .NET can issue here.</summary>
    public static double Int8Peak(int threads, int passes = Passes)
    {
        if (!Avx512BW.IsSupported && !Avx2.IsSupported)
            return 0;
        long iterations = 5_000_000;
        FastestPass(threads, 1, _ => Int8Loop(iterations / 10)); // warm-up
        double best = FastestPass(threads, passes, _ => Int8Loop(iterations));
        int bytes = Avx512BW.IsSupported ? 64 : 32;
        return threads * (double)iterations * 8 * bytes * 2 / best;
    }

    private static int Int8Loop(long iterations)
    {
        // each chain feeds its accumulator back as the unsigned operand: the products depend on the previous
        // iteration, so the JIT cannot hoist them out of the loop (an earlier version measured vpaddd instead).
        // 8 chains x 2 multiplies per iteration exceed the chain latency (maddubs + maddwd + add), so this is throughput.
        if (Avx512BW.IsSupported)
        {
            Vector512<sbyte> s = Vector512.Create((sbyte)3);
            Vector512<short> ones = Vector512.Create((short)1);
            Vector512<int> a0 = Vector512.Create(1), a1 = Vector512.Create(2), a2 = Vector512.Create(3), a3 = Vector512.Create(4);
            Vector512<int> a4 = Vector512.Create(5), a5 = Vector512.Create(6), a6 = Vector512.Create(7), a7 = Vector512.Create(8);
            for (long i = 0; i < iterations; i++)
            {
                a0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a0.AsByte(), s), ones);
                a1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a1.AsByte(), s), ones);
                a2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a2.AsByte(), s), ones);
                a3 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a3.AsByte(), s), ones);
                a4 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a4.AsByte(), s), ones);
                a5 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a5.AsByte(), s), ones);
                a6 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a6.AsByte(), s), ones);
                a7 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a7.AsByte(), s), ones);
            }
            return Vector512.Sum(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)));
        }
        Vector256<sbyte> t = Vector256.Create((sbyte)3);
        Vector256<short> one = Vector256.Create((short)1);
        Vector256<int> b0 = Vector256.Create(1), b1 = Vector256.Create(2), b2 = Vector256.Create(3), b3 = Vector256.Create(4);
        Vector256<int> b4 = Vector256.Create(5), b5 = Vector256.Create(6), b6 = Vector256.Create(7), b7 = Vector256.Create(8);
        for (long i = 0; i < iterations; i++)
        {
            b0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b0.AsByte(), t), one);
            b1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b1.AsByte(), t), one);
            b2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b2.AsByte(), t), one);
            b3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b3.AsByte(), t), one);
            b4 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b4.AsByte(), t), one);
            b5 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b5.AsByte(), t), one);
            b6 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b6.AsByte(), t), one);
            b7 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(b7.AsByte(), t), one);
        }
        return Vector256.Sum(((b0 + b1) + (b2 + b3)) + ((b4 + b5) + (b6 + b7)));
    }
}
