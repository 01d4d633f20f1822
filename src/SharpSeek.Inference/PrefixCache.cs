// Prefix reuse for the batch scheduler (SGLang's RadixAttention and vLLM's automatic prefix caching keep finished
// requests' KV blocks the same way): the latent caches of finished requests, each with the tokens it holds, most
// recently used first, under a byte budget; the least recently used are emptied when the budget is passed. A new
// request takes the entry sharing the longest prefix with its prompt: the entry itself when the prompt extends all
// of it (the next turn of a chat), else a copy of the shared rows (a common system prompt), so the entry stays for
// others. Emptied caches are kept (up to a count) and reused, so serving does not allocate cache blocks per request.
using SharpSeek.Model;

namespace SharpSeek.Inference;

/// <summary>Finished requests' latent caches by the tokens they hold, LRU under a byte budget. Not thread-safe.</summary>
internal sealed class PrefixCache
{
    private readonly Transformer _model;
    private readonly CacheType _type;
    private readonly long _budget;
    private readonly int _maxFree;
    private readonly LinkedList<Entry> _lru = [];   // most recently used first
    private readonly Stack<KvCache> _free = new();
    private float[] _row = [];

    public PrefixCache(Transformer model, CacheType type, long budgetBytes, int maxFree)
    {
        _model = model;
        _type = type;
        _budget = budgetBytes;
        _maxFree = maxFree;
    }

    /// <summary>Caches that exist (in use, held here, or free).</summary>
    public int Created { get; private set; }

    /// <summary>Entries held for reuse.</summary>
    public int Entries => _lru.Count;

    /// <summary>Empty caches kept for reuse.</summary>
    public int Free => _free.Count;

    /// <summary>Bytes allocated by the entries' caches.</summary>
    public long Bytes { get; private set; }

    /// <summary>A cache for <paramref name="prompt"/> and how many of its first tokens the cache already holds.</summary>
    public (KvCache Cache, int Common) Take(ReadOnlySpan<int> prompt)
    {
        LinkedListNode<Entry>? best = null;
        int bestCommon = 0;
        for (LinkedListNode<Entry>? n = _lru.First; n is not null; n = n.Next)
        {
            int common = prompt.CommonPrefixLength(n.Value.Tokens);
            if (common > bestCommon)
            {
                best = n;
                bestCommon = common;
            }
        }
        if (best is null)
            return (Empty(), 0);
        Entry e = best.Value;
        if (bestCommon >= e.Tokens.Length - 1)
        {
            // the prompt extends (nearly) all of the entry: hand the cache over
            _lru.Remove(best);
            Bytes -= e.Bytes;
            return (e.Cache, bestCommon);
        }
        _lru.Remove(best);
        _lru.AddFirst(best);
        KvCache copy = Empty();
        CopyPrefix(e.Cache, copy, bestCommon);
        return (copy, bestCommon);
    }

    /// <summary>Takes back a cache: as an entry holding <paramref name="tokens"/> (empty: nothing to keep).</summary>
    public void Return(int[] tokens, KvCache cache)
    {
        if (_budget == 0 || tokens.Length == 0)
        {
            Release(cache);
            return;
        }
        var e = new Entry(tokens, cache, Allocated(cache));
        _lru.AddFirst(e);
        Bytes += e.Bytes;
        while (Bytes > _budget && _lru.Last is { } last)
        {
            _lru.RemoveLast();
            Bytes -= last.Value.Bytes;
            Release(last.Value.Cache);
        }
    }

    private KvCache Empty()
    {
        if (_free.TryPop(out KvCache? c))
            return c;
        Created++;
        return _model.CreateCache(_type);
    }

    private void Release(KvCache cache)
    {
        cache.Clear();
        if (_free.Count < _maxFree)
            _free.Push(cache);
        else
            Created--; // left to the GC
    }

    // rows [0, count) of every main layer; exact for F32 and BF16 (bf16 -> f32 -> bf16), int8 rows are requantized
    private void CopyPrefix(KvCache from, KvCache to, int count)
    {
        for (int l = 0; l < from.MainLayers; l++)
        {
            LatentCache src = from.Layers[l], dst = to.Layers[l];
            if (_row.Length < src.Width)
                _row = new float[src.Width];
            for (int p = 0; p < count; p++)
            {
                src.Read(p, _row);
                dst.Write(p, _row);
            }
            // the attention variant's state (V3.2's indexer keys) goes with the latent rows
            if (from.Extensions[l] is { } ext)
                to.Extensions[l] = ext.Copy(count);
        }
    }

    private static long Allocated(KvCache cache)
    {
        long bytes = 0;
        foreach (LatentCache l in cache.Layers)
            bytes += l.AllocatedBytes;
        foreach (SharpSeek.Model.Layers.IVariantCache? e in cache.Extensions)
            bytes += e?.Bytes ?? 0;
        return bytes;
    }

    private sealed record Entry(int[] Tokens, KvCache Cache, long Bytes);
}
