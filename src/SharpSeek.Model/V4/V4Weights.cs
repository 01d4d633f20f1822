// The weights of a DeepSeek-V4 model as views (docs/design.md seam 1): linear layers stay in the file's format,
// memory-mapped; norms, hyper-connection parameters, sinks and the compressors' position biases are small fp32 arrays.
using SharpSeek.Tensors;

namespace SharpSeek.Model.V4;

/// <summary>A compressor: gated pooling of <c>ratio</c> consecutive tokens' projections into one cached row.</summary>
public sealed record V4CompressorWeights
{
    /// <summary>wkv and wgate [coff·D, H] (coff = 2 for the overlapping ratio-4 windows, else 1).</summary>
    public required WeightMatrix Wkv { get; init; }
    public required WeightMatrix Wgate { get; init; }
    /// <summary>Learned position bias of the scores [ratio, coff·D].</summary>
    public required float[] Ape { get; init; }
    /// <summary>RMSNorm of the pooled row [D].</summary>
    public required float[] Norm { get; init; }
}

/// <summary>The lightning indexer of a ratio-4 layer: scores compressed rows for each query.</summary>
public sealed record V4IndexerWeights
{
    /// <summary>wq_b [In·Id, Dq] on the attention's normalized low-rank query.</summary>
    public required WeightMatrix WqB { get; init; }
    /// <summary>weights_proj [In, H]: per-head weights of the scores.</summary>
    public required WeightMatrix Proj { get; init; }
    public required V4CompressorWeights Compressor { get; init; }
}

/// <summary>One V4 decoder layer.</summary>
public sealed record V4LayerWeights
{
    public required float[] AttnNorm { get; init; }
    public required float[] FfnNorm { get; init; }
    /// <summary>Hyper-connection mixes before attention and before the FFN: fn [(2+Hc)·Hc, Hc·H], base, scale [3].</summary>
    public required WeightMatrix HcAttnFn { get; init; }
    public required float[] HcAttnBase { get; init; }
    public required float[] HcAttnScale { get; init; }
    public required WeightMatrix HcFfnFn { get; init; }
    public required float[] HcFfnBase { get; init; }
    public required float[] HcFfnScale { get; init; }

    public required WeightMatrix WqA { get; init; }
    public required float[] QNorm { get; init; }
    public required WeightMatrix WqB { get; init; }
    public required WeightMatrix Wkv { get; init; }
    public required float[] KvNorm { get; init; }
    /// <summary>wo_a [G·Ro, Nh·D/G]: group g's rows g·Ro.. multiply that group's heads.</summary>
    public required WeightMatrix WoA { get; init; }
    public required WeightMatrix WoB { get; init; }
    /// <summary>Learned attention sink per head [Nh] (a logit in the softmax's denominator only).</summary>
    public required float[] Sinks { get; init; }
    public V4CompressorWeights? Compressor { get; init; }
    public V4IndexerWeights? Indexer { get; init; }

    /// <summary>Router [E, H] (scores of every layer, hash layers included).</summary>
    public required WeightMatrix Gate { get; init; }
    /// <summary>Selection bias [E] (learned-routing layers).</summary>
    public float[]? Bias { get; init; }
    /// <summary>Token id → K experts [V·K] (hash layers).</summary>
    public int[]? Tid2Eid { get; init; }
    public required WeightMatrix[] ExpertGate { get; init; }
    public required WeightMatrix[] ExpertUp { get; init; }
    public required WeightMatrix[] ExpertDown { get; init; }
    public required WeightMatrix SharedGate { get; init; }
    public required WeightMatrix SharedUp { get; init; }
    public required WeightMatrix SharedDown { get; init; }
}

/// <summary>The multi-token-prediction layer: e_proj/h_proj of the next token's embedding and the hidden streams, then a block.</summary>
public sealed record V4MtpWeights
{
    /// <summary>eh_proj [H, 2H]: columns 0..H the normalized embedding, H..2H the normalized stream.</summary>
    public required WeightMatrix EhProj { get; init; }
    public required float[] ENorm { get; init; }
    public required float[] HNorm { get; init; }
    public required float[] HeadNorm { get; init; }
    public required V4LayerWeights Layer { get; init; }
}

/// <summary>All weights of a DeepSeek-V4 model.</summary>
public sealed class V4Weights : IDisposable
{
    private readonly IDisposable[] _owners;

    public V4Weights(V4Config config, WeightMatrix embed, WeightMatrix head, float[] norm, WeightMatrix hcHeadFn, float[] hcHeadBase,
                     float[] hcHeadScale, V4LayerWeights[] layers, V4MtpWeights[] mtp, params IDisposable[] owners)
    {
        Config = config;
        Embed = embed;
        Head = head;
        Norm = norm;
        HcHeadFn = hcHeadFn;
        HcHeadBase = hcHeadBase;
        HcHeadScale = hcHeadScale;
        Layers = layers;
        Mtp = mtp;
        _owners = owners;
    }

    /// <summary>Loads a deepseek4 .gguf file or a checkpoint directory in the released layout.</summary>
    public static V4Weights Load(string path) => Gguf.GgufModel.IsGgufPath(path) ? V4Gguf.Load(path) : V4Checkpoint.Load(path);

    public V4Config Config { get; }
    public WeightMatrix Embed { get; }
    public WeightMatrix Head { get; }
    public float[] Norm { get; }
    /// <summary>The final hyper-connection head [Hc, Hc·H], base [Hc], scale [1]: collapses the streams before the norm.</summary>
    public WeightMatrix HcHeadFn { get; }
    public float[] HcHeadBase { get; }
    public float[] HcHeadScale { get; }
    public V4LayerWeights[] Layers { get; }
    public V4MtpWeights[] Mtp { get; }

    /// <summary>Bytes of all weight views (what a full pass would read).</summary>
    public long ByteSize
    {
        get
        {
            long b = Embed.ByteSize + Head.ByteSize;
            foreach (V4LayerWeights l in Layers)
            {
                b += l.WqA.ByteSize + l.WqB.ByteSize + l.Wkv.ByteSize + l.WoA.ByteSize + l.WoB.ByteSize + l.Gate.ByteSize
                     + l.SharedGate.ByteSize + l.SharedUp.ByteSize + l.SharedDown.ByteSize + l.HcAttnFn.ByteSize + l.HcFfnFn.ByteSize;
                for (int e = 0; e < l.ExpertGate.Length; e++)
                    b += l.ExpertGate[e].ByteSize + l.ExpertUp[e].ByteSize + l.ExpertDown[e].ByteSize;
            }
            return b;
        }
    }

    public void Dispose()
    {
        foreach (IDisposable d in _owners)
            d.Dispose();
    }
}
