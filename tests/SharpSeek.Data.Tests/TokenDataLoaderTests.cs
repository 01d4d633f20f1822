// The data loader: windows and targets, deterministic shuffles, epochs, and exact resumption from a saved state.
namespace SharpSeek.Data.Tests;

public sealed class TokenDataLoaderTests
{
    // Two shards whose token at position i is (base + i) % vocab, so a window's start tells where it came from.
    private static string[] WriteShards(TempDirectory dir, params int[] lengths)
    {
        var paths = new List<string>();
        for (int s = 0; s < lengths.Length; s++)
        {
            string path = dir.File($"s{s}.tokens");
            using TokenShardWriter w = TokenShardWriter.Create(path, vocabSize: 1000, eosTokenId: 999);
            w.Append(Enumerable.Range(0, lengths[s]).Select(i => (s * 500 + i) % 999).ToArray());
            w.Commit();
            paths.Add(path);
        }
        return paths.ToArray();
    }

    private static List<int[]> Take(TokenDataLoader loader, int batches)
    {
        var result = new List<int[]>();
        for (int i = 0; i < batches; i++)
        {
            int[] batch = new int[loader.BatchSize * (loader.SequenceLength + 1)];
            loader.NextBatch(batch);
            result.Add(batch);
        }
        return result;
    }

    [Fact]
    public void WindowsOverlapByOneAndCoverEveryWindowOncePerEpoch()
    {
        using var dir = new TempDirectory();
        string[] shards = WriteShards(dir, 41, 3, 25); // T=4: 10 windows, 0 (too short), 6 windows
        using TokenDataLoader loader = TokenDataLoader.Open(shards, new DataLoaderOptions { BatchSize = 3, SequenceLength = 4, Seed = 7 });
        Assert.Equal(16, loader.WindowCount);
        Assert.Equal(5, loader.BatchesPerEpoch);

        var starts = new List<int>();
        foreach (int[] batch in Take(loader, 5))
        {
            for (int b = 0; b < 3; b++)
            {
                int[] w = batch[(b * 5)..(b * 5 + 5)];
                for (int t = 1; t < 5; t++)
                    Assert.Equal(w[t - 1] + 1, w[t]); // consecutive tokens of one shard
                starts.Add(w[0]);
            }
        }
        // 15 of the 16 window starts (the last partial batch is dropped), none twice.
        int[] all = Enumerable.Range(0, 10).Select(k => k * 4).Concat(Enumerable.Range(0, 6).Select(k => 1000 % 999 + k * 4)).ToArray();
        Assert.Equal(15, starts.Distinct().Count());
        Assert.All(starts, s => Assert.Contains(s, all));
        Assert.Equal((1L, 0L), (loader.Epoch, loader.Batch));
    }

    [Fact]
    public void InputsAndTargetsAreShiftedByOne()
    {
        using var dir = new TempDirectory();
        using TokenDataLoader loader = TokenDataLoader.Open(WriteShards(dir, 100), new DataLoaderOptions { BatchSize = 2, SequenceLength = 8, Shuffle = false });
        int[] x = new int[16], y = new int[16];
        loader.NextBatch(x, y);
        Assert.Equal(Enumerable.Range(0, 8).Concat(Enumerable.Range(8, 8)), x);
        Assert.Equal(Enumerable.Range(1, 8).Concat(Enumerable.Range(9, 8)), y);
        Assert.Throws<ArgumentException>(() => loader.NextBatch(new int[15], y));
    }

    [Fact]
    public void SameSeedSameBatchesOtherSeedOrEpochOtherOrder()
    {
        using var dir = new TempDirectory();
        string[] shards = WriteShards(dir, 500, 300);
        var options = new DataLoaderOptions { BatchSize = 4, SequenceLength = 16, Seed = 42 };
        using TokenDataLoader a = TokenDataLoader.Open(shards, options);
        using TokenDataLoader b = TokenDataLoader.Open(shards, options);
        using TokenDataLoader c = TokenDataLoader.Open(shards, options with { Seed = 43 });
        List<int[]> ba = Take(a, 24), bb = Take(b, 24), bc = Take(c, 24);
        Assert.Equal(ba, bb);
        Assert.NotEqual(ba, bc);
        Assert.Equal(12, a.BatchesPerEpoch);
        Assert.NotEqual(ba.Take(12), ba.Skip(12)); // each epoch draws a new order
        for (int epoch = 0; epoch < 2; epoch++)
        {
            // 48 of the 49 windows, each once: first tokens of windows are distinct within an epoch
            var firsts = ba.Skip(epoch * 12).Take(12).SelectMany(batch => Enumerable.Range(0, 4).Select(row => batch[row * 17])).ToList();
            Assert.Equal(48, firsts.Distinct().Count());
        }
    }

    [Fact]
    public void RestoredStateReplaysTheSameBatches()
    {
        using var dir = new TempDirectory();
        string[] shards = WriteShards(dir, 500, 300);
        var options = new DataLoaderOptions { BatchSize = 4, SequenceLength = 16, Seed = 3 };
        using TokenDataLoader run = TokenDataLoader.Open(shards, options);
        Take(run, 17); // into the second epoch
        DataLoaderState saved = run.State;
        Assert.Equal(new DataLoaderState(1, 5, 3, 49, 4), saved); // (499 / 16) + (299 / 16) windows
        List<int[]> expected = Take(run, 20);

        using TokenDataLoader resumed = TokenDataLoader.Open(shards, options);
        resumed.Restore(saved);
        Assert.Equal(expected, Take(resumed, 20));

        Assert.Throws<ArgumentException>(() => resumed.Restore(saved with { Seed = 4 }));
        Assert.Throws<ArgumentException>(() => resumed.Restore(saved with { Batch = 12 }));
        using TokenDataLoader other = TokenDataLoader.Open(shards, options with { BatchSize = 3 });
        Assert.Throws<ArgumentException>(() => other.Restore(saved));
    }

    [Fact]
    public void RejectsTooLittleDataAndMismatchedShards()
    {
        using var dir = new TempDirectory();
        string[] shards = WriteShards(dir, 20);
        Assert.Throws<ArgumentException>(() => TokenDataLoader.Open(shards, new DataLoaderOptions { BatchSize = 8, SequenceLength = 4 }));
        string other = dir.File("other.tokens");
        using (TokenShardWriter w = TokenShardWriter.Create(other, vocabSize: 500, eosTokenId: 1))
        {
            w.Append(new int[50]);
            w.Commit();
        }
        var e = Assert.Throws<InvalidDataException>(() => TokenDataLoader.Open([shards[0], other], new DataLoaderOptions { BatchSize = 1, SequenceLength = 4 }));
        Assert.Contains(other, e.Message);
    }

    [Fact]
    public void SplitMix64MatchesTheReferenceSequence()
    {
        // splitmix64.c with seed 1234567
        var rng = new SplitMix64(1234567);
        Assert.Equal(6457827717110365317UL, rng.Next());
        Assert.Equal(3203168211198807973UL, rng.Next());
        Assert.Equal(9817491932198370423UL, rng.Next());
        var counts = new int[3];
        for (int i = 0; i < 3000; i++)
            counts[rng.NextBelow(3)]++;
        Assert.All(counts, c => Assert.InRange(c, 900, 1100));
    }
}
