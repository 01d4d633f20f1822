// The weights of a DeepSeek model as typed views (WeightMatrix) plus fp32 vectors for norms and router bias.
// Names follow DeepSeek-V3 inference/model.py (WqA, WkvB, W1..W3); TensorNames maps them to the checkpoint.
using SharpSeek.Tensors;

namespace SharpSeek.Model;

/// <summary>MLA projections of one layer.</summary>
public sealed class AttentionWeights
{
    /// <summary>q_proj [Nh·(Dn+Dr), H] when q_lora_rank is null.</summary>
    public WeightMatrix? Wq { get; init; }
    /// <summary>q_a_proj [Dq, H].</summary>
    public WeightMatrix? WqA { get; init; }
    /// <summary>q_a_layernorm [Dq].</summary>
    public float[]? QNorm { get; init; }
    /// <summary>q_b_proj [Nh·(Dn+Dr), Dq].</summary>
    public WeightMatrix? WqB { get; init; }
    /// <summary>kv_a_proj_with_mqa [R+Dr, H].</summary>
    public required WeightMatrix WkvA { get; init; }
    /// <summary>kv_a_layernorm [R].</summary>
    public required float[] KvNorm { get; init; }
    /// <summary>kv_b_proj [Nh·(Dn+Dv), R]: per head Dn rows of W_UK then Dv rows of W_UV.</summary>
    public required WeightMatrix WkvB { get; init; }
    /// <summary>o_proj [H, Nh·Dv].</summary>
    public required WeightMatrix Wo { get; init; }
}

/// <summary>A SwiGLU MLP: W2(silu(W1 x) ⊙ W3 x).</summary>
public sealed class MlpWeights
{
    /// <summary>gate_proj [I, H].</summary>
    public required WeightMatrix W1 { get; init; }
    /// <summary>down_proj [H, I].</summary>
    public required WeightMatrix W2 { get; init; }
    /// <summary>up_proj [I, H].</summary>
    public required WeightMatrix W3 { get; init; }
}

/// <summary>Router, routed experts and shared experts of one MoE layer.</summary>
public sealed class MoeWeights
{
    /// <summary>Router weight [E, H].</summary>
    public required WeightMatrix Gate { get; init; }
    /// <summary>e_score_correction_bias [E] (noaux_tc only): used for selection, not for the weights.</summary>
    public float[]? Bias { get; init; }
    /// <summary>Routed experts [E].</summary>
    public required MlpWeights[] Experts { get; init; }
    /// <summary>Shared experts fused into one MLP of width Ie·n_shared (null when n_shared_experts = 0).</summary>
    public MlpWeights? Shared { get; init; }
}

/// <summary>One decoder layer.</summary>
public sealed class LayerWeights
{
    public required int Index { get; init; }
    /// <summary>input_layernorm [H].</summary>
    public required float[] AttnNorm { get; init; }
    public required AttentionWeights Attn { get; init; }
    /// <summary>post_attention_layernorm [H].</summary>
    public required float[] FfnNorm { get; init; }
    /// <summary>Dense MLP (layers before first_k_dense_replace), else null.</summary>
    public MlpWeights? Dense { get; init; }
    /// <summary>MoE block, else null.</summary>
    public MoeWeights? Moe { get; init; }
}

/// <summary>One multi-token-prediction module (spec §5), stored as layer L + k.</summary>
public sealed class MtpWeights
{
    /// <summary>enorm [H], applied to the embedding of the next token.</summary>
    public required float[] ENorm { get; init; }
    /// <summary>hnorm [H], applied to the main model's hidden state.</summary>
    public required float[] HNorm { get; init; }
    /// <summary>eh_proj [H, 2H]: columns 0..H-1 take the normalized embedding, H..2H-1 the normalized hidden state.</summary>
    public required WeightMatrix EhProj { get; init; }
    /// <summary>The module's decoder block (MLA + MoE).</summary>
    public required LayerWeights Layer { get; init; }
    /// <summary>shared_head.norm [H].</summary>
    public required float[] HeadNorm { get; init; }
    /// <summary>shared_head.head [V, H] (a copy of lm_head in released checkpoints).</summary>
    public required WeightMatrix Head { get; init; }
    /// <summary>The module's embedding copy [V, H].</summary>
    public required WeightMatrix Embed { get; init; }
}

/// <summary>All weights of a model. Disposing releases the memory maps they view.</summary>
public sealed class ModelWeights : IDisposable
{
    public required ModelConfig Config { get; init; }
    /// <summary>embed_tokens [V, H].</summary>
    public required WeightMatrix Embed { get; init; }
    public required LayerWeights[] Layers { get; init; }
    /// <summary>Final norm [H].</summary>
    public required float[] Norm { get; init; }
    /// <summary>lm_head [V, H] (the embedding when tied).</summary>
    public required WeightMatrix LmHead { get; init; }
    public MtpWeights[] Mtp { get; init; } = [];
    /// <summary>What keeps the views' memory alive (a memory-mapped checkpoint), disposed with the weights.</summary>
    public IDisposable? Owner { get; init; }

    public void Dispose() => Owner?.Dispose();

    /// <summary>Every weight with its checkpoint name (matrices and vectors), in checkpoint order.</summary>
    public IEnumerable<(string Name, WeightMatrix? Matrix, float[]? Vector)> Enumerate()
    {
        yield return (TensorNames.Embed, Embed, null);
        foreach (LayerWeights l in Layers)
        {
            foreach (var t in EnumerateLayer(l))
                yield return t;
        }
        yield return (TensorNames.Norm, null, Norm);
        if (!Config.TieWordEmbeddings)
            yield return (TensorNames.LmHead, LmHead, null);
        foreach (MtpWeights m in Mtp)
        {
            int i = m.Layer.Index;
            yield return (TensorNames.MtpEmbed(i), m.Embed, null);
            yield return (TensorNames.MtpENorm(i), null, m.ENorm);
            yield return (TensorNames.MtpHNorm(i), null, m.HNorm);
            yield return (TensorNames.MtpEhProj(i), m.EhProj, null);
            foreach (var t in EnumerateLayer(m.Layer))
                yield return t;
            yield return (TensorNames.MtpHeadNorm(i), null, m.HeadNorm);
            yield return (TensorNames.MtpHead(i), m.Head, null);
        }
    }

    private static IEnumerable<(string, WeightMatrix?, float[]?)> EnumerateLayer(LayerWeights l)
    {
        int i = l.Index;
        AttentionWeights a = l.Attn;
        yield return (TensorNames.AttnNorm(i), null, l.AttnNorm);
        if (a.Wq is not null) yield return (TensorNames.Wq(i), a.Wq, null);
        if (a.WqA is not null) yield return (TensorNames.WqA(i), a.WqA, null);
        if (a.QNorm is not null) yield return (TensorNames.QNorm(i), null, a.QNorm);
        if (a.WqB is not null) yield return (TensorNames.WqB(i), a.WqB, null);
        yield return (TensorNames.WkvA(i), a.WkvA, null);
        yield return (TensorNames.KvNorm(i), null, a.KvNorm);
        yield return (TensorNames.WkvB(i), a.WkvB, null);
        yield return (TensorNames.Wo(i), a.Wo, null);
        yield return (TensorNames.FfnNorm(i), null, l.FfnNorm);
        if (l.Dense is { } d)
        {
            foreach (var t in EnumerateMlp(i, TensorNames.Dense, d))
                yield return t;
        }
        if (l.Moe is { } moe)
        {
            yield return (TensorNames.Router(i), moe.Gate, null);
            if (moe.Bias is not null) yield return (TensorNames.RouterBias(i), null, moe.Bias);
            for (int e = 0; e < moe.Experts.Length; e++)
            {
                foreach (var t in EnumerateMlp(i, TensorNames.Expert(e), moe.Experts[e]))
                    yield return t;
            }
            if (moe.Shared is { } s)
            {
                foreach (var t in EnumerateMlp(i, TensorNames.Shared, s))
                    yield return t;
            }
        }
    }

    private static IEnumerable<(string, WeightMatrix?, float[]?)> EnumerateMlp(int l, string part, MlpWeights m)
    {
        yield return (TensorNames.Mlp(l, part, TensorNames.Gate), m.W1, null);
        yield return (TensorNames.Mlp(l, part, TensorNames.Up), m.W3, null);
        yield return (TensorNames.Mlp(l, part, TensorNames.Down), m.W2, null);
    }
}
