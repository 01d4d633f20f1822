// The training MoE selects experts from precomputed affinities; it must choose exactly what the inference Router does.
using SharpSeek.Model;
using SharpSeek.Model.Layers;
using SharpSeek.Training.Layers;

namespace SharpSeek.Training.Tests;

public sealed class RouterTests
{
    [Fact]
    public void SelectMatchesRouterRoute()
    {
        var configs = new[] { TinyModels.V3(), TinyModels.V2(), ModelConfig.Load(Path.Combine(RepoRoot(), "models", "sharpseek-mini", "train", "config.json")) };
        var rng = new Rng(11);
        foreach (ModelConfig c in configs)
        {
            int E = c.NRoutedExperts, K = c.NumExpertsPerTok;
            var logits = new float[E];
            var bias = new float[E];
            var scratch = new float[Router.ScratchSize(c)];
            var mine = new float[E + c.NGroup];
            for (int trial = 0; trial < 2000; trial++)
            {
                rng.FillNormal(logits, 2);
                if (trial % 3 == 0)
                {
                    for (int e = 0; e < E; e++)
                        logits[e] = MathF.Round(logits[e]); // ties
                }
                rng.FillNormal(bias, trial % 2 == 0 ? 0.1f : 0f);
                int[] want = new int[K], got = new int[K];
                float[] wantW = new float[K], gotW = new float[K];
                Router.Route(c, logits, bias, want, wantW, scratch);
                var scores = (float[])logits.Clone();
                if (c.ScoringFunc == ScoringFunc.Sigmoid)
                    System.Numerics.Tensors.TensorPrimitives.Sigmoid(scores, scores);
                else
                    SharpSeek.Tensors.Ops.Softmax(scores);
                MixtureOfExperts.Select(c, scores, bias, got, gotW, mine);
                Assert.Equal(want, got);
                Assert.Equal(wantW, gotW);
            }
        }
    }

    private static string RepoRoot()
    {
        string d = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(d, "SharpSeek.slnx")))
            d = Path.GetDirectoryName(d) ?? throw new DirectoryNotFoundException("repository root");
        return d;
    }
}
