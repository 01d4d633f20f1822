// Finite-difference checks of the hand-written backward passes.
//
// Model level: for every trainable tensor θ_k, the directional derivative of the total loss (CE + λ·MTP + balance)
// along v = normalize(g_k/|g_k| + r), r a random unit vector, by central differences
// (L(θ + h v) − L(θ − h v)) / 2h, against ⟨g_k, v⟩. Mixing in g_k gives a slope of order |g_k| (a strong signal)
// while r exposes gradient components that are missing or wrong. Tolerance: the forward pass is fp32, so L carries
// rounding noise of ~1e-6 absolute (losses ~5, summed in fp64 over rows); with h ≥ 1e-3 that is ≤ 1e-3 in the slope,
// and the O(h²) truncation error is of the same order; we accept |fd − an| ≤ 2e-3·|an| + 3e-4. Top-k routing is
// piecewise constant: if ±h changes any expert choice of any row, h is halved (down to 1e-3, else the test fails);
// router biases ~N(0, 1) keep the choices away from ties.
//
// Layer level: RMSNorm, RoPE, SwiGLU and cross-entropy against central differences in fp64 math on the same fp32
// kernels with a random upstream gradient r (loss Σ r⊙y).
using SharpSeek.Model;
using SharpSeek.Model.Layers;
using Xunit.Abstractions;

namespace SharpSeek.Training.Tests;

public sealed class GradientCheckTests(ITestOutputHelper output)
{
    // "v3-long": dense V3 layers on one sequence long enough for several attention key blocks (64) and query rows past them
    public static IEnumerable<object[]> Configs() => [["v3"], ["v2"], ["v3-long"]];

    [Theory]
    [MemberData(nameof(Configs))]
    public void EveryTensorMatchesFiniteDifferences(string kind)
    {
        bool isLong = kind.EndsWith("long", StringComparison.Ordinal);
        ModelConfig c = isLong ? TinyModels.V3Dense() : kind == "v3" ? TinyModels.V3() : TinyModels.V2();
        ModelParameters p = ModelParameters.Random(c, seed: 7, std: 0.2);
        TinyModels.Perturb(p, 11);
        int B = isLong ? 1 : 2, T = isLong ? 150 : 9;
        var model = new TrainingModel(p, new TrainingModelOptions
        {
            BatchSize = B, SequenceLength = T, MtpLambda = 0.7f, BalanceAlpha = 0.5f,
        });
        int[] ids = TinyModels.Ids(B * (T + 1), c.VocabSize, 3);
        var inputs = new int[B * T];
        var targets = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t < T; t++)
            {
                inputs[b * T + t] = ids[b * (T + 1) + t];
                targets[b * T + t] = ids[b * (T + 1) + t + 1];
            }
        }
        p.ZeroGrad();
        LossBreakdown base_ = model.ForwardBackward(inputs, targets);
        Assert.True(isLong || base_.Balance > 0);
        Assert.Equal(c.NumNextnPredictLayers > 0, base_.Mtp > 0); // the MTP loss and its module's tensors are checked too

        string routing = Routing(model);
        var grads = p.Trainable.Select(t => t.Grad.ToArray()).ToArray();
        var rng = new Rng(5);
        int checkedCount = 0;
        for (int k = 0; k < p.Trainable.Count; k++)
        {
            Parameter prm = p.Trainable[k];
            float[] g = grads[k];
            double[] v = DirectionalCheck.Direction(g, rng, out double an);
            (double fd, double hUsed) = DirectionalCheck.Central(model, prm, v, inputs, targets, l => l.Total, Routing, routing, 1e-2, 1e-3);
            Assert.False(double.IsNaN(fd), $"{prm.Name}: routing changes for every step size");
            double err = Math.Abs(fd - an);
            output.WriteLine($"{prm.Name,-60} analytic {an,12:G6} fd {fd,12:G6} err {err:G3} h {hUsed:G3}");
            Assert.True(err <= 2e-3 * Math.Abs(an) + 3e-4, $"{prm.Name}: analytic {an:G6} vs finite difference {fd:G6}");
            checkedCount++;
        }
        Assert.Equal(p.Trainable.Count, checkedCount);
    }

    private static string Routing(TrainingModel m) => string.Join(";", m.ExpertChoices.Select(c => string.Join(",", c)));

    [Fact]
    public void RmsNormBackwardMatchesFiniteDifferences()
    {
        const int T = 3, C = 7;
        var rng = new Rng(1);
        float[] x = Rand(rng, T * C), w = Rand(rng, C, 1), r = Rand(rng, T * C);
        var rstd = new float[T];
        var y = new float[T * C];
        double Loss(float[] xx, float[] ww)
        {
            RmsNorm.Forward(xx, ww, 1e-6f, rstd, y, T);
            return Dot(r, y);
        }
        Loss(x, w);
        var dx = new float[T * C];
        var dw = new float[C];
        RmsNorm.Backward(r, x, w, rstd, dx, dw, T);
        CheckAll(x, dx, xx => Loss(xx, w), "RMSNorm dx");
        CheckAll(w, dw, ww => Loss(x, ww), "RMSNorm dweight");
    }

    [Fact]
    public void RopeBackwardIsTheTransposeOfForward()
    {
        var rng = new Rng(2);
        float[] x = Rand(rng, 8), r = Rand(rng, 8), cos = Rand(rng, 4), sin = Rand(rng, 4);
        double Loss(float[] xx)
        {
            float[] y = (float[])xx.Clone();
            Tensors.Ops.RopeInterleaved(y, cos, sin);
            return Dot(r, y);
        }
        float[] g = (float[])r.Clone();
        RotaryEmbedding.Backward(g, cos, sin);
        CheckAll(x, g, Loss, "RoPE");
    }

    [Fact]
    public void SwiGluBackwardMatchesFiniteDifferences()
    {
        var rng = new Rng(3);
        float[] gIn = Rand(rng, 11, scale: 3), u = Rand(rng, 11), r = Rand(rng, 11);
        var h = new float[11];
        double Loss(float[] gg, float[] uu)
        {
            SwiGlu.Forward(gg, uu, h);
            return Dot(r, h);
        }
        var dg = new float[11];
        var du = new float[11];
        SwiGlu.Backward(r, gIn, u, dg, du);
        CheckAll(gIn, dg, gg => Loss(gg, u), "SwiGLU dg");
        CheckAll(u, du, uu => Loss(gIn, uu), "SwiGLU du");
    }

    [Fact]
    public void CrossEntropyGradientMatchesFiniteDifferences()
    {
        var rng = new Rng(4);
        float[] logits = Rand(rng, 13, scale: 2);
        float[] grad = (float[])logits.Clone();
        double loss = CrossEntropy.ForwardBackward(grad, 5, 0.5f);
        Assert.Equal(CrossEntropy.Loss(logits, 5), loss, 5);
        CheckAll(logits, grad, l => 0.5 * CrossEntropy.Loss(l, 5), "cross-entropy");
        float[] ignored = (float[])logits.Clone();
        Assert.Equal(0, CrossEntropy.ForwardBackward(ignored, -1, 1f));
        Assert.All(ignored, v => Assert.Equal(0f, v));
    }

    private static float[] Rand(Rng rng, int n, double mean = 0, double scale = 1)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
            a[i] = (float)(mean + scale * rng.NextNormal());
        return a;
    }

    private static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
            s += (double)a[i] * b[i];
        return s;
    }

    // Per-element central differences, h = 1e-3: fp32 rounding of y (~1e-7 relative) gives ~1e-4 noise in the
    // slope and the truncation error is O(h²); tolerance 2e-3 absolute + 1e-2 relative.
    private static void CheckAll(float[] x, float[] grad, Func<float[], double> loss, string what)
    {
        const double h = 1e-3;
        for (int i = 0; i < x.Length; i++)
        {
            float keep = x[i];
            x[i] = keep + (float)h;
            double lp = loss(x);
            x[i] = keep - (float)h;
            double lm = loss(x);
            x[i] = keep;
            double fd = (lp - lm) / (2 * h);
            Assert.True(Math.Abs(fd - grad[i]) <= 2e-3 + 1e-2 * Math.Abs(fd), $"{what}[{i}]: analytic {grad[i]:G6} vs finite difference {fd:G6}");
        }
    }
}
