// The fused row kernels: FastExp accuracy, softmax recomputed bit for bit, cross-entropy and SwiGLU against fp64.
using SharpSeek.Tensors;

namespace SharpSeek.Training.Tests;

public sealed unsafe class RowOpsTests
{
    [Fact]
    public void FastExpIsWithinTwoUlp()
    {
        var x = new float[64];
        double worst = 0;
        for (double v0 = -87; v0 < 88; v0 += 0.37)
        {
            for (int i = 0; i < x.Length; i++)
                x[i] = (float)(v0 + i * 0.0057);
            var y = new float[x.Length];
            fixed (float* px = x, py = y)
            {
                for (int i = 0; i < x.Length; i += System.Numerics.Vector<float>.Count)
                    System.Numerics.Vector.Store(FastExp.Exp(System.Numerics.Vector.Load(px + i)), py + i);
            }
            for (int i = 0; i < x.Length; i++)
            {
                double want = Math.Exp(x[i]);
                if (want < 1.2e-38 || want > 3e38)
                    continue;
                worst = Math.Max(worst, Math.Abs(y[i] - want) / want);
            }
        }
        Assert.True(worst < 2.5e-7, $"worst relative error {worst:G3}");
    }

    [Fact]
    public void SoftmaxIsRecomputedBitForBit()
    {
        var rng = new Rng(5);
        foreach (int n in new[] { 1, 3, 7, 8, 9, 16, 17, 31, 64, 65, 200 })
        {
            var x = new float[n];
            rng.FillNormal(x, 3);
            float[] p = (float[])x.Clone(), again = (float[])x.Clone();
            fixed (float* pp = p, pa = again)
            {
                RowOps.Softmax(pp, n, 0.7f, out float max, out float sum);
                RowOps.SoftmaxAgain(pa, n, 0.7f, max, sum);
            }
            Assert.Equal(p, again);
            double z = x.Sum(v => Math.Exp(0.7 * v - 0.7 * x.Max()));
            for (int i = 0; i < n; i++)
                Assert.True(Math.Abs(p[i] - Math.Exp(0.7 * x[i] - 0.7 * x.Max()) / z) < 1e-6, $"n={n} [{i}]");
        }
    }

    [Fact]
    public void SoftmaxGradBlockEqualsRowByRow()
    {
        var rng = new Rng(8);
        const int R = 100, n = 64, ld = 64;
        var scores = new float[R * ld];
        var dp = new float[R * ld];
        var stats = new float[2 * R];
        var d = new float[R];
        rng.FillNormal(scores, 2);
        rng.FillNormal(dp, 1);
        rng.FillNormal(d, 1);
        for (int i = 0; i < R; i++)
        {
            stats[2 * i] = 1.5f + 0.01f * i;
            stats[2 * i + 1] = 3f + 0.1f * i;
        }
        float[] p1 = (float[])scores.Clone(), g1 = (float[])dp.Clone(), p2 = (float[])scores.Clone(), g2 = (float[])dp.Clone();
        fixed (float* a = p1, b = g1, pa = p2, pb = g2, ps = stats, pd = d)
        {
            RowOps.SoftmaxGradBlock(a, b, ld, R, n, 0, 0.3f, ps, pd);
            for (int i = 0; i < R; i++)
                RowOps.SoftmaxGrad(pa + i * ld, pb + i * ld, n, Math.Min(n, i + 1), 0.3f, stats[2 * i], stats[2 * i + 1], d[i]);
        }
        Assert.Equal(p2, p1);
        Assert.Equal(g2, g1);
    }

    [Fact]
    public void CrossEntropyAndSwiGluMatchFp64()
    {
        var rng = new Rng(6);
        foreach (int n in new[] { 5, 16, 37, 4096 })
        {
            var l = new float[n];
            rng.FillNormal(l, 4);
            float[] g = (float[])l.Clone();
            double loss;
            fixed (float* pg = g)
                loss = RowOps.CrossEntropy(pg, n, n / 2, 0.5f);
            double max = l.Max(), z = l.Sum(v => Math.Exp(v - max));
            Assert.True(Math.Abs(loss - (max + Math.Log(z) - l[n / 2])) < 1e-5, $"n={n}: loss {loss}");
            for (int i = 0; i < n; i++)
            {
                double want = 0.5 * (Math.Exp(l[i] - max) / z - (i == n / 2 ? 1 : 0));
                Assert.True(Math.Abs(g[i] - want) <= 2e-6 * Math.Abs(want) + 1e-9, $"n={n} [{i}]: {g[i]} vs {want}");
            }

            var u = new float[n];
            rng.FillNormal(u, 1);
            var h = new float[n];
            fixed (float* pl = l, pu = u, ph = h)
                RowOps.SiluMul(pl, pu, ph, n);
            for (int i = 0; i < n; i++)
            {
                double want = l[i] / (1 + Math.Exp(-l[i])) * u[i];
                Assert.True(Math.Abs(h[i] - want) <= 1e-6 * (1 + Math.Abs(want)), $"silu n={n} [{i}]: {h[i]} vs {want}");
            }
        }
    }
}
