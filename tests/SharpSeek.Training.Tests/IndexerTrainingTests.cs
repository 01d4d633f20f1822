// Training of DeepSeek-V3.2's lightning indexer (Layers/Indexer.Training.cs, the variant hooks in Mla.Training.cs and
// TrainingModel): gradients against finite differences in the warm-up (dense KL) and sparse (masked attention, KL on
// the selection) stages, the detachment of the indexer from the LM loss, the warm-up driving the KL down, and train.json.
using SharpSeek.Model;
using SharpSeek.Model.Layers;
using Xunit;
using Xunit.Abstractions;

namespace SharpSeek.Training.Tests;

public sealed class IndexerTrainingTests(ITestOutputHelper output)
{
    private const int B = 2, T = 12;

    private static (int[] Inputs, int[] Targets) Batch(int vocab)
    {
        int[] ids = TinyModels.Ids(B * (T + 1), vocab, 3);
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
        return (inputs, targets);
    }

    private static (ModelParameters P, TrainingModel Model) Build(VariantStage stage, float weight, int topK = 4)
    {
        ModelConfig c = TinyModels.V32(topK);
        ModelParameters p = ModelParameters.Random(c, seed: 7, std: 0.3);
        TinyModels.Perturb(p, 11);
        var model = new TrainingModel(p, new TrainingModelOptions
        {
            BatchSize = B, SequenceLength = T, Variant = new VariantTrainingOptions(stage, weight),
        });
        return (p, model);
    }

    private static string Selection(TrainingModel m) =>
        string.Join(";", m.Selections.Select(s => s is null ? "dense" : string.Join("|", Enumerable.Range(0, s.Slots)
            .Select(n => s.IsDense(n) ? "d" : string.Join(",", s.Positions(n).ToArray())))));

    [Fact]
    public void Indexer_tensors_are_trainable_parameters()
    {
        (ModelParameters p, _) = Build(VariantStage.Warmup, 1f);
        // five tensors per layer: wq_b, wk, k_norm weight and bias, weights_proj
        Assert.Equal(5 * p.Config.NumHiddenLayers, p.VariantParameters.Count);
        Assert.All(p.VariantParameters, prm => Assert.Contains(".indexer.", prm.Name));
    }

    [Fact]
    public void Warmup_indexer_gradients_match_finite_differences_and_the_main_model_gets_none()
    {
        (ModelParameters p, TrainingModel model) = Build(VariantStage.Warmup, 10f);
        (int[] inputs, int[] targets) = Batch(p.Config.VocabSize);
        p.ZeroGrad();
        LossBreakdown l = model.ForwardBackward(inputs, targets);
        Assert.True(l.Variant > 0);
        Assert.Equal(10 * l.Variant, l.Total, 9);
        Assert.True(model.Selections.All(s => s is null)); // warm-up attention is dense
        var own = new HashSet<Parameter>(p.VariantParameters);
        foreach (Parameter prm in p.Trainable.Where(x => !own.Contains(x)))
            Assert.True(prm.Grad.IndexOfAnyExcept(0f) < 0, $"{prm.Name}: the frozen main model got a gradient");
        CheckDirections(model, p.VariantParameters, inputs, targets, lb => lb.Total, "warmup");
    }

    [Fact]
    public void Sparse_stage_gradients_match_finite_differences()
    {
        // main tensors: the LM loss through attention masked to the indexer's top-4; indexer tensors: w·KL on the selection
        (ModelParameters p, TrainingModel model) = Build(VariantStage.Sparse, 10f, topK: 4);
        (int[] inputs, int[] targets) = Batch(p.Config.VocabSize);
        p.ZeroGrad();
        LossBreakdown l = model.ForwardBackward(inputs, targets);
        Assert.True(l.Variant > 0);
        Assert.Equal(l.Ce + 10 * l.Variant, l.Total, 9);
        PositionSelection sel = model.Selections[0]!;
        Assert.True(sel.AnySparse);
        Assert.Equal(4, sel.Positions(T - 1).Length); // the last query of a sequence attends to 4 of its 12 positions
        var own = new HashSet<Parameter>(p.VariantParameters);
        CheckDirections(model, p.Trainable.Where(x => !own.Contains(x)).ToArray(), inputs, targets, lb => lb.Ce, "sparse LM");
        p.ZeroGrad();
        model.ForwardBackward(inputs, targets);
        CheckDirections(model, p.VariantParameters, inputs, targets, lb => 10 * lb.Variant, "sparse KL");
    }

    [Fact]
    public void Sparse_attention_differs_from_dense()
    {
        (ModelParameters p, TrainingModel sparse) = Build(VariantStage.Sparse, 1f, topK: 4);
        (int[] inputs, int[] targets) = Batch(p.Config.VocabSize);
        var dense = new TrainingModel(p, new TrainingModelOptions { BatchSize = B, SequenceLength = T });
        double ceS = sparse.ForwardBackward(inputs, targets).Ce, ceD = dense.Evaluate(inputs, targets);
        Assert.True(Math.Abs(ceS - ceD) > 1e-5, $"sparse CE {ceS} equals dense CE {ceD}");
        // with top-k covering every position the selection is dense and so is the result
        (ModelParameters p2, TrainingModel all) = Build(VariantStage.Sparse, 1f, topK: T);
        var dense2 = new TrainingModel(p2, new TrainingModelOptions { BatchSize = B, SequenceLength = T });
        Assert.Equal(dense2.Evaluate(inputs, targets), all.Evaluate(inputs, targets), 12);
    }

    [Fact]
    public void The_LM_loss_does_not_reach_the_indexer_nor_the_KL_the_model()
    {
        // sparse stage, loss weights 1 and 3: the indexer's gradients scale by exactly 3 (only its KL reaches it), the
        // main model's gradients do not change (the KL does not reach them)
        (ModelParameters p1, TrainingModel m1) = Build(VariantStage.Sparse, 1f);
        (ModelParameters p3, TrainingModel m3) = Build(VariantStage.Sparse, 3f);
        (int[] inputs, int[] targets) = Batch(p1.Config.VocabSize);
        p1.ZeroGrad();
        p3.ZeroGrad();
        m1.ForwardBackward(inputs, targets);
        m3.ForwardBackward(inputs, targets);
        var own = new HashSet<string>(p1.VariantParameters.Select(x => x.Name));
        for (int k = 0; k < p1.Trainable.Count; k++)
        {
            float[] g1 = p1.Trainable[k].Grad.ToArray(), g3 = p3.Trainable[k].Grad.ToArray();
            Assert.True(g1.Any(x => x != 0), $"{p1.Trainable[k].Name}: no gradient");
            if (own.Contains(p1.Trainable[k].Name))
            {
                float scale = g3.Max(MathF.Abs); // float rounding of the scaled sums: relative to the tensor's largest entry
                for (int i = 0; i < g1.Length; i++)
                    Assert.True(Math.Abs(g3[i] - 3 * g1[i]) <= 1e-5f * scale, $"{p1.Trainable[k].Name}[{i}]: {g3[i]} vs 3 x {g1[i]}");
            }
            else
            {
                Assert.Equal(g1, g3);
            }
        }
    }

    [Fact]
    public void Warmup_lowers_the_KL_and_leaves_the_main_model_alone()
    {
        (ModelParameters p, TrainingModel model) = Build(VariantStage.Warmup, 1f);
        (int[] inputs, int[] targets) = Batch(p.Config.VocabSize);
        var own = new HashSet<Parameter>(p.VariantParameters);
        var opt = new AdamW(p.Trainable, new AdamWOptions { WeightDecay = 0 }, own.Contains);
        float[][] before = p.Trainable.Select(x => x.Values.ToArray()).ToArray();
        double first = 0, last = 0;
        for (int step = 0; step < 40; step++)
        {
            p.ZeroGrad();
            LossBreakdown l = model.ForwardBackward(inputs, targets);
            if (step == 0) first = l.Variant;
            last = l.Variant;
            opt.Update(Tensors.ComputeBackend.Cpu, 1e-2, 1.0);
        }
        output.WriteLine($"indexer KL {first:G5} -> {last:G5} in 40 steps");
        Assert.True(last < 0.5 * first, $"KL {first} -> {last}");
        for (int k = 0; k < p.Trainable.Count; k++)
        {
            bool changed = !p.Trainable[k].Values.SequenceEqual(before[k]);
            Assert.Equal(own.Contains(p.Trainable[k]), changed);
        }
    }

    [Fact]
    public void Train_json_indexer_settings_are_validated()
    {
        string head = $$"""{ "model": { "config": {{TinyModels.V32Json(4)}} }, "data": { "shards": ["a.tokens"] }, """;
        TrainOptions o = TrainOptions.Parse(head + """ "indexer": { "stage": "sparse", "loss_weight": 0.5 } }""", "/tmp");
        Assert.Equal(new VariantTrainingOptions(VariantStage.Sparse, 0.5f), o.Indexer);
        Assert.Equal(VariantStage.Warmup, TrainOptions.Parse(head + """ "indexer": { "stage": "warmup" } }""", "/tmp").Indexer!.Stage);
        Assert.Null(TrainOptions.Parse(head + "\"steps\": 3 }", "/tmp").Indexer);
        Assert.Contains("indexer.stage", Assert.Throws<InvalidDataException>(() => TrainOptions.Parse(head + """ "indexer": { "stage": "dense" } }""", "/tmp")).Message);
        Assert.Contains("indexer.stage", Assert.Throws<InvalidDataException>(() => TrainOptions.Parse(head + """ "indexer": {} }""", "/tmp")).Message);
        Assert.Contains("indexer.loss_weight", Assert.Throws<InvalidDataException>(() => TrainOptions.Parse(head + """ "indexer": { "stage": "sparse", "loss_weight": 0 } }""", "/tmp")).Message);
        Assert.Contains("indexer.topk", Assert.Throws<InvalidDataException>(() => TrainOptions.Parse(head + """ "indexer": { "stage": "sparse", "topk": 3 } }""", "/tmp")).Message);
        Assert.Contains("'indexer'", Assert.Throws<InvalidDataException>(() => TrainOptions.Parse(head + """ "indexer": "warmup" }""", "/tmp")).Message);
        // a model without an indexer
        var p = ModelParameters.Random(TinyModels.V3(), seed: 1, std: 0.02);
        Assert.Contains("no attention variant", Assert.Throws<ArgumentException>(() => new TrainingModel(p, new TrainingModelOptions
        {
            BatchSize = 1, SequenceLength = 4, Variant = new VariantTrainingOptions(VariantStage.Warmup, 1f),
        })).Message);
    }

    // each tensor's gradient against a central difference along a direction (its gradient plus noise), with the
    // sparse selection unchanged at both points
    private void CheckDirections(TrainingModel model, IReadOnlyList<Parameter> prms, int[] inputs, int[] targets,
                                 Func<LossBreakdown, double> loss, string what)
    {
        ModelParameters p = model.Parameters;
        string selection = Selection(model);
        var grads = prms.Select(t => t.Grad.ToArray()).ToArray();
        var rng = new Rng(5);
        for (int k = 0; k < prms.Count; k++)
        {
            Parameter prm = prms[k];
            float[] g = grads[k];
            double gn = Math.Sqrt(g.Sum(x => (double)x * x));
            Assert.True(gn > 0, $"{what} {prm.Name}: zero gradient");
            double[] v = DirectionalCheck.Direction(g, rng, out double an);
            (double fd, double hUsed) = DirectionalCheck.Central(model, prm, v, inputs, targets, loss, Selection, selection, 1e-3, 1e-4);
            Assert.False(double.IsNaN(fd), $"{what} {prm.Name}: the selection changes for every step size");
            double err = Math.Abs(fd - an);
            output.WriteLine($"{what,-10} {prm.Name,-50} analytic {an,12:G6} fd {fd,12:G6} err {err:G3} h {hUsed:G3}");
            Assert.True(err <= 3e-3 * Math.Abs(an) + 2e-4, $"{what} {prm.Name}: analytic {an:G6} vs finite difference {fd:G6}");
        }
        p.ZeroGrad();
    }
}
