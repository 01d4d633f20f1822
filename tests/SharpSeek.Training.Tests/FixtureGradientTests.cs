// Loss, every gradient and five AdamW steps against the transformers reference of each fixture that has a
// train_reference.safetensors (../shared/fixtures/README.md).
using SharpSeek.Model.Architecture;
using SharpSeek.Model;
using SharpSeek.Tests;
using Xunit.Abstractions;

namespace SharpSeek.Training.Tests;

public sealed class FixtureGradientTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Fixtures() => TrainReference.Folders();

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void LossAndGradientsMatchReference(string fixture)
    {
        using var r = new TrainReference(fixture);
        ModelParameters p = ModelParameters.Load(r.Directory);
        var model = new TrainingModel(p, new TrainingModelOptions { BatchSize = r.B, SequenceLength = r.T });
        p.ZeroGrad();
        LossBreakdown loss = model.ForwardBackward(r.Inputs, r.Targets);
        output.WriteLine($"{fixture}: loss {loss.Ce:G9} reference {r.Loss:G9}");
        Assert.True(Math.Abs(loss.Ce - r.Loss) < 1e-4, $"loss {loss.Ce} vs {r.Loss}");

        var byName = p.Trainable.ToDictionary(t => t.Name);
        double worst = 0;
        string worstName = "";
        foreach (string name in r.GradNames.Select(n => n["grad.".Length..]))
        {
            Assert.True(byName.ContainsKey(name), $"no trainable parameter '{name}'");
            double e = Numerics.RelRms(r.Grad(name), byName[name].Grad);
            if (e > worst)
            {
                worst = e;
                worstName = name;
            }
            Assert.True(e < 1e-3, $"{fixture}: grad {name} relative error {e:G3}");
        }
        output.WriteLine($"{fixture}: worst gradient relative error {worst:G3} ({worstName})");
        // every main-model parameter has a reference gradient (the MTP layer is not part of this loss)
        int L = p.Config.NumHiddenLayers;
        foreach (Parameter t in p.Trainable)
        {
            bool mtp = t.Name.StartsWith(ArchitectureDescriptor.DeepSeekV3.HfLayerPrefix(L), StringComparison.Ordinal) || (p.Config.NumNextnPredictLayers > 1 && t.Name.StartsWith("model.layers.", StringComparison.Ordinal) && int.Parse(t.Name.Split('.')[2]) >= L);
            Assert.True(mtp || r.HasGrad(t.Name), $"reference has no gradient for '{t.Name}'");
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void AdamWLossesMatchReference(string fixture)
    {
        using var r = new TrainReference(fixture);
        ModelParameters p = ModelParameters.Load(r.Directory);
        var model = new TrainingModel(p, new TrainingModelOptions { BatchSize = r.B, SequenceLength = r.T });
        var opt = new AdamW(p.Trainable, new AdamWOptions { Beta1 = 0.9, Beta2 = 0.95, Eps = 1e-8, WeightDecay = 0.1 });
        float[][] biases = p.RouterBiases.Select(b => (float[])b.Clone()).ToArray();
        for (int step = 0; step < r.AdamwLosses.Length; step++)
        {
            p.ZeroGrad();
            double loss = model.ForwardBackward(r.Inputs, r.Targets).Total;
            output.WriteLine($"{fixture} step {step}: loss {loss:G9} reference {r.AdamwLosses[step]:G9}");
            Assert.True(Math.Abs(loss - r.AdamwLosses[step]) < 1e-3, $"step {step}: loss {loss} vs {r.AdamwLosses[step]}");
            opt.Update(Tensors.ComputeBackend.Cpu, lr: 1e-3, maxNorm: 0);
        }
        for (int i = 0; i < biases.Length; i++)
            Assert.Equal(biases[i], p.RouterBiases[i]); // the router bias is not a parameter
    }
}
