// When MTP speculation pays (issue 16). A speculative step (the module's draft, then one forward over [x, draft])
// costs r plain decode steps and yields 1 + a tokens, a being the acceptance, so it changes decode speed by
// (1 + a) / r. r belongs to the model on this machine: near 1 for models whose decode streams their weights (two rows
// read them once), about 2 or more for small ones that fit in cache and compute (models/sharpseek-mini: two rows cost
// twice one, and the module's output head is as large as the model's), where no acceptance can pay. So the policy
// measures both step costs on the running model (moving averages; the first steps of each mode, which run freshly
// compiled code, left out),
// follows this sequence's acceptance, speculates while the predicted speed-up is above 1, and takes one step of the
// other mode every ProbeInterval steps to keep both numbers current. Once r >= NeverPays after warm-up, it stops
// speculating for good: the generator then neither drafts nor keeps the module's cache. A model small enough to stay in
// the caches has its r predicted from its shape first (SpeculationPolicy.For), and where that already exceeds NeverPays
// the warm-up is skipped too (its few speculative steps cost ~3 plain ones each: 0.92x plain over 200 tokens of the R1 model).
using SharpSeek.Model;

namespace SharpSeek.Inference;

/// <summary>Decides, step by step, whether speculative decoding is faster than plain decoding on this model.</summary>
public sealed class SpeculationPolicy
{
    /// <summary>Steps of each mode left out of the averages (first touches of the module's weights and caches; the
    /// sharpseek tool compiles fully optimized code from the first call, so no JIT tier is left to wait for).</summary>
    public const int UnmeasuredSteps = 1;

    /// <summary>Measured steps of each mode before the policy decides (after the unmeasured ones). Each speculative step
    /// of the warm-up costs r plain steps where speculation cannot pay: 2 + 4 of them made the adaptive mode 0.95x plain
    /// over 200 tokens of a 1B MoE with r = 2.3, now 1 + 2.</summary>
    public const int WarmupSteps = 2;

    /// <summary>One step of the mode not chosen every this many steps, to refresh its cost or the acceptance.</summary>
    public const int ProbeInterval = 16;

    /// <summary>Cost ratio beyond which speculation cannot pay (even with every draft accepted), with a margin for noise.</summary>
    public const double NeverPays = 2.2;

    /// <summary>Cost ratio beyond which steps of <paramref name="drafts"/> drafts cannot pay: such a step gives at most
    /// drafts + 1 tokens (<see cref="NeverPays"/> for one draft, the same margin for more).</summary>
    public static double NeverPaysFor(int drafts) => NeverPays * (1 + drafts) / 2;

    private const double Alpha = 0.2;            // weight of a new step time in its moving average
    private const double AcceptanceAlpha = 0.1;  // weight of a new draft outcome in the sequence's acceptance
    private const double AcceptancePrior = 0.5;  // acceptance assumed when a sequence starts

    private readonly bool _adaptive;
    private int _plainSeen, _specSeen, _sinceProbe, _drafts = 1;

    /// <param name="adaptive">False drafts on every step it can (to measure speculation itself, or to replay it in tests).</param>
    public SpeculationPolicy(bool adaptive = true) => _adaptive = adaptive;

    /// <summary>Largest weight size (bytes a step reads) for which a model counts as compute-bound in
    /// <see cref="PredictedCostRatio"/>: its weights stay in the caches, so two rows cost about twice one.</summary>
    public const long CacheResidentBytes = 64L << 20;

    /// <summary>
    /// The cost ratio a model's shape predicts before anything is measured, or NaN where only measuring can tell. For a
    /// model whose weights fit in the caches (at most <see cref="CacheResidentBytes"/>) a step is compute-bound, so a
    /// speculative step costs the draft (one decoder layer, the module's input projection and its output head) plus a
    /// main forward of two rows: r = (draft FLOPs + 2 · main FLOPs) / main FLOPs, per token, from the config; with k
    /// drafts a step, (k · draft + (k + 1) · main) / main. Larger models stream their weights, and two rows cost about
    /// one: measured.
    /// </summary>
    public static double PredictedCostRatio(ModelConfig c, long weightBytes, int drafts = 1)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentOutOfRangeException.ThrowIfLessThan(drafts, 1);
        if (c.NumNextnPredictLayers == 0 || weightBytes > CacheResidentBytes)
            return double.NaN;
        double main = ModelStats.Compute(c).FlopsPerToken, head = 2.0 * c.VocabSize * c.HiddenSize, H = c.HiddenSize;
        double layer = (main - head) / c.NumHiddenLayers;
        double draft = layer + head + 2 * (2 * H) * H;
        return (drafts * draft + (drafts + 1) * main) / main;
    }

    /// <summary>
    /// The adaptive policy for <paramref name="model"/>: when its shape already predicts a cost ratio of at least
    /// <see cref="NeverPays"/> (<see cref="PredictedCostRatio"/>), it never drafts (no warm-up steps spent finding out);
    /// otherwise it measures as <see cref="SpeculationPolicy(bool)"/>.
    /// </summary>
    public static SpeculationPolicy For(Transformer model, int drafts = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        double r = PredictedCostRatio(model.Config, Lanes.WeightBytes(model.Weights), drafts);
        return new SpeculationPolicy { PriorCostRatio = r, NeverSpeculate = r >= NeverPaysFor(drafts), PriorDrafts = drafts };
    }

    /// <summary>The drafts a step that <see cref="PriorCostRatio"/> was predicted for (<see cref="For"/>; 1 otherwise).</summary>
    public int PriorDrafts { get; private init; } = 1;

    /// <summary>The cost ratio the model's shape predicted (<see cref="PredictedCostRatio"/>; NaN: none).</summary>
    public double PriorCostRatio { get; private init; } = double.NaN;

    /// <summary>Moving average of a plain decode step's seconds (NaN until measured).</summary>
    public double PlainSeconds { get; private set; } = double.NaN;

    /// <summary>Moving average of a speculative step's seconds: draft and verify (NaN until measured).</summary>
    public double SpeculativeSeconds { get; private set; } = double.NaN;

    /// <summary>Moving average of this sequence's draft acceptance (the fraction of a step's drafts accepted).</summary>
    public double Acceptance { get; private set; } = AcceptancePrior;

    /// <summary>Moving average of this sequence's accepted drafts per speculative step (equals <see cref="Acceptance"/>
    /// with one draft a step).</summary>
    public double AcceptedPerStep { get; private set; } = AcceptancePrior;

    /// <summary>Speculative step cost over plain step cost (NaN until both are measured).</summary>
    public double CostRatio => SpeculativeSeconds / PlainSeconds;

    /// <summary>Predicted decode speed-up of speculating now: (1 + accepted drafts a step) / cost ratio.</summary>
    public double PredictedSpeedup => (1 + AcceptedPerStep) / CostRatio;

    /// <summary>True once the model's cost ratio shows that speculation cannot pay on it.</summary>
    public bool NeverSpeculate { get; private set; }

    private bool Warm => _plainSeen >= UnmeasuredSteps + WarmupSteps && _specSeen >= UnmeasuredSteps + WarmupSteps;

    /// <summary>A new sequence: its acceptance starts from the prior; the model's step costs are kept.</summary>
    public void StartSequence()
    {
        Acceptance = AcceptancePrior;
        AcceptedPerStep = AcceptancePrior;
        _sinceProbe = 0;
    }

    /// <summary>Whether the next step should draft and verify.</summary>
    public bool ShouldSpeculate()
    {
        if (!_adaptive)
            return true;
        if (NeverSpeculate)
            return false;
        if (!Warm)
            return _specSeen <= _plainSeen; // alternate until both are measured
        bool pays = PredictedSpeedup > 1;
        if (++_sinceProbe >= ProbeInterval)
        {
            _sinceProbe = 0;
            return !pays;
        }
        return pays;
    }

    /// <summary>Records a plain decode step.</summary>
    public void RecordPlain(double seconds)
    {
        if (_plainSeen++ >= UnmeasuredSteps)
            PlainSeconds = Average(PlainSeconds, seconds);
        Decide();
    }

    /// <summary>Records a speculative step of one draft and whether it was accepted.</summary>
    public void RecordSpeculative(double seconds, bool accepted) => RecordSpeculative(seconds, accepted ? 1 : 0, 1);

    /// <summary>Records a speculative step: <paramref name="accepted"/> of its <paramref name="drafted"/> drafts kept.</summary>
    public void RecordSpeculative(double seconds, int accepted, int drafted)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(drafted, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(accepted);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(accepted, drafted);
        if (_specSeen++ >= UnmeasuredSteps)
            SpeculativeSeconds = Average(SpeculativeSeconds, seconds);
        Acceptance += AcceptanceAlpha * ((double)accepted / drafted - Acceptance);
        AcceptedPerStep += AcceptanceAlpha * (accepted - AcceptedPerStep);
        _drafts = drafted;
        Decide();
    }

    private void Decide()
    {
        if (_adaptive && Warm && CostRatio >= NeverPaysFor(_drafts))
            NeverSpeculate = true;
    }

    private static double Average(double average, double x) => double.IsNaN(average) ? x : average + Alpha * (x - average);
}
