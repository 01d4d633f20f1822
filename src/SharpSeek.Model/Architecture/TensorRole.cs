// The vocabulary of an architecture descriptor: what a weight does (its role), how it is indexed, and the rules that
// pick its in-memory format when a model is loaded converted. Roles are DeepSeek's (inference/model.py names in
// PascalCase, as ModelWeights); a later family (V3.2's indexer, V4's compressor and hyper-connections) appends roles.
using SharpSeek.Model.Gguf;

namespace SharpSeek.Model.Architecture;

/// <summary>What a weight tensor does in the model, independent of the name a file format gives it.</summary>
public enum TensorRole
{
    /// <summary>embed_tokens [V, H].</summary>
    Embed,
    /// <summary>The final norm [H].</summary>
    FinalNorm,
    /// <summary>lm_head [V, H] (absent when tied to the embedding).</summary>
    LmHead,
    /// <summary>input_layernorm [H].</summary>
    AttnNorm,
    /// <summary>q_proj [Nh·(Dn+Dr), H] (no query compression).</summary>
    Wq,
    /// <summary>q_a_proj [Dq, H].</summary>
    WqA,
    /// <summary>q_a_layernorm [Dq].</summary>
    QNorm,
    /// <summary>q_b_proj [Nh·(Dn+Dr), Dq].</summary>
    WqB,
    /// <summary>kv_a_proj_with_mqa [R+Dr, H].</summary>
    WkvA,
    /// <summary>kv_a_layernorm [R].</summary>
    KvNorm,
    /// <summary>kv_b_proj [Nh·(Dn+Dv), R].</summary>
    WkvB,
    /// <summary>o_proj [H, Nh·Dv].</summary>
    Wo,
    /// <summary>post_attention_layernorm [H].</summary>
    FfnNorm,
    /// <summary>Dense MLP gate_proj (W1) [I, H].</summary>
    DenseGate,
    /// <summary>Dense MLP up_proj (W3) [I, H].</summary>
    DenseUp,
    /// <summary>Dense MLP down_proj (W2) [H, I].</summary>
    DenseDown,
    /// <summary>The router's weight [E, H].</summary>
    Router,
    /// <summary>The router's e_score_correction_bias [E] (noaux_tc): a buffer, not a learnable weight.</summary>
    RouterBias,
    /// <summary>Routed expert e's gate_proj [Ie, H].</summary>
    ExpertGate,
    /// <summary>Routed expert e's up_proj [Ie, H].</summary>
    ExpertUp,
    /// <summary>Routed expert e's down_proj [H, Ie].</summary>
    ExpertDown,
    /// <summary>Shared experts' gate_proj [Ie·Ns, H].</summary>
    SharedGate,
    /// <summary>Shared experts' up_proj [Ie·Ns, H].</summary>
    SharedUp,
    /// <summary>Shared experts' down_proj [H, Ie·Ns].</summary>
    SharedDown,
    /// <summary>An MTP module's embedding copy [V, H].</summary>
    MtpEmbed,
    /// <summary>An MTP module's enorm [H].</summary>
    MtpENorm,
    /// <summary>An MTP module's hnorm [H].</summary>
    MtpHNorm,
    /// <summary>An MTP module's eh_proj [H, 2H].</summary>
    MtpEhProj,
    /// <summary>An MTP module's shared_head.norm [H].</summary>
    MtpHeadNorm,
    /// <summary>An MTP module's shared_head.head [V, H].</summary>
    MtpHead,
    /// <summary>V3.2 indexer wq_b [Hi·Di, Dq]: its queries from MLA's query latent.</summary>
    IndexerWqB,
    /// <summary>V3.2 indexer wk [Di, H]: its key.</summary>
    IndexerWk,
    /// <summary>V3.2 indexer k_norm weight [Di] (a LayerNorm).</summary>
    IndexerKNorm,
    /// <summary>V3.2 indexer k_norm bias [Di].</summary>
    IndexerKNormBias,
    /// <summary>V3.2 indexer weights_proj [Hi, H]: the per-head weights of the index score.</summary>
    IndexerWeights,
}

/// <summary>How a tensor's names are indexed.</summary>
public enum TensorScope
{
    /// <summary>One per model.</summary>
    Model,
    /// <summary>One per decoder layer (MTP modules are layers L..L+n-1).</summary>
    Layer,
    /// <summary>One per routed expert of a layer.</summary>
    Expert,
}

/// <summary>The in-memory format a matrix gets when a model is loaded as another format (<see cref="LoadOptions.Dtype"/>).</summary>
public enum LoadRule
{
    /// <summary>The requested format.</summary>
    Linear,
    /// <summary>Router and embeddings (read one row per token): fp32 or bf16 when asked for, else bf16.</summary>
    KeepBf16,
    /// <summary>kv_b_proj, read band by band on every decoded token: Q8_0 for the Q8_0 and Q4_K targets, else bf16 (fp32/bf16 as asked).</summary>
    KvB,
    /// <summary>Output heads: Q8_0 when the target is Q4_K (llama.cpp's Q4_K_M keeps its head at higher precision).</summary>
    OutputHead,
}

/// <summary>Where a layer stands: its index, whether it is a MoE layer and whether it is an MTP module.</summary>
public readonly record struct LayerInfo(int Index, bool Moe, bool Mtp)
{
    /// <summary>The "layer" of model-level tensors.</summary>
    public static LayerInfo None => new(-1, false, false);
}

/// <summary>How a tensor is stored in a GGUF file of the architecture.</summary>
public sealed class GgufForm
{
    private readonly NameTemplate _name, _second, _legacy;

    /// <param name="kind">Plain, a slice of a stacked expert tensor, or kv_b_proj split in two.</param>
    /// <param name="name">The GGUF name template ({l} = layer); for <see cref="GgufTensorKind.KvB"/> the K half (attn_k_b).</param>
    /// <param name="second">The V half (attn_v_b) of a split kv_b_proj.</param>
    /// <param name="legacy">The unsplit kv_b_proj older files hold (attn_kv_b).</param>
    public GgufForm(GgufTensorKind kind, string name, string? second = null, string? legacy = null)
    {
        Kind = kind;
        Name = name;
        Second = second;
        Legacy = legacy;
        _name = new NameTemplate(name);
        _second = new NameTemplate(second ?? "");
        _legacy = new NameTemplate(legacy ?? "");
    }

    public GgufTensorKind Kind { get; }
    public string Name { get; }
    public string? Second { get; }
    public string? Legacy { get; }

    /// <summary>The name in layer <paramref name="layer"/> (-1 for model-level tensors).</summary>
    public string NameOf(int layer) => _name.Format(layer, -1);

    /// <summary>The V half's name of a split kv_b_proj in a layer.</summary>
    public string SecondOf(int layer) => Second is null ? throw new InvalidOperationException($"{Name} is not split") : _second.Format(layer, -1);

    /// <summary>The legacy unsplit name of kv_b_proj in a layer.</summary>
    public string LegacyOf(int layer) => Legacy is null ? throw new InvalidOperationException($"{Name} has no legacy form") : _legacy.Format(layer, -1);
}
