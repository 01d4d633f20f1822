// Auxiliary-loss-free load balancing (DeepSeek-V3 §2.1.2, docs/deepseek-architecture.md §10): after each step every router bias moves by
// b_i += γ·sign(mean_load − load_i), with load_i the tokens routed to expert i over the whole batch. The bias only
// changes which experts are selected, never the gating weights. Also the per-layer load statistics for logs.
namespace SharpSeek.Training;

/// <summary>Expert-load statistics of one MoE layer.</summary>
/// <param name="Layer">"layer 3" or "mtp 0".</param>
/// <param name="Counts">Tokens routed to each expert.</param>
/// <param name="MaxViolation">max_i load_i / mean_load − 1 (0 when perfectly balanced).</param>
public sealed record ExpertLoad(string Layer, int[] Counts, double MaxViolation);

/// <summary>Bias updates and load statistics.</summary>
public static class LoadBalancing
{
    /// <summary>b_i += γ·sign(mean − load_i) for every layer of the last forward that has a selection bias.</summary>
    public static void UpdateBiases(TrainingModel model, float gamma)
    {
        if (gamma == 0)
            return;
        for (int l = 0; l < model.MoeLayers.Count; l++)
        {
            float[]? bias = model.MoeLayers[l].Bias;
            if (bias is null)
                continue;
            int[] counts = model.ExpertCounts[l];
            double mean = 0;
            foreach (int c in counts)
                mean += c;
            mean /= counts.Length;
            for (int e = 0; e < bias.Length; e++)
                bias[e] += gamma * Math.Sign(mean - counts[e]);
        }
    }

    /// <summary>Load statistics of every MoE layer of the last forward.</summary>
    public static ExpertLoad[] Loads(TrainingModel model)
    {
        var r = new ExpertLoad[model.ExpertCounts.Count];
        for (int l = 0; l < r.Length; l++)
        {
            int[] c = (int[])model.ExpertCounts[l].Clone();
            double mean = c.Length == 0 ? 0 : c.Average();
            r[l] = new ExpertLoad(model.MoeLayerNames[l], c, mean > 0 ? c.Max() / mean - 1 : 0);
        }
        return r;
    }

    /// <summary>Mean of the layers' max violations (the CSV's imbalance column).</summary>
    public static double MeanMaxViolation(TrainingModel model)
    {
        ExpertLoad[] loads = Loads(model);
        return loads.Length == 0 ? 0 : loads.Average(l => l.MaxViolation);
    }
}
