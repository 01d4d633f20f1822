// The speculation policy's decisions on simulated step costs and draft outcomes: a model where verifying costs more
// than two plain steps stops drafting after warm-up (sharpseek-mini measured 0.5-0.6x with drafts on every step); a
// model where drafts pay keeps drafting, probing plain steps now and then; a sequence whose acceptance collapses falls
// back to plain steps and comes back when probes find acceptance again. And on a fixture: the adaptive generator mixes
// plain and draft steps and still gives the greedy tokens of plain decoding.
using SharpSeek.Inference;
using SharpSeek.Model;
using SharpSeek.Tests;

namespace SharpSeek.Inference.Tests;

public sealed class SpeculationPolicyTests
{
    private static readonly string MiniDir = Fixtures.ShippedModel("sharpseek-mini");

    // runs n steps; a speculative step costs ratio x a plain one; draft i is accepted when accept(i)
    private static (int Spec, int Plain) Simulate(SpeculationPolicy p, int n, double ratio, Func<int, bool> accept, double plain = 1e-3)
    {
        int spec = 0, plainSteps = 0;
        for (int i = 0; i < n; i++)
        {
            if (p.ShouldSpeculate())
            {
                p.RecordSpeculative(ratio * plain, accept(spec));
                spec++;
            }
            else
            {
                p.RecordPlain(plain);
                plainSteps++;
            }
        }
        return (spec, plainSteps);
    }

    [Fact]
    public void A_model_where_verifying_costs_more_than_two_steps_stops_drafting_after_warm_up()
    {
        var p = new SpeculationPolicy();
        (int spec, int plain) = Simulate(p, 200, ratio: 2.5, accept: _ => true); // even with every draft accepted
        Assert.True(p.NeverSpeculate);
        Assert.Equal(2.5, p.CostRatio, 3);
        Assert.Equal((1 + p.Acceptance) / 2.5, p.PredictedSpeedup, 6);
        Assert.True(p.PredictedSpeedup < 0.8);
        int warmup = SpeculationPolicy.UnmeasuredSteps + SpeculationPolicy.WarmupSteps;
        Assert.InRange(spec, warmup, warmup + 1); // the warm-up only
        Assert.Equal(200 - spec, plain);
        p.StartSequence(); // a new sequence on the same model does not try again
        Assert.False(p.ShouldSpeculate());
    }

    [Fact]
    public void A_model_where_drafts_pay_keeps_drafting_and_probes_plain_steps()
    {
        var p = new SpeculationPolicy();
        (int spec, int plain) = Simulate(p, 400, ratio: 1.2, accept: i => i % 5 != 0); // 80% accepted
        Assert.False(p.NeverSpeculate);
        Assert.True(p.PredictedSpeedup > 1.3, $"predicted {p.PredictedSpeedup}");
        // warm-up, then one probe every ProbeInterval steps
        int warmup = SpeculationPolicy.UnmeasuredSteps + SpeculationPolicy.WarmupSteps;
        Assert.InRange(plain, warmup, warmup + 1 + 400 / SpeculationPolicy.ProbeInterval);
        Assert.Equal(400 - plain, spec);
    }

    [Fact]
    public void Low_acceptance_falls_back_to_plain_steps_and_recovers_when_probes_are_accepted_again()
    {
        var p = new SpeculationPolicy();
        Simulate(p, 100, ratio: 1.5, accept: _ => false);
        Assert.True(p.PredictedSpeedup < 1);
        (int spec, int plain) = Simulate(p, 160, ratio: 1.5, accept: _ => false);
        Assert.InRange(spec, 160 / SpeculationPolicy.ProbeInterval - 1, 160 / SpeculationPolicy.ProbeInterval + 1); // probes only
        Assert.False(p.NeverSpeculate); // full acceptance could still pay on this model
        // acceptance returns: the probes see it, and drafting takes over again
        (spec, plain) = Simulate(p, 600, ratio: 1.5, accept: _ => true);
        Assert.True(spec > 400, $"{spec} draft steps, {plain} plain");
        Assert.True(p.PredictedSpeedup > 1);
    }

    [Fact]
    public void Each_sequence_starts_from_the_acceptance_prior_and_keeps_the_model_costs()
    {
        var p = new SpeculationPolicy();
        Simulate(p, 100, ratio: 1.5, accept: _ => false);
        double ratio = p.CostRatio;
        Assert.True(p.Acceptance < 0.3, $"acceptance {p.Acceptance}");
        p.StartSequence();
        Assert.Equal(0.5, p.Acceptance);
        Assert.Equal(ratio, p.CostRatio);
    }

    [Fact]
    public void The_non_adaptive_policy_always_drafts()
    {
        var p = new SpeculationPolicy(adaptive: false);
        (int spec, int plain) = Simulate(p, 100, ratio: 3, accept: _ => false);
        Assert.Equal((100, 0), (spec, plain));
        Assert.False(p.NeverSpeculate);
    }

    [Theory]
    [InlineData("v3-tiny")]
    [InlineData("v3-yarn-bf16")]
    public void The_adaptive_generator_mixes_plain_and_draft_steps_and_keeps_greedy_tokens(string name)
    {
        string dir = Fixtures.Hf(name);
        using ModelWeights w = WeightLoader.Load(dir);
        var t = new Transformer(w);
        int[] prompt = [1, 5, 9, 13, 17, 21, 25, 29];
        var o = new GenerationOptions { MaxTokens = 40, Sampling = SamplingOptions.Greedy, IgnoreEos = true };
        GenerationResult plain = new Generator(t).Generate(prompt, o);
        var g = new Generator(t) { Speculation = new SpeculationPolicy() }; // measuring (the shape's prior would say never)
        GenerationResult spec = g.Generate(prompt, o with { Speculative = true });
        Assert.Equal(plain.Tokens, spec.Tokens);
        // the warm-up alternates, so plain steps with pending hidden states were caught up by later drafts
        Assert.True(spec.Stats.DraftTokens >= SpeculationPolicy.WarmupSteps, $"{spec.Stats.DraftTokens} drafts");
        Assert.True(spec.Stats.PlainSteps >= SpeculationPolicy.WarmupSteps, $"{spec.Stats.PlainSteps} plain steps");
        Assert.False(double.IsNaN(spec.Stats.CostRatio));
        // a second sequence on the same generator: prefix reuse with the module's cache in step
        GenerationResult again = g.Generate([.. prompt, .. spec.Tokens.Take(5)], o with { Speculative = true, MaxTokens = 20 });
        GenerationResult againPlain = new Generator(t).Generate([.. prompt, .. spec.Tokens.Take(5)], o with { MaxTokens = 20 });
        Assert.Equal(againPlain.Tokens, again.Tokens);
    }

    // a model small enough to stay in the caches is compute-bound, so its shape predicts the cost ratio: sharpseek-mini's
    // (one layer and a 4,096 x 256 head to draft, two rows to verify) is past NeverPays, so the generator's policy never
    // drafts (no warm-up steps) and --speculative gives plain decoding's tokens with no draft; a model whose weights
    // are streamed (beyond CacheResidentBytes) gets no prediction and is measured
    [Fact]
    public void A_small_models_shape_predicts_that_drafts_cannot_pay()
    {
        using ModelWeights w = WeightLoader.Load(MiniDir);
        var t = new Transformer(w);
        double r = SpeculationPolicy.PredictedCostRatio(w.Config, Lanes.WeightBytes(w));
        Assert.InRange(r, SpeculationPolicy.NeverPays, 3.0);
        Assert.True(double.IsNaN(SpeculationPolicy.PredictedCostRatio(w.Config, SpeculationPolicy.CacheResidentBytes + 1)));
        var g = new Generator(t);
        Assert.True(g.Speculation.NeverSpeculate);
        Assert.Equal(r, g.Speculation.PriorCostRatio);
        int[] prompt = [1, 5, 9, 13];
        var o = new GenerationOptions { MaxTokens = 12, Sampling = SamplingOptions.Greedy, IgnoreEos = true };
        GenerationResult spec = g.Generate(prompt, o with { Speculative = true });
        Assert.Equal(new Generator(t).Generate(prompt, o).Tokens, spec.Tokens);
        Assert.Equal(0, spec.Stats.DraftTokens);
        Assert.True(spec.Stats.SpeculationStopped);
        Assert.Equal(r, spec.Stats.PriorCostRatio);
        // k drafts a step cost more: the prior grows with k, and so does the ratio that can never pay
        double r3 = SpeculationPolicy.PredictedCostRatio(w.Config, Lanes.WeightBytes(w), drafts: 3);
        Assert.True(r3 > 2 * r - 1, $"k=3 {r3} vs k=1 {r}");
        Assert.True(SpeculationPolicy.For(t, 3).NeverSpeculate);
        Assert.Equal(3, SpeculationPolicy.For(t, 3).PriorDrafts);
        GenerationResult spec3 = g.Generate(prompt, o with { Speculative = true, SpeculativeTokens = 3 });
        Assert.Equal(spec.Tokens, spec3.Tokens);
        Assert.Equal(r3, spec3.Stats.PriorCostRatio);
        Assert.Equal(0, spec3.Stats.DraftTokens);
    }

    [Fact]
    public void Several_drafts_a_step_are_judged_by_the_tokens_a_step_gives()
    {
        Assert.Equal(SpeculationPolicy.NeverPays, SpeculationPolicy.NeverPaysFor(1));
        Assert.Equal(2 * SpeculationPolicy.NeverPays, SpeculationPolicy.NeverPaysFor(3), 9);
        // 3 drafts a step at 2.5 plain steps: with 2.6 of 3 accepted a step gives 3.6 tokens, a gain a 1-draft policy
        // would have called impossible (ratio > 2.2)
        var p = new SpeculationPolicy();
        for (int i = 0; i < 100; i++)
        {
            if (p.ShouldSpeculate())
                p.RecordSpeculative(2.5e-3, i % 5 == 0 ? 1 : 3, 3);
            else
                p.RecordPlain(1e-3);
        }
        Assert.False(p.NeverSpeculate);
        Assert.InRange(p.AcceptedPerStep, 2.0, 3.0);
        Assert.InRange(p.Acceptance, 0.66, 1.0);
        Assert.Equal((1 + p.AcceptedPerStep) / p.CostRatio, p.PredictedSpeedup, 9);
        Assert.True(p.PredictedSpeedup > 1.2, $"predicted {p.PredictedSpeedup}");
        // the same costs with drafts mostly rejected: back to plain steps
        var q = new SpeculationPolicy();
        for (int i = 0; i < 100; i++)
        {
            if (q.ShouldSpeculate())
                q.RecordSpeculative(2.5e-3, 0, 3);
            else
                q.RecordPlain(1e-3);
        }
        Assert.True(q.PredictedSpeedup < 0.5);
        Assert.Throws<ArgumentOutOfRangeException>(() => q.RecordSpeculative(1e-3, 4, 3));
    }
}
