// Sizes derived from a DeepSeek-V4 config alone: parameters (total, active per token, MTP) from the tensors the
// model holds, and what the KV cache stores per token at a given context for each layer kind, next to what V3's MLA
// would store for the same number of layers.
namespace SharpSeek.Model.V4;

/// <summary>Parameter and cache figures of a DeepSeek-V4 configuration.</summary>
public sealed record V4Stats
{
    /// <summary>Weights of the main model (no MTP layers; the hash layers' token→expert tables are not learned and not counted).</summary>
    public required long ParametersTotal { get; init; }
    /// <summary>Weights one token multiplies: everything but the unchosen routed experts and the embedding table (a lookup reads one row).</summary>
    public required long ParametersActive { get; init; }
    /// <summary>The embedding table (counted in the total, not in the active weights).</summary>
    public required long EmbeddingParameters { get; init; }
    /// <summary>Routed-expert weights of the main layers.</summary>
    public required long RoutedExpertParameters { get; init; }
    /// <summary>Weights of the MTP layers as DeepSeek's checkpoint stores them (their embedding and head are the model's).</summary>
    public required long MtpParameters { get; init; }
    /// <summary>Main layers by kind: sliding window only, compressed sparse (ratio 4), heavily compressed (ratio 128).</summary>
    public required int WindowLayers { get; init; }
    public required int CsaLayers { get; init; }
    public required int HcaLayers { get; init; }

    /// <summary>Computes the figures for a config.</summary>
    public static V4Stats Compute(V4Config c)
    {
        long H = c.HiddenSize, V = c.VocabSize, E = c.NRoutedExperts, K = c.NumExpertsPerTok;
        long expert = 3 * H * c.MoeIntermediateSize;
        long total = 0, active = 0, routed = 0, mtp = 0;
        int window = 0, csa = 0, hca = 0;
        for (int l = 0; l < c.NumHiddenLayers + c.NumNextnPredictLayers; l++)
        {
            long dense = LayerDenseParameters(c, l);
            if (l >= c.NumHiddenLayers)
            {
                // e_proj and h_proj [H, H], enorm, hnorm, the shared head's norm, its own hyper-connection head
                mtp += dense + E * expert + 2 * H * H + 3 * H + HcHeadParameters(c);
                continue;
            }
            total += dense + E * expert;
            active += dense + K * expert;
            routed += E * expert;
            switch (c.Ratio(l))
            {
                case 0: window++; break;
                case 4: csa++; break;
                default: hca++; break;
            }
        }
        long embed = V * H;
        long global = embed + V * H + H + HcHeadParameters(c); // embedding, head, final norm, hyper-connection head
        return new V4Stats
        {
            ParametersTotal = total + global,
            ParametersActive = active + global - embed,
            EmbeddingParameters = embed,
            RoutedExpertParameters = routed,
            MtpParameters = mtp,
            WindowLayers = window,
            CsaLayers = csa,
            HcaLayers = hca,
        };
    }

    /// <summary>Everything of layer <paramref name="l"/> but its routed experts.</summary>
    public static long LayerDenseParameters(V4Config c, int l)
    {
        long H = c.HiddenSize, Nh = c.NumAttentionHeads, D = c.HeadDim, Dq = c.QLoraRank, G = c.OGroups, Ro = c.OLoraRank;
        long In = c.IndexHeads, Id = c.IndexHeadDim, E = c.NRoutedExperts, Hc = c.HcMult, mix = c.HcMixDim;
        int ratio = c.Ratio(l);
        // wq_a, q_norm, wq_b, wkv, kv_norm, wo_a [G·Ro, Nh·D/G], wo_b, sinks
        long attn = H * Dq + Dq + Dq * Nh * D + H * D + D + Nh * D * Ro + G * Ro * H + Nh;
        if (ratio != 0)
        {
            long coff = ratio == 4 ? 2 : 1; // ratio 4 compresses overlapping windows: two halves of each row
            attn += 2 * H * coff * D + ratio * coff * D + D; // compressor wkv, wgate, ape, norm
        }
        if (ratio == 4)
            attn += Dq * In * Id + H * In + 2 * H * 2 * Id + 4 * 2 * Id + Id; // indexer wq_b, weights_proj, its compressor
        long hc = 2 * (mix * Hc * H + mix + 3); // hc_attn and hc_ffn: fn, base, scale
        long norms = 2 * H;
        long router = E * H + (c.IsHashLayer(l) ? 0 : E); // learned scores; non-hash layers add the selection bias
        long shared = c.NSharedExperts * 3 * H * c.MoeIntermediateSize;
        return attn + hc + norms + router + shared;
    }

    private static long HcHeadParameters(V4Config c) => (long)c.HcMult * c.HcMult * c.HiddenSize + c.HcMult + 1;

    /// <summary>
    /// Bytes the cache holds per token of a <paramref name="context"/>-token sequence, all main layers, with
    /// <paramref name="bytesPerValue"/> per cached value: every layer keeps its last W raw K=V rows; ratio-4 layers add
    /// one D-wide compressed row and one Id-wide indexer key per 4 tokens, ratio-128 layers one D-wide row per 128, and
    /// each compressor keeps the projections of its unfinished window (fp32).
    /// </summary>
    public static double CacheBytesPerToken(V4Config c, long context, int bytesPerValue = 2)
    {
        double bytes = 0;
        long D = c.HeadDim, Id = c.IndexHeadDim, W = c.SlidingWindow;
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            int ratio = c.Ratio(l);
            bytes += Math.Min(W, context) * D * bytesPerValue;
            if (ratio == 4)
                bytes += (context / 4) * (D + Id) * bytesPerValue + 2 * (2 * 4) * 2 * (D + Id) * 4.0; // kv and score of 8 rows, 2D (and 2Id) wide, fp32
            else if (ratio == 128)
                bytes += (context / 128) * D * bytesPerValue + 2 * 128 * D * 4.0;
        }
        return bytes / context;
    }
}
