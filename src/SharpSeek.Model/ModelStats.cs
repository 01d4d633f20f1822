// Sizes and costs derived from a config alone (no weights): parameter counts (transformers' convention:
// learnable weights of the main model, no MTP layer, no router bias buffer), activated parameters per token,
// KV-cache bytes (MLA latent vs the decompressed multi-head cache, spec §8) and FLOPs per token.
namespace SharpSeek.Model;

/// <summary>Parameter, memory and compute figures of a model configuration.</summary>
public sealed record ModelStats
{
    /// <summary>Learnable weights of the main model (no MTP, no router bias).</summary>
    public required long ParametersTotal { get; init; }
    /// <summary>Weights one token uses: everything but the unchosen routed experts (embedding and head counted in full).</summary>
    public required long ParametersActive { get; init; }
    /// <summary>Weights of the MTP modules, including their embedding/head copies as stored.</summary>
    public required long MtpParameters { get; init; }
    /// <summary>Routed-expert weights of all MoE layers.</summary>
    public required long RoutedExpertParameters { get; init; }
    /// <summary>Embedding plus output head.</summary>
    public required long EmbeddingParameters { get; init; }
    /// <summary>MLA latent cache per token, all main layers, bf16: L·(R+Dr)·2.</summary>
    public required long KvCacheBytesPerToken { get; init; }
    /// <summary>The equivalent decompressed cache per token (what transformers caches): L·Nh·(Dn+Dr+Dv)·2.</summary>
    public required long KvCacheBytesPerTokenMha { get; init; }
    /// <summary>Forward FLOPs per token in the weight matmuls (2 per multiply-add of the active weights, head included, embedding lookup excluded).</summary>
    public required long FlopsPerToken { get; init; }
    /// <summary>Extra forward FLOPs per token per token of context in attention (scores and weighted sum, naive form).</summary>
    public required long AttentionFlopsPerContextToken { get; init; }
    /// <summary>Main layers using MoE.</summary>
    public required int MoeLayers { get; init; }

    /// <summary>Computes the figures for a config.</summary>
    public static ModelStats Compute(ModelConfig c)
    {
        long H = c.HiddenSize, V = c.VocabSize, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim, Dv = c.VHeadDim;
        long R = c.KvLoraRank, Dq = c.QLoraRank, E = c.NRoutedExperts, K = c.NumExpertsPerTok, Ie = c.MoeIntermediateSize;
        long attn = (Dq > 0 ? H * Dq + Dq + Dq * Nh * (Dn + Dr) : H * Nh * (Dn + Dr))
                  + H * (R + Dr) + R + R * Nh * (Dn + Dv) + Nh * Dv * H;
        long norms = 2 * H;
        long expert = 3 * H * Ie;
        long shared = c.NSharedExperts * expert;
        long dense = 3 * H * c.IntermediateSize;
        long router = E * H;

        long total = 0, active = 0, routed = 0;
        int moeLayers = 0;
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            total += attn + norms;
            active += attn + norms;
            if (c.IsMoeLayer(l))
            {
                moeLayers++;
                total += router + E * expert + shared;
                active += router + K * expert + shared;
                routed += E * expert;
            }
            else
            {
                total += dense;
                active += dense;
            }
        }
        long embedding = V * H + (c.TieWordEmbeddings ? 0 : V * H);
        total += embedding + H;
        active += embedding + H;

        // MTP module as stored: its own embed/head copies, enorm, hnorm, eh_proj, a MoE block, shared_head.norm
        long mtpOne = 2 * V * H + 2 * H + 2 * H * H + attn + norms + router + E * expert + shared + H;
        long mtp = c.NumNextnPredictLayers * mtpOne;

        // matmul FLOPs: active weights minus the embedding lookup and the norm vectors
        long normVectors = c.NumHiddenLayers * (norms + R + (Dq > 0 ? Dq : 0)) + H;
        long matmulWeights = active - V * H - normVectors + (c.TieWordEmbeddings ? V * H : 0);
        return new ModelStats
        {
            ParametersTotal = total,
            ParametersActive = active,
            MtpParameters = mtp,
            RoutedExpertParameters = routed,
            EmbeddingParameters = embedding,
            KvCacheBytesPerToken = c.NumHiddenLayers * (R + Dr) * 2,
            KvCacheBytesPerTokenMha = c.NumHiddenLayers * Nh * (Dn + Dr + Dv) * 2,
            FlopsPerToken = 2 * matmulWeights,
            AttentionFlopsPerContextToken = 2 * c.NumHiddenLayers * Nh * (Dn + Dr + Dv),
            MoeLayers = moeLayers,
        };
    }
}
