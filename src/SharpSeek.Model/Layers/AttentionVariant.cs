// The seam for a family's addition to MLA (docs/architecture.md "How to add an architecture"): DeepSeek-V3.2's
// lightning indexer is one. A variant is named by the family's architecture descriptor (ArchitectureDescriptor.Attention);
// its tensors are descriptor roles marked as extensions, loaded generically into AttentionWeights.Extensions; it keeps
// per-token state of its own beside each sequence's latent cache (KvCache.Extensions); and it may restrict the cached
// positions each query attends to (PositionSelection), which MLA's naive and absorbed forms both honour. So a new
// variant is its config fields, its roles and names in the descriptor, and one Layers file with its math.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>A family's addition to MLA, created once per config (<see cref="Architecture.ArchitectureDescriptor.Attention"/>).</summary>
public interface IAttentionVariant
{
    /// <summary>Its per-token state for one sequence and layer (e.g. the indexer's keys), or null when it caches nothing.</summary>
    IVariantCache? CreateCache(int layer, CacheType type);

    /// <summary>A runner for one <see cref="Mla"/> instance (it may hold scratch buffers; not shared across threads).</summary>
    IAttentionSelector CreateSelector();

    /// <summary>Bytes the variant caches per token and layer (for <c>inspect</c> and memory budgets).</summary>
    long CacheBytesPerToken(CacheType type);

    /// <summary>One line for <c>inspect</c>: what it is and its settings.</summary>
    string Description { get; }

    /// <summary>Its settings as JSON-ready values, for <c>inspect --json</c>.</summary>
    IReadOnlyDictionary<string, object> Settings { get; }

    /// <summary>Its training half for [B, S] batches (<see cref="MlaTraining"/>), or null when it cannot be trained.</summary>
    IVariantTraining? CreateTraining(int B, int S) => null;
}

/// <summary>How a trained variant takes part in a training step (train.json "indexer").</summary>
public enum VariantStage
{
    /// <summary>Dense attention; only the variant learns, from its loss against the attention distribution (main model frozen).</summary>
    Warmup,

    /// <summary>Attention over the variant's selection; the model learns from the LM loss, the variant from its own loss on the selection.</summary>
    Sparse,
}

/// <summary>Training settings of an attention variant.</summary>
/// <param name="Stage">Warm-up (dense) or sparse.</param>
/// <param name="LossWeight">Factor of the variant's loss in the total, per layer (its gradient is scaled by it).</param>
public sealed record VariantTrainingOptions(VariantStage Stage, float LossWeight);

/// <summary>
/// The training half of a variant for one [B, S] batch shape (rows n = b·S + t). Its inputs are detached: it adds
/// gradients only into its own tensors, from its own loss against the main attention's distribution.
/// </summary>
public interface IVariantTraining
{
    /// <summary>
    /// Runs the variant on the attention sublayer's normalized input x [N, H] and MLA's normalized query latent cq
    /// [N, Dq] (cos/sin [S, Dr/2] the rotation of positions 0..S-1); with a selection (sparse stage) chooses the
    /// positions of its sequence each row attends to (selection slots are rows, positions 0..t of its sequence).
    /// </summary>
    void Forward(ComputeBackend be, AttentionWeights w, ReadOnlySpan<float> x, ReadOnlySpan<float> cq,
                 ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, PositionSelection? selection);

    /// <summary>
    /// Its loss against target [B, S, S] (row b·S + t: the main attention's distribution over positions 0..t, summed
    /// over heads and normalized), over the selected positions when a selection is given, after <see cref="Forward"/>.
    /// Adds <paramref name="weight"/> × its gradient into the variant's tensors of dw when dw is not null (x and cq as
    /// given to Forward). Returns the mean loss per row.
    /// </summary>
    double Loss(ComputeBackend be, AttentionWeights w, AttentionWeights? dw, ReadOnlySpan<float> x, ReadOnlySpan<float> cq,
                ReadOnlySpan<float> target, PositionSelection? selection, float weight);
}

/// <summary>One sequence's per-layer state of a variant, kept in step with the latent cache.</summary>
public interface IVariantCache
{
    /// <summary>Positions held.</summary>
    int Length { get; }

    /// <summary>Bytes held for the cached positions.</summary>
    long Bytes { get; }

    /// <summary>Forgets positions ≥ <paramref name="length"/>.</summary>
    void Truncate(int length);

    /// <summary>A copy holding the first <paramref name="length"/> positions (prefix reuse).</summary>
    IVariantCache Copy(int length);
}

/// <summary>Runs a variant inside MLA's forward, after the projections and the latent-cache writes.</summary>
public interface IAttentionSelector
{
    /// <summary>
    /// For the slots of a forward batch: caches the variant's per-token state of each slot (in
    /// caches[slot.Sequence].Extensions[layer] at slot.Position) and chooses, per slot, the cached positions it attends
    /// to. x [T, H] is the attention sublayer's normalized input, cq [T, Dq] MLA's normalized query latent (empty when
    /// the config has no q_lora_rank); cos/sin [T, Dr/2] the rotation of each slot's position.
    /// </summary>
    void Select(ComputeBackend be, AttentionWeights w, int layer, ReadOnlySpan<TokenSlot> slots, IReadOnlyList<KvCache> caches,
                ReadOnlySpan<float> x, ReadOnlySpan<float> cq, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, PositionSelection selection);
}

/// <summary>
/// The cached positions each slot of a batch attends to: all of 0..position (dense, the default) or a set of at most
/// <see cref="Capacity"/> positions in ascending order. MLA gathers the selected rows in decode (so beyond the selector
/// a token's attention costs O(selected), not O(context)) and masks the others in prefill.
/// </summary>
public sealed class PositionSelection
{
    private int[] _positions = [], _count = [];
    private ulong[] _bits = [];
    private int _slots, _words;

    /// <summary>Most positions one slot may select.</summary>
    public int Capacity { get; private set; }

    /// <summary>Slots of the batch.</summary>
    public int Slots => _slots;

    /// <summary>Sizes the selection for <paramref name="slots"/> slots of at most <paramref name="capacity"/> positions each and makes every slot dense.</summary>
    public void Reset(int slots, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(slots);
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _slots = slots;
        Capacity = capacity;
        if (_count.Length < slots)
            _count = new int[slots];
        if (_positions.Length < (long)slots * capacity)
            _positions = new int[checked(slots * capacity)];
        _count.AsSpan(0, slots).Fill(-1);
        _words = 0;
    }

    /// <summary>True when slot <paramref name="slot"/> attends to every position up to its own.</summary>
    public bool IsDense(int slot) => slot >= _slots || _count[slot] < 0;

    /// <summary>True when some slot attends to a subset.</summary>
    public bool AnySparse
    {
        get
        {
            for (int t = 0; t < _slots; t++)
            {
                if (_count[t] >= 0)
                    return true;
            }
            return false;
        }
    }

    /// <summary>The buffer of slot <paramref name="slot"/>'s positions (Capacity long); fill it, then <see cref="SetCount"/>.</summary>
    public Span<int> Buffer(int slot) => _positions.AsSpan(slot * Capacity, Capacity);

    /// <summary>Marks slot <paramref name="slot"/> as sparse with the first <paramref name="count"/> positions of its buffer (ascending).</summary>
    public void SetCount(int slot, int count)
    {
        if ((uint)count > (uint)Capacity)
            throw new ArgumentOutOfRangeException(nameof(count), $"{count} positions; the selection holds at most {Capacity}");
        _count[slot] = count;
    }

    /// <summary>The selected positions of a sparse slot, ascending.</summary>
    public ReadOnlySpan<int> Positions(int slot) =>
        _count[slot] < 0 ? throw new InvalidOperationException($"slot {slot} is dense") : _positions.AsSpan(slot * Capacity, _count[slot]);

    /// <summary>Builds a bitmap over positions 0..<paramref name="length"/>-1 for every sparse slot (for <see cref="IsSelected"/>).</summary>
    public void BuildMasks(int length)
    {
        _words = (length + 63) / 64;
        if (_bits.Length < (long)_slots * _words)
            _bits = new ulong[checked(_slots * _words)];
        for (int t = 0; t < _slots; t++)
        {
            if (_count[t] < 0)
                continue;
            Span<ulong> row = _bits.AsSpan(t * _words, _words);
            row.Clear();
            foreach (int p in Positions(t))
            {
                if ((uint)p < (uint)length)
                    row[p >> 6] |= 1UL << (p & 63);
            }
        }
    }

    /// <summary>Whether slot <paramref name="slot"/> attends to <paramref name="position"/> (after <see cref="BuildMasks"/>; dense slots: always).</summary>
    public bool IsSelected(int slot, int position) =>
        _count[slot] < 0 || (position >> 6 < _words && (_bits[slot * _words + (position >> 6)] & (1UL << (position & 63))) != 0);
}
