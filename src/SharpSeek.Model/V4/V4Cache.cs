// What a DeepSeek-V4 sequence keeps between forward calls, per layer and exactly what its kind needs: the last W
// raw K=V rows (a ring), the compressed rows (ratio 4: one per 4 tokens, plus the indexer's keys; ratio 128: one per
// 128), and each compressor's unfinished window (its fp32 projections and scores) so decoding continues a block
// that prefill started.
namespace SharpSeek.Model.V4;

/// <summary>The pending window of one compressor: projections and scores of the tokens since its last emitted row.</summary>
public sealed class V4CompressorState
{
    public V4CompressorState(int ratio, int width)
    {
        Ratio = ratio;
        Width = width;
        Coff = ratio == 4 ? 2 : 1;
        // overlapping (ratio 4): rows [0, ratio) the previous complete window, rows [ratio, 2·ratio) the current one;
        // otherwise rows [0, ratio) the current window. Each row holds Coff·width values.
        Kv = new float[Coff * ratio * Coff * width];
        Score = new float[Coff * ratio * Coff * width];
    }

    public int Ratio { get; }
    public int Width { get; }
    public int Coff { get; }
    public float[] Kv { get; }
    public float[] Score { get; }
    /// <summary>Whether rows [0, ratio) hold a complete previous window.</summary>
    public bool HasPrevious { get; set; }

    /// <summary>First row of the current window.</summary>
    public int CurrentBase => (Coff - 1) * Ratio;

    public void CopyFrom(V4CompressorState o)
    {
        o.Kv.CopyTo(Kv, 0);
        o.Score.CopyTo(Score, 0);
        HasPrevious = o.HasPrevious;
    }
}

/// <summary>Cache of one layer.</summary>
public sealed class V4LayerCache
{
    public V4LayerCache(V4Config c, int layer)
    {
        Ratio = c.Ratio(layer);
        Window = c.SlidingWindow;
        Dim = c.HeadDim;
        Raw = new float[(long)Window * Dim];
        if (Ratio != 0)
            Compressor = new V4CompressorState(Ratio, Dim);
        if (Ratio == 4)
        {
            IndexDim = c.IndexHeadDim;
            IndexCompressor = new V4CompressorState(Ratio, IndexDim);
        }
    }

    public int Ratio { get; }
    public int Window { get; }
    public int Dim { get; }
    public int IndexDim { get; }
    /// <summary>Ring of the last <see cref="Window"/> raw rows [W, D]; position p lives in row p mod W.</summary>
    public float[] Raw { get; }
    /// <summary>Compressed rows [CompressedCount, D] (grown by doubling).</summary>
    public float[] Compressed { get; private set; } = [];
    /// <summary>Indexer keys of the compressed rows [CompressedCount, Id] (ratio-4 layers).</summary>
    public float[] IndexKeys { get; private set; } = [];
    public int CompressedCount { get; private set; }
    public V4CompressorState? Compressor { get; }
    public V4CompressorState? IndexCompressor { get; }

    /// <summary>Room for <paramref name="count"/> compressed rows (and their indexer keys).</summary>
    public void Reserve(int count)
    {
        if ((long)count * Dim > Compressed.Length)
        {
            int rows = Math.Max(count, Math.Max(16, 2 * (Compressed.Length / Math.Max(1, Dim))));
            var a = new float[(long)rows * Dim];
            Compressed.AsSpan(0, CompressedCount * Dim).CopyTo(a);
            Compressed = a;
            if (IndexDim > 0)
            {
                var k = new float[(long)rows * IndexDim];
                IndexKeys.AsSpan(0, CompressedCount * IndexDim).CopyTo(k);
                IndexKeys = k;
            }
        }
    }

    /// <summary>Marks <paramref name="rows"/> more compressed rows as written (their values already stored after CompressedCount).</summary>
    public void Commit(int rows) => CompressedCount += rows;

    /// <summary>Bytes held (fp32).</summary>
    public long Bytes => 4L * (Raw.Length + (long)CompressedCount * (Dim + IndexDim)
                               + (Compressor?.Kv.Length ?? 0) * 2L + (IndexCompressor?.Kv.Length ?? 0) * 2L);

    public void CopyFrom(V4LayerCache o)
    {
        o.Raw.CopyTo(Raw, 0);
        Reserve(o.CompressedCount);
        o.Compressed.AsSpan(0, o.CompressedCount * Dim).CopyTo(Compressed);
        if (IndexDim > 0)
            o.IndexKeys.AsSpan(0, o.CompressedCount * IndexDim).CopyTo(IndexKeys);
        CompressedCount = o.CompressedCount;
        Compressor?.CopyFrom(o.Compressor!);
        IndexCompressor?.CopyFrom(o.IndexCompressor!);
    }
}

/// <summary>The cache of one sequence: every main layer's, then every MTP layer's.</summary>
public sealed class V4Cache
{
    public V4Cache(V4Config c)
    {
        Config = c;
        Layers = new V4LayerCache[c.NumHiddenLayers + c.NumNextnPredictLayers];
        for (int l = 0; l < Layers.Length; l++)
            Layers[l] = new V4LayerCache(c, l);
    }

    public V4Config Config { get; }
    public V4LayerCache[] Layers { get; }

    /// <summary>Tokens the main layers have seen (the next position).</summary>
    public int Length { get; internal set; }

    /// <summary>Tokens the MTP layers have seen.</summary>
    public int MtpLength { get; internal set; }

    /// <summary>Bytes held by all layers.</summary>
    public long Bytes => Layers.Sum(l => l.Bytes);

    /// <summary>A copy (for branching a sequence: the cache cannot be truncated, as the ring forgets old rows).</summary>
    public V4Cache Clone()
    {
        var c = new V4Cache(Config) { Length = Length, MtpLength = MtpLength };
        for (int l = 0; l < Layers.Length; l++)
            c.Layers[l].CopyFrom(Layers[l]);
        return c;
    }
}
