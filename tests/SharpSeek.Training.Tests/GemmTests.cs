// The training GEMM kernels against the fp64 scalar reference, for every layout and edge shapes around the
// register tile (6 rows) and panel (16/32 columns) and the reduction chunk (256), serial and threaded; and the
// same bits whatever the thread count.
using SharpSeek.Tensors;

namespace SharpSeek.Training.Tests;

public sealed class GemmTests
{
    [Theory]
    [InlineData(GemmKind.NT)]
    [InlineData(GemmKind.NN)]
    [InlineData(GemmKind.TN)]
    public void MatchesReference(GemmKind kind)
    {
        var rng = new Rng(1);
        int[] sizes = [1, 5, 6, 7, 17, 33, 64];
        foreach (int M in sizes)
        {
            foreach (int N in new[] { 1, 15, 16, 31, 32, 33, 70 })
            {
                foreach (int K in new[] { 0, 1, 3, 255, 257 })
                {
                    float[] a = Rand(rng, M * K), b = Rand(rng, N * K), c0 = Rand(rng, M * N);
                    foreach (bool acc in new[] { false, true })
                    {
                        float[] want = (float[])c0.Clone(), got = (float[])c0.Clone();
                        Gemm.Reference(kind, M, N, K, a, b, want, acc);
                        Gemm.Run(null, kind, M, N, K, a, b, got, acc);
                        for (int i = 0; i < want.Length; i++)
                            Assert.True(Math.Abs(want[i] - got[i]) <= 1e-5 * (1 + Math.Sqrt(K)) * (1 + Math.Abs(want[i])), $"{kind} {M}x{N}x{K} acc={acc} [{i}]: {got[i]} vs {want[i]}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(GemmKind.NT)]
    [InlineData(GemmKind.NN)]
    [InlineData(GemmKind.TN)]
    public void ThreadCountDoesNotChangeTheBits(GemmKind kind)
    {
        var rng = new Rng(2);
        const int M = 301, N = 259, K = 530;
        float[] a = Rand(rng, M * K), b = Rand(rng, N * K);
        float[] serial = new float[M * N], threaded = new float[M * N];
        Gemm.Run(null, kind, M, N, K, a, b, serial, false);
        using var be = new ThreadedBackend(2);
        Gemm.Run(be, kind, M, N, K, a, b, threaded, false);
        Assert.Equal(serial, threaded);
    }

    [Theory]
    [InlineData(GemmKind.NT)]
    [InlineData(GemmKind.NN)]
    [InlineData(GemmKind.TN)]
    public void LargeShapesMatchReference(GemmKind kind)
    {
        // rows across cache blocks (512), a narrow last panel (100 = 3·32 + 4), reduction over three chunks
        var rng = new Rng(3);
        const int M = 1030, N = 100, K = 530;
        float[] a = Rand(rng, M * K), b = Rand(rng, N * K), c0 = Rand(rng, M * N);
        float[] want = (float[])c0.Clone(), serial = (float[])c0.Clone(), threaded = (float[])c0.Clone();
        Gemm.Reference(kind, M, N, K, a, b, want, accumulate: true);
        Gemm.Run(null, kind, M, N, K, a, b, serial, accumulate: true);
        using var be = new ThreadedBackend(3);
        Gemm.Run(be, kind, M, N, K, a, b, threaded, accumulate: true);
        Assert.Equal(serial, threaded);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - serial[i]) <= 1e-5 * (1 + Math.Sqrt(K)) * (1 + Math.Abs(want[i])), $"{kind} [{i}]: {serial[i]} vs {want[i]}");
    }

    [Theory]
    [InlineData(70, 100, 2600)]
    [InlineData(600, 48, 1100)]
    [InlineData(16, 256, 4096)]
    [InlineData(16, 40, 9000)]
    public void LongReductionTNMatchesReference(int M, int N, int K)
    {
        // weight-gradient shape: the reduction splits into groups of chunks whose partial sums are added in order
        var rng = new Rng(4);
        float[] a = Rand(rng, M * K), b = Rand(rng, N * K), c0 = Rand(rng, M * N);
        foreach (bool acc in new[] { false, true })
        {
            float[] want = (float[])c0.Clone(), serial = (float[])c0.Clone(), threaded = (float[])c0.Clone();
            Gemm.Reference(GemmKind.TN, M, N, K, a, b, want, acc);
            Gemm.Run(null, GemmKind.TN, M, N, K, a, b, serial, acc);
            using var be = new ThreadedBackend(3);
            Gemm.Run(be, GemmKind.TN, M, N, K, a, b, threaded, acc);
            Assert.Equal(serial, threaded);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(want[i] - serial[i]) <= 1e-5 * (1 + Math.Sqrt(K)) * (1 + Math.Abs(want[i])), $"[{i}]: {serial[i]} vs {want[i]}");
        }
    }

    private static float[] Rand(Rng rng, int n)
    {
        var x = new float[n];
        rng.FillNormal(x, 1);
        return x;
    }
}
