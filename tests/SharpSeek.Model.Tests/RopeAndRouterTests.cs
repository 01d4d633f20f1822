using SharpSeek.Model;
using SharpSeek.Model.Layers;
using SharpSeek.Tests;

namespace SharpSeek.Model.Tests;

public sealed class RopeAndRouterTests
{
    private static ModelConfig V3() => ModelConfig.Load(Path.Combine(Fixtures.Root, "configs", "deepseek-v3.json"));

    [Fact]
    public void Yarn_frequencies_of_V3_blend_between_low_and_high()
    {
        ModelConfig c = V3();
        var rope = new RotaryEmbedding(c);
        (double low, double high) = RotaryEmbedding.CorrectionRange(c.Rope, 64);
        Assert.Equal((10.0, 23.0), (low, high));
        for (int i = 0; i < 32; i++)
        {
            double f = Math.Pow(10000, -2.0 * i / 64);
            if (i <= 10)
                Assert.Equal(f, rope.InvFreq[i], f * 1e-6);
            else if (i >= 23)
                Assert.Equal(f / 40, rope.InvFreq[i], f * 1e-6);
            else
                Assert.InRange(rope.InvFreq[i], f / 40 * 0.999999, f * 1.000001);
        }
    }

    [Fact]
    public void Rope_rotates_adjacent_pairs()
    {
        // only x[0] = 1: the interleaved layout rotates it into x[1], not into x[Dr/2]
        ModelConfig c = V3() with { Rope = new RopeConfig() };
        var rope = new RotaryEmbedding(c);
        var cos = new float[32];
        var sin = new float[32];
        rope.CosSin(1, cos, sin);
        var x = new float[64];
        x[0] = 1;
        RotaryEmbedding.Apply(x, cos, sin);
        Assert.Equal(MathF.Cos(1), x[0], 6);
        Assert.Equal(MathF.Sin(1), x[1], 6);
        Assert.Equal(0, x[32]);
        // position 0 is the identity
        rope.CosSin(0, cos, sin);
        var y = Enumerable.Range(0, 64).Select(i => (float)i).ToArray();
        RotaryEmbedding.Apply(y, cos, sin);
        Assert.Equal(Enumerable.Range(0, 64).Select(i => (float)i), y);
    }

    private static ModelConfig Small(TopKMethod m, ScoringFunc f, int E, int K, int G, int TG, bool norm, double rsf, string type = "deepseek_v3") => new()
    {
        ModelType = type, VocabSize = 8, HiddenSize = 4, NumHiddenLayers = 1, NumAttentionHeads = 1, KvLoraRank = 4,
        QkNopeHeadDim = 2, QkRopeHeadDim = 2, VHeadDim = 2, MoeIntermediateSize = 2, NRoutedExperts = E, NumExpertsPerTok = K,
        NGroup = G, TopkGroup = TG, TopkMethod = m, ScoringFunc = f, NormTopkProb = norm, RoutedScalingFactor = rsf,
    };

    private static (int[] Experts, float[] Weights) Route(ModelConfig c, float[] logits, float[]? bias = null)
    {
        var e = new int[c.NumExpertsPerTok];
        var w = new float[c.NumExpertsPerTok];
        Router.Route(c, logits, bias, e, w, new float[Router.ScratchSize(c)]);
        return (e, w);
    }

    private static float Sig(float x) => 1f / (1f + MathF.Exp(-x));

    [Fact]
    public void Bias_changes_selection_but_not_weights()
    {
        ModelConfig c = Small(TopKMethod.NoAuxTc, ScoringFunc.Sigmoid, 4, 2, 1, 1, norm: false, rsf: 1);
        float[] logits = [2f, 1f, 0f, -1f];
        Assert.Equal([0, 1], Route(c, logits).Experts);
        (int[] e, float[] w) = Route(c, logits, [0f, 0f, 5f, 0f]);
        Assert.Equal([2, 0], e);
        Assert.Equal(Sig(0f), w[0], 6); // the unbiased affinity
        Assert.Equal(Sig(2f), w[1], 6);
    }

    [Fact]
    public void Dropped_groups_are_masked_with_minus_infinity()
    {
        // 2 groups of 2, keep 1 group, pick 2 experts (more than... the kept group has exactly 2):
        // group 0 has biased scores below zero; group 1 wins. With a 0.0 mask a dropped expert would beat the
        // kept group's negative scores; with -inf the choice stays inside the kept group.
        ModelConfig c = Small(TopKMethod.NoAuxTc, ScoringFunc.Sigmoid, 4, 2, 2, 1, norm: true, rsf: 2.5);
        float[] logits = [0f, 0f, 0f, 0f];
        float[] bias = [-3f, -3f, -0.6f, -0.7f];
        (int[] e, float[] w) = Route(c, logits, bias);
        Assert.Equal([2, 3], e);
        Assert.Equal(1.25f, w[0], 5); // normalized (0.5 each) then scaled by 2.5
        Assert.Equal(1.25f, w[1], 5);
    }

    [Fact]
    public void Group_limited_selection_keeps_the_top_groups_by_top2_sum()
    {
        ModelConfig c = Small(TopKMethod.NoAuxTc, ScoringFunc.Sigmoid, 8, 2, 4, 2, norm: true, rsf: 1);
        // group sums of top-2: g0 = 3+(-5)→ low; g1 = 1+1; g2 = 2.5+(-4); g3 = 0.5+0.5
        float[] logits = [3f, -5f, 1f, 1f, 2.5f, -4f, 0.5f, 0.5f];
        (int[] e, _) = Route(c, logits);
        // groups by sum of sigmoids: g1 (0.731+0.731) > g3 (0.622+0.622) > g0 (0.953+0.007) > g2 (0.924+0.018)
        Assert.Equal([2, 3], e);
    }

    [Fact]
    public void V2_softmax_greedy_scales_without_normalizing()
    {
        ModelConfig c = Small(TopKMethod.Greedy, ScoringFunc.Softmax, 4, 2, 1, 1, norm: false, rsf: 16, type: "deepseek_v2");
        float[] logits = [1f, 3f, 2f, 0f];
        (int[] e, float[] w) = Route(c, logits);
        Assert.Equal([1, 2], e);
        double z = Math.Exp(1) + Math.Exp(3) + Math.Exp(2) + Math.Exp(0);
        Assert.Equal(16 * Math.Exp(3) / z, w[0], 1e-5);
        Assert.Equal(16 * Math.Exp(2) / z, w[1], 1e-5);
        // V2 with norm_topk_prob: normalize instead of scaling (remote code's normalize-xor-scale)
        (_, float[] wn) = Route(c with { NormTopkProb = true }, logits);
        Assert.Equal(1.0, wn[0] + wn[1], 5);
    }

    [Fact]
    public void V2_group_limited_greedy_uses_group_max()
    {
        ModelConfig c = Small(TopKMethod.GroupLimitedGreedy, ScoringFunc.Softmax, 6, 2, 3, 1, norm: false, rsf: 1, type: "deepseek_v2");
        // group maxima: g0 = 2.9, g1 = 3.0 (one strong expert), g2 = 2.95
        float[] logits = [2.9f, 2.8f, 3.0f, -9f, 2.95f, 2.94f];
        (int[] e, _) = Route(c, logits);
        Assert.Equal([2, 3], e); // only group 1 survives, so its weak expert is chosen too
    }

    [Fact]
    public void Ties_pick_the_lower_index()
    {
        ModelConfig c = Small(TopKMethod.Greedy, ScoringFunc.Sigmoid, 4, 2, 1, 1, norm: false, rsf: 1);
        Assert.Equal([1, 2], Route(c, [0f, 1f, 1f, 1f]).Experts);
    }
}
