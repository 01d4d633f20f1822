// Batches of packed token windows for next-token training (llm.c dataloader.h, with shuffling).
// The shards are cut into windows of T+1 tokens that start every T tokens (window k of a shard covers
// [k*T, k*T+T]), so each token is an input once and the last token of a window is the first of the next.
// Windows never cross shards; a shard's last partial window is dropped. Every epoch visits all windows in
// the order of a permutation drawn by Fisher-Yates from SplitMix64 seeded with Mix(seed ^ Mix(epoch)), so the
// order depends on (seed, epoch) alone; a batch is B consecutive windows of it, and the last partial batch of an
// epoch is dropped. The state (epoch, batch) is all it takes to resume a run on exactly the same batches.
namespace SharpSeek.Data;

/// <summary>Options for <see cref="TokenDataLoader"/>.</summary>
public sealed record DataLoaderOptions
{
    /// <summary>Sequences per batch (B).</summary>
    public required int BatchSize { get; init; }

    /// <summary>Tokens per input sequence (T); each window holds T+1 tokens.</summary>
    public required int SequenceLength { get; init; }

    /// <summary>Seed of the shuffle.</summary>
    public ulong Seed { get; init; }

    /// <summary>False: windows in file order every epoch (for validation).</summary>
    public bool Shuffle { get; init; } = true;
}

/// <summary>Where a <see cref="TokenDataLoader"/> is: the next batch is number <see cref="Batch"/> of epoch <see cref="Epoch"/>.
/// <see cref="Seed"/>, <see cref="WindowCount"/> and <see cref="BatchSize"/> identify the data and order it belongs to.</summary>
public sealed record DataLoaderState(long Epoch, long Batch, ulong Seed, long WindowCount, int BatchSize);

/// <summary>Serves shuffled [B, T+1] batches of token windows from memory-mapped shards.</summary>
public sealed class TokenDataLoader : IDisposable
{
    private readonly TokenShard[] _shards;
    private readonly long[] _firstWindow;   // cumulative window counts: shard s holds windows [_firstWindow[s], _firstWindow[s+1])
    private readonly DataLoaderOptions _options;
    private long[] _order = [];
    private int[] _window = [];          // [B, T+1] scratch for NextBatch(inputs, targets)
    private long _orderEpoch = -1;

    private TokenDataLoader(TokenShard[] shards, DataLoaderOptions options)
    {
        _shards = shards;
        _options = options;
        _firstWindow = new long[shards.Length + 1];
        int T = options.SequenceLength;
        for (int s = 0; s < shards.Length; s++)
            _firstWindow[s + 1] = _firstWindow[s] + Math.Max(0, (shards[s].TokenCount - 1) / T);
        WindowCount = _firstWindow[^1];
        BatchesPerEpoch = WindowCount / options.BatchSize;
        VocabSize = shards[0].VocabSize;
        EosTokenId = shards[0].EosTokenId;
    }

    /// <summary>Sequences per batch (B).</summary>
    public int BatchSize => _options.BatchSize;

    /// <summary>Input tokens per sequence (T).</summary>
    public int SequenceLength => _options.SequenceLength;

    /// <summary>The shards' vocabulary size.</summary>
    public int VocabSize { get; }

    /// <summary>The shards' EOS id (-1: none).</summary>
    public int EosTokenId { get; }

    /// <summary>Windows of T+1 tokens across all shards.</summary>
    public long WindowCount { get; }

    /// <summary>Full batches in one epoch.</summary>
    public long BatchesPerEpoch { get; }

    /// <summary>Tokens in all shards.</summary>
    public long TokenCount => _shards.Sum(s => s.TokenCount);

    /// <summary>The epoch of the next batch.</summary>
    public long Epoch { get; private set; }

    /// <summary>The index within its epoch of the next batch.</summary>
    public long Batch { get; private set; }

    /// <summary>The position to save in a checkpoint.</summary>
    public DataLoaderState State => new(Epoch, Batch, _options.Seed, WindowCount, BatchSize);

    /// <summary>
    /// Opens the shards (all must have the same vocab size and EOS id) for batches of
    /// <see cref="DataLoaderOptions.BatchSize"/> x (<see cref="DataLoaderOptions.SequenceLength"/> + 1) tokens.
    /// </summary>
    public static TokenDataLoader Open(IReadOnlyList<string> shardPaths, DataLoaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(shardPaths);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1, nameof(options.BatchSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.SequenceLength, 1, nameof(options.SequenceLength));
        if (shardPaths.Count == 0)
            throw new ArgumentException("no shards given", nameof(shardPaths));
        var shards = new List<TokenShard>();
        try
        {
            foreach (string path in shardPaths)
            {
                TokenShard shard = TokenShard.Open(path);
                shards.Add(shard);
                if (shard.VocabSize != shards[0].VocabSize || shard.EosTokenId != shards[0].EosTokenId)
                    throw new InvalidDataException($"{path}: vocab size {shard.VocabSize} / EOS {shard.EosTokenId} differ from {shards[0].Path}'s {shards[0].VocabSize} / {shards[0].EosTokenId}");
            }
            var loader = new TokenDataLoader(shards.ToArray(), options);
            if (loader.BatchesPerEpoch == 0)
                throw new ArgumentException($"the shards hold {loader.WindowCount} windows of {options.SequenceLength + 1} tokens, fewer than one batch of {options.BatchSize}");
            return loader;
        }
        catch
        {
            foreach (TokenShard s in shards)
                s.Dispose();
            throw;
        }
    }

    /// <summary>Fills <paramref name="batch"/> [B, T+1] with the next batch and advances (to the next epoch after the last full batch).</summary>
    public void NextBatch(Span<int> batch)
    {
        int T = SequenceLength, B = BatchSize;
        if (batch.Length != B * (T + 1))
            throw new ArgumentException($"batch holds {batch.Length} tokens, expected B*(T+1) = {B}*{T + 1}", nameof(batch));
        long[] order = OrderOf(Epoch);
        for (int b = 0; b < B; b++)
            ReadWindow(order[Batch * B + b], batch.Slice(b * (T + 1), T + 1));
        if (++Batch == BatchesPerEpoch)
        {
            Epoch++;
            Batch = 0;
        }
    }

    /// <summary>Fills <paramref name="inputs"/> [B, T] and <paramref name="targets"/> [B, T] (inputs shifted by one) with the next batch.</summary>
    public void NextBatch(Span<int> inputs, Span<int> targets)
    {
        int T = SequenceLength, B = BatchSize;
        if (inputs.Length != B * T || targets.Length != B * T)
            throw new ArgumentException($"inputs and targets hold {inputs.Length} and {targets.Length} tokens, expected B*T = {B}*{T}");
        if (_window.Length != B * (T + 1))
            _window = new int[B * (T + 1)];
        NextBatch(_window);
        for (int b = 0; b < B; b++)
        {
            ReadOnlySpan<int> w = _window.AsSpan(b * (T + 1), T + 1);
            w[..T].CopyTo(inputs.Slice(b * T, T));
            w[1..].CopyTo(targets.Slice(b * T, T));
        }
    }

    /// <summary>Continues from a saved <see cref="State"/>; throws <see cref="ArgumentException"/> if it belongs to other data, seed or batch size.</summary>
    public void Restore(DataLoaderState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Seed != _options.Seed || state.WindowCount != WindowCount || state.BatchSize != BatchSize)
            throw new ArgumentException($"loader state (seed {state.Seed}, {state.WindowCount} windows, B={state.BatchSize}) does not match this loader (seed {_options.Seed}, {WindowCount} windows, B={BatchSize})", nameof(state));
        if (state.Epoch < 0 || state.Batch < 0 || state.Batch >= BatchesPerEpoch)
            throw new ArgumentException($"loader state epoch {state.Epoch}, batch {state.Batch} is outside 0..{BatchesPerEpoch - 1}", nameof(state));
        Epoch = state.Epoch;
        Batch = state.Batch;
    }

    private void ReadWindow(long window, Span<int> destination)
    {
        int s = Array.BinarySearch(_firstWindow, window);
        s = s >= 0 ? s : ~s - 1;
        while (_firstWindow[s + 1] <= window)
            s++; // skip shards too short to hold a window
        long start = (window - _firstWindow[s]) * SequenceLength;
        _shards[s].Read(start, destination);
    }

    private long[] OrderOf(long epoch)
    {
        if (_orderEpoch == epoch)
            return _order;
        if (_order.Length != WindowCount)
            _order = new long[WindowCount];
        for (long i = 0; i < WindowCount; i++)
            _order[i] = i;
        if (_options.Shuffle)
        {
            var rng = new SplitMix64(SplitMix64.Mix(_options.Seed ^ SplitMix64.Mix((ulong)epoch)));
            for (long i = WindowCount - 1; i > 0; i--)
            {
                long j = (long)rng.NextBelow((ulong)i + 1);
                (_order[i], _order[j]) = (_order[j], _order[i]);
            }
        }
        _orderEpoch = epoch;
        return _order;
    }

    /// <summary>Unmaps all shards.</summary>
    public void Dispose()
    {
        foreach (TokenShard s in _shards)
            s.Dispose();
    }
}
