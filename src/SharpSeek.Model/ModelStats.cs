// Sizes and costs derived from a config alone (no weights): parameter counts from the architecture descriptor's
// shapes (transformers' convention: learnable weights of the main model, no MTP layer, no router bias buffer),
// activated parameters per token, KV-cache bytes (MLA latent vs the decompressed multi-head cache, docs/deepseek-architecture.md §8) and FLOPs per token.
using SharpSeek.Model.Architecture;

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
    /// <summary>Weights of the family's attention variant in the main layers (V3.2's indexers), included in the totals.</summary>
    public long AttentionVariantParameters { get; init; }
    /// <summary>What the attention variant caches per token, all main layers (V3.2: the indexer keys, fp8 + scales).</summary>
    public long VariantCacheBytesPerToken { get; init; }
    /// <summary>Main layers using MoE.</summary>
    public required int MoeLayers { get; init; }

    /// <summary>Computes the figures for a config.</summary>
    public static ModelStats Compute(ModelConfig c)
    {
        long H = c.HiddenSize, V = c.VocabSize, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim, Dv = c.VHeadDim;
        long R = c.KvLoraRank, E = c.NRoutedExperts, K = c.NumExpertsPerTok;
        ArchitectureDescriptor arch = c.GetArchitecture();

        // every learnable tensor of the descriptor, from the config's shapes; a routed expert's tensors count E times
        // in the total and K times in the active weights
        long total = 0, routed = 0, embedding = 0, vectors = 0, mtp = 0, variant = 0;
        int moeLayers = 0;
        foreach (TensorRef t in arch.Leading(c).Concat(arch.Trailing(c)))
        {
            if (!t.Spec.Learnable)
                continue;
            long n = t.Spec.Elements(c, t.Layer);
            total += n;
            if (t.Role is TensorRole.Embed or TensorRole.LmHead)
                embedding += n;
            if (t.Spec.IsVector)
                vectors += n;
        }
        long active = total;
        for (int l = 0; l < ArchitectureDescriptor.LayerCount(c); l++)
        {
            LayerInfo info = ArchitectureDescriptor.Layer(c, l);
            if (!info.Mtp && info.Moe)
                moeLayers++;
            foreach (TensorRef t in arch.LayerTensors(c, l, perExpert: false))
            {
                if (!t.Spec.Learnable)
                    continue;
                long n = t.Spec.Elements(c, l);
                bool expert = t.Spec.Scope == TensorScope.Expert;
                if (info.Mtp)
                {
                    // MTP modules as stored, their embedding/head copies included
                    mtp += expert ? E * n : n;
                    continue;
                }
                total += expert ? E * n : n;
                active += expert ? K * n : n;
                if (t.Spec.Extension)
                    variant += n;
                if (expert)
                    routed += E * n;
                if (t.Spec.IsVector)
                    vectors += n;
            }
        }

        // matmul FLOPs: the active weights but the embedding lookup and the norm vectors, plus the head when it is the
        // (tied) embedding
        long embed = arch[TensorRole.Embed].Elements(c);
        long matmulWeights = active - embed - vectors + (arch.Exists(TensorRole.LmHead, c) ? 0 : embed);
        return new ModelStats
        {
            ParametersTotal = total,
            ParametersActive = active,
            MtpParameters = mtp,
            RoutedExpertParameters = routed,
            EmbeddingParameters = embedding,
            KvCacheBytesPerToken = c.NumHiddenLayers * (R + Dr) * 2,
            AttentionVariantParameters = variant,
            VariantCacheBytesPerToken = c.NumHiddenLayers * (c.GetAttentionVariant()?.CacheBytesPerToken(CacheType.BF16) ?? 0),
            KvCacheBytesPerTokenMha = c.NumHiddenLayers * Nh * (Dn + Dr + Dv) * 2,
            FlopsPerToken = 2 * matmulWeights,
            AttentionFlopsPerContextToken = 2 * c.NumHiddenLayers * Nh * (Dn + Dr + Dv),
            MoeLayers = moeLayers,
        };
    }
}
