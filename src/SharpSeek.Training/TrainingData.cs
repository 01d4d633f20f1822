// Where training batches come from: token shards through SharpSeek.Data's deterministic, resumable
// TokenDataLoader, or a plain text file tokenized once into a shard (paragraphs as documents, each followed by
// the tokenizer's EOS) that the same loader then serves.
using SharpSeek.Data;
using SharpSeek.Tokenizer;

namespace SharpSeek.Training;

/// <summary>Batches of inputs and next-token targets, with a position that checkpoints save and restore.</summary>
public interface ITrainingData : IDisposable
{
    /// <summary>Fills inputs [B·T] and targets [B·T] with the next batch.</summary>
    void NextBatch(Span<int> inputs, Span<int> targets);

    /// <summary>The position of the next batch, as JSON.</summary>
    string SaveState();

    /// <summary>Continues from a position written by <see cref="SaveState"/>.</summary>
    void RestoreState(string state);
}

/// <summary>Shuffled windows of token shards (<see cref="TokenDataLoader"/>).</summary>
public sealed class ShardData : ITrainingData
{
    private readonly TokenDataLoader _loader;

    public ShardData(IReadOnlyList<string> shards, int batchSize, int sequenceLength, ulong seed, int vocabSize)
    {
        _loader = TokenDataLoader.Open(shards, new DataLoaderOptions { BatchSize = batchSize, SequenceLength = sequenceLength, Seed = seed });
        if (_loader.VocabSize > vocabSize)
        {
            _loader.Dispose();
            throw new InvalidDataException($"{shards[0]}{(shards.Count > 1 ? $" (and {shards.Count - 1} more shards)" : "")}: the shards hold ids below {_loader.VocabSize}, more than the model's vocabulary of {vocabSize} (a tokenizer larger than the model's?)");
        }
    }

    /// <summary>Tokens in all shards.</summary>
    public long TokenCount => _loader.TokenCount;

    public void NextBatch(Span<int> inputs, Span<int> targets) => _loader.NextBatch(inputs, targets);

    public string SaveState()
    {
        DataLoaderState s = _loader.State;
        return System.Text.Json.JsonSerializer.Serialize(new[] { s.Epoch, s.Batch, (long)s.Seed, s.WindowCount, s.BatchSize });
    }

    public void RestoreState(string state)
    {
        long[] v = System.Text.Json.JsonSerializer.Deserialize<long[]>(state) ?? throw new InvalidDataException("empty data state");
        if (v.Length != 5)
            throw new InvalidDataException($"data state '{state}' has {v.Length} fields, expected 5");
        _loader.Restore(new DataLoaderState(v[0], v[1], (ulong)v[2], v[3], (int)v[4]));
    }

    public void Dispose() => _loader.Dispose();

    /// <summary>
    /// Tokenizes a text file into a shard at <paramref name="shardPath"/> (kept if it already exists, since
    /// tokenization is deterministic); paragraphs separated by blank lines are documents.
    /// </summary>
    public static void TokenizeText(string textFile, string tokenizerPath, string shardPath, int vocabSize)
    {
        if (File.Exists(shardPath))
            return;
        BpeTokenizer tok = Directory.Exists(tokenizerPath) ? BpeTokenizer.LoadFromDirectory(tokenizerPath) : BpeTokenizer.Load(tokenizerPath);
        int eos = tok.EosId ?? -1;
        string text = File.ReadAllText(textFile).Replace("\r\n", "\n", StringComparison.Ordinal);
        using TokenShardWriter w = TokenShardWriter.Create(shardPath, vocabSize, eos);
        foreach (string para in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            w.Append(tok.Encode(para));
            if (eos >= 0)
                w.Append([eos]);
        }
        w.Commit();
    }
}
