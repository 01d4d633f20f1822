// The weights of a DeepSeek model as typed views (WeightMatrix) plus fp32 vectors for norms and router bias.
// Names follow DeepSeek-V3 inference/model.py (WqA, WkvB, W1..W3); Tensor(role) maps the architecture descriptor's
// roles to them, and the descriptor maps roles to checkpoint and GGUF names.
using SharpSeek.Model.Architecture;
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
    /// <summary>The tensors of the family's attention variant (V3.2's indexer), by role: the descriptor's extension roles.</summary>
    public ExtensionTensors Extensions { get; init; } = ExtensionTensors.Empty;
}

/// <summary>
/// The tensors of an attention variant in one layer, by role (descriptor roles with <see cref="TensorSpec.Extension"/>),
/// loaded without typed fields so that a variant adds no code to the loader.
/// </summary>
public sealed class ExtensionTensors
{
    private readonly Dictionary<TensorRole, WeightMatrix> _matrices;
    private readonly Dictionary<TensorRole, float[]> _vectors;

    public ExtensionTensors(Dictionary<TensorRole, WeightMatrix> matrices, Dictionary<TensorRole, float[]> vectors)
    {
        _matrices = matrices;
        _vectors = vectors;
    }

    /// <summary>No tensors.</summary>
    public static ExtensionTensors Empty { get; } = new([], []);

    /// <summary>True when the layer has no variant tensors.</summary>
    public bool IsEmpty => _matrices.Count == 0 && _vectors.Count == 0;

    /// <summary>The matrix of a role.</summary>
    public WeightMatrix Matrix(TensorRole role) =>
        _matrices.TryGetValue(role, out WeightMatrix? m) ? m : throw new InvalidOperationException($"the layer has no {role} matrix");

    /// <summary>The vector of a role.</summary>
    public float[] Vector(TensorRole role) =>
        _vectors.TryGetValue(role, out float[]? v) ? v : throw new InvalidOperationException($"the layer has no {role} vector");

    /// <summary>Every tensor (matrices, then vectors), to tell the variant's parameters apart (training).</summary>
    public IEnumerable<object> Tensors => _matrices.Values.Cast<object>().Concat(_vectors.Values);

    /// <summary>The matrix or vector of a role; nulls when absent.</summary>
    public (WeightMatrix? Matrix, float[]? Vector) Find(TensorRole role) =>
        (_matrices.GetValueOrDefault(role), _vectors.GetValueOrDefault(role));
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

/// <summary>One multi-token-prediction module (docs/deepseek-architecture.md §5), stored as layer L + k.</summary>
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
        foreach ((TensorRef t, WeightMatrix? m, float[]? v) in EnumerateTensors())
            yield return (t.HfName, m, v);
    }

    /// <summary>
    /// Every weight with its role, layer and expert (the config's architecture descriptor): the embedding, the
    /// decoder layers, the final norm and head, then the MTP modules (layers L..).
    /// </summary>
    public IEnumerable<(TensorRef Tensor, WeightMatrix? Matrix, float[]? Vector)> EnumerateTensors()
    {
        ArchitectureDescriptor arch = Config.GetArchitecture();
        foreach (TensorRef t in arch.Leading(Config))
            yield return With(t);
        foreach (LayerWeights l in Layers)
        {
            foreach (TensorRef t in arch.LayerTensors(Config, l.Index))
                yield return With(t);
        }
        foreach (TensorRef t in arch.Trailing(Config))
            yield return With(t);
        foreach (MtpWeights m in Mtp)
        {
            foreach (TensorRef t in arch.LayerTensors(Config, m.Layer.Index))
                yield return With(t);
        }
    }

    private (TensorRef, WeightMatrix?, float[]?) With(TensorRef t)
    {
        (WeightMatrix? m, float[]? v) = Tensor(t.Role, t.Layer, t.Expert);
        if (m is null && v is null)
            throw new InvalidOperationException($"the weights have no {t.Role} tensor for {t.HfName}, which their config has");
        return (t, m, v);
    }

    /// <summary>The weight of a role in layer <paramref name="layer"/> (MTP modules are layers L..) and expert; nulls when absent.</summary>
    public (WeightMatrix? Matrix, float[]? Vector) Tensor(TensorRole role, int layer = -1, int expert = -1)
    {
        MtpWeights? mtp = layer >= Layers.Length ? Mtp[layer - Layers.Length] : null;
        LayerWeights? l = layer < 0 ? null : mtp is not null ? mtp.Layer : Layers[layer];
        AttentionWeights? a = l?.Attn;
        return role switch
        {
            TensorRole.Embed => (Embed, null),
            TensorRole.FinalNorm => (null, Norm),
            TensorRole.LmHead => (LmHead, null),
            TensorRole.AttnNorm => (null, l?.AttnNorm),
            TensorRole.Wq => (a?.Wq, null),
            TensorRole.WqA => (a?.WqA, null),
            TensorRole.QNorm => (null, a?.QNorm),
            TensorRole.WqB => (a?.WqB, null),
            TensorRole.WkvA => (a?.WkvA, null),
            TensorRole.KvNorm => (null, a?.KvNorm),
            TensorRole.WkvB => (a?.WkvB, null),
            TensorRole.Wo => (a?.Wo, null),
            TensorRole.FfnNorm => (null, l?.FfnNorm),
            TensorRole.DenseGate => (l?.Dense?.W1, null),
            TensorRole.DenseUp => (l?.Dense?.W3, null),
            TensorRole.DenseDown => (l?.Dense?.W2, null),
            TensorRole.Router => (l?.Moe?.Gate, null),
            TensorRole.RouterBias => (null, l?.Moe?.Bias),
            TensorRole.ExpertGate => (l?.Moe?.Experts[expert].W1, null),
            TensorRole.ExpertUp => (l?.Moe?.Experts[expert].W3, null),
            TensorRole.ExpertDown => (l?.Moe?.Experts[expert].W2, null),
            TensorRole.SharedGate => (l?.Moe?.Shared?.W1, null),
            TensorRole.SharedUp => (l?.Moe?.Shared?.W3, null),
            TensorRole.SharedDown => (l?.Moe?.Shared?.W2, null),
            TensorRole.MtpEmbed => (mtp?.Embed, null),
            TensorRole.MtpENorm => (null, mtp?.ENorm),
            TensorRole.MtpHNorm => (null, mtp?.HNorm),
            TensorRole.MtpEhProj => (mtp?.EhProj, null),
            TensorRole.MtpHeadNorm => (null, mtp?.HeadNorm),
            TensorRole.MtpHead => (mtp?.Head, null),
            _ => a?.Extensions.Find(role) ?? (null, null),
        };
    }
}
