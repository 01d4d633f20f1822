// Seam 5 (docs/design.md): the training forward computes the same logits as the inference Transformer on the
// same fp32 master weights, for every fixture model and for tiny random configs.
using SharpSeek.Model;
using SharpSeek.Tests;

namespace SharpSeek.Training.Tests;

public sealed class ForwardEquivalenceTests
{
    public static IEnumerable<object[]> Folders() => Fixtures.HfFolders();

    [Theory]
    [MemberData(nameof(Folders))]
    public void TrainingLogitsEqualTransformerLogits(string fixture)
    {
        ModelParameters p = ModelParameters.Load(Fixtures.Hf(fixture));
        Compare(p, TinyModels.Ids(24, p.Config.VocabSize, 9));
    }

    [Fact]
    public void TinyConfigsAgreeWithTransformer()
    {
        foreach (ModelConfig c in new[] { TinyModels.V3(), TinyModels.V2() })
        {
            ModelParameters p = ModelParameters.Random(c, 3, 0.2);
            TinyModels.Perturb(p, 4);
            Compare(p, TinyModels.Ids(17, c.VocabSize, 5));
        }
    }

    [Fact]
    public void RecomputeGivesIdenticalGradients()
    {
        ModelConfig c = TinyModels.V3();
        ModelParameters p = ModelParameters.Random(c, 3, 0.1);
        int[] ids = TinyModels.Ids(2 * 12, c.VocabSize, 6);
        int[] targets = ids.Select((t, i) => i % 12 == 11 ? -1 : ids[i + 1]).ToArray();
        float[][] Run(bool recompute)
        {
            var m = new TrainingModel(p, new TrainingModelOptions { BatchSize = 2, SequenceLength = 12, Recompute = recompute, MtpLambda = 0.3f, BalanceAlpha = 0.01f });
            p.ZeroGrad();
            m.ForwardBackward(ids, targets);
            return p.Trainable.Select(t => t.Grad.ToArray()).ToArray();
        }
        float[][] a = Run(false), b = Run(true);
        for (int i = 0; i < a.Length; i++)
            Assert.Equal(a[i], b[i]);
    }

    private static void Compare(ModelParameters p, int[] ids)
    {
        var inference = new Transformer(p.Weights);
        float[] want = inference.Logits(ids);
        var model = new TrainingModel(p, new TrainingModelOptions { BatchSize = 1, SequenceLength = ids.Length });
        var got = new float[want.Length];
        model.Logits(ids, got);
        // Same operations in a different summation order (GEMM tiles vs per-row dot products): fp32 rounding only.
        Numerics.AssertClose(want, got, 2e-4, "training vs inference logits");
    }
}
