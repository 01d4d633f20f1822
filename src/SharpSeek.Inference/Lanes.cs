// Lanes of batched generation: a batch's sequences split between the backend's threads, each lane running whole
// forward passes of its own sequences on one thread (kernels inside a pool job run inline), instead of every product
// of one big forward split between the threads. On a small model a step's products are too short for the split (the
// second thread waits at every product), while lanes never wait for each other inside a step; on a large model lanes
// would read the weights once per lane, so they are kept to models whose per-step weights are small.
using System.Runtime.CompilerServices;
using SharpSeek.Model;

namespace SharpSeek.Inference;

/// <summary>When batched generation (<see cref="Generator.GenerateBatch"/>, <see cref="BatchScheduler"/>) runs in lanes.</summary>
public static class Lanes
{
    /// <summary>Fewest sequences per lane when the lane count is automatic.</summary>
    public const int MinSequences = 8;

    /// <summary>Largest size of the matrices a step reads (all but the embedding) for automatic lanes.</summary>
    public const long MaxWeightBytes = 256L << 20;

    private static readonly ConditionalWeakTable<ModelWeights, StrongBox<long>> s_bytes = [];

    /// <summary>
    /// Lanes for <paramref name="sequences"/> sequences on <paramref name="model"/>: <paramref name="requested"/> when
    /// positive (at most one per worker and per sequence); automatic (0): one per worker of the model's backend when each
    /// lane gets at least <see cref="MinSequences"/> and the weights are at most <see cref="MaxWeightBytes"/>, else 1.
    /// </summary>
    public static int For(Transformer model, int sequences, int requested = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegative(requested);
        int workers = model.Backend.Workers;
        if (requested > 0)
            return Math.Max(1, Math.Min(Math.Min(requested, workers), sequences));
        if (workers < 2 || sequences < MinSequences * workers)
            return 1;
        return WeightBytes(model.Weights) <= MaxWeightBytes ? workers : 1;
    }

    /// <summary>Bytes of the matrices a forward step reads: every matrix but the embedding table.</summary>
    public static long WeightBytes(ModelWeights weights) =>
        s_bytes.GetValue(weights, w => new StrongBox<long>(
            w.Enumerate().Sum(t => t.Matrix is { } m && !ReferenceEquals(m, w.Embed) ? m.ByteSize : 0))).Value;
}
