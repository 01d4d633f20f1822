// Learning-rate schedules (step t counts from 0):
//   constant
//   cosine:  linear warm-up to lr over W steps, then cosine from lr to min_lr at the last step
//   wsd:     DeepSeek-V3's warm-up / stable / decay (docs/deepseek-architecture.md §10): linear warm-up over W steps, constant lr, then a
//            cosine decay to min_lr over the last D steps (decay_steps), min_lr after that
namespace SharpSeek.Training;

/// <summary>Kinds of learning-rate schedule.</summary>
public enum LrScheduleKind
{
    Constant,
    Cosine,
    Wsd,
}

/// <summary>A learning-rate schedule over <see cref="TotalSteps"/> steps.</summary>
public sealed record LrSchedule
{
    public LrScheduleKind Kind { get; init; } = LrScheduleKind.Cosine;
    public double MaxLr { get; init; } = 3e-4;
    public double MinLr { get; init; }
    public int WarmupSteps { get; init; }
    /// <summary>Steps of the final decay (wsd).</summary>
    public int DecaySteps { get; init; }
    public int TotalSteps { get; init; } = 1;

    /// <summary>Learning rate of step <paramref name="step"/> (0-based).</summary>
    public double At(long step)
    {
        if (WarmupSteps > 0 && step < WarmupSteps)
            return MaxLr * (step + 1) / WarmupSteps;
        switch (Kind)
        {
            case LrScheduleKind.Constant:
                return MaxLr;
            case LrScheduleKind.Cosine:
            {
                long span = Math.Max(1, TotalSteps - 1 - WarmupSteps);
                double progress = Math.Clamp((double)(step - WarmupSteps) / span, 0, 1);
                return MinLr + 0.5 * (MaxLr - MinLr) * (1 + Math.Cos(Math.PI * progress));
            }
            default:
            {
                long decayStart = TotalSteps - DecaySteps;
                if (step < decayStart)
                    return MaxLr;
                if (DecaySteps <= 1)
                    return MinLr;
                double progress = Math.Clamp((double)(step - decayStart) / (DecaySteps - 1), 0, 1);
                return MinLr + 0.5 * (MaxLr - MinLr) * (1 + Math.Cos(Math.PI * progress));
            }
        }
    }
}
