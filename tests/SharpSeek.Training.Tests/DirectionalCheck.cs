// The directional finite-difference check of the whole-model gradient tests (GradientCheckTests, IndexerTrainingTests):
// a direction mostly along the gradient, and the central difference of the loss along it with the largest step whose
// both sides keep the forward's discrete choices (expert routing, the indexer's selection), as the analytic gradient
// assumes them fixed.
namespace SharpSeek.Training.Tests;

internal static class DirectionalCheck
{
    /// <summary>A unit direction v = g/|g| plus Gaussian noise of norm ~1, normalized; <paramref name="analytic"/> = g·v
    /// (a zero gradient gives the noise alone).</summary>
    public static double[] Direction(float[] g, Rng rng, out double analytic)
    {
        double gn = Math.Sqrt(g.Sum(x => (double)x * x));
        var v = new double[g.Length];
        double vn = 0;
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = (gn > 0 ? g[i] / gn : 0) + rng.NextNormal() / Math.Sqrt(v.Length);
            vn += v[i] * v[i];
        }
        vn = Math.Sqrt(vn);
        analytic = 0;
        for (int i = 0; i < v.Length; i++)
        {
            v[i] /= vn;
            analytic += g[i] * v[i];
        }
        return v;
    }

    /// <summary>
    /// (loss(+h) − loss(−h)) / 2h along <paramref name="v"/> for h = hMax, hMax/2, ... down to hMin, the first h at which
    /// both sides' <paramref name="state"/> equals <paramref name="state0"/>; (NaN, 0) when none does. The parameter's
    /// values are restored.
    /// </summary>
    public static (double Fd, double H) Central(TrainingModel model, Parameter prm, double[] v, int[] inputs, int[] targets,
                                                Func<LossBreakdown, double> loss, Func<TrainingModel, string> state, string state0,
                                                double hMax, double hMin)
    {
        float[] orig = prm.Values.ToArray();
        double At(double h, out string s)
        {
            Span<float> w = prm.Values;
            for (int i = 0; i < w.Length; i++)
                w[i] = (float)(orig[i] + h * v[i]);
            model.Parameters.ZeroGrad();
            double l = loss(model.ForwardBackward(inputs, targets));
            s = state(model);
            return l;
        }
        try
        {
            for (double h = hMax; h >= hMin; h /= 2)
            {
                double lp = At(h, out string sp), lm = At(-h, out string sm);
                if (sp == state0 && sm == state0)
                    return ((lp - lm) / (2 * h), h);
            }
            return (double.NaN, 0);
        }
        finally
        {
            orig.CopyTo(prm.Values);
        }
    }
}
