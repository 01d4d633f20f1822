// Where a checkpoint tensor lives in a deepseek2 GGUF file (docs/deepseek-architecture.md §9); the architecture descriptor
// (Architecture/DeepSeek.cs) spells the names and answers ArchitectureDescriptor.Locate with these types.

namespace SharpSeek.Model.Gguf;

/// <summary>How a checkpoint tensor is stored in a deepseek2 GGUF file.</summary>
public enum GgufTensorKind
{
    /// <summary>One GGUF tensor with the checkpoint tensor's shape (dims reversed).</summary>
    Plain,
    /// <summary>Slice <c>Expert</c> of a stacked expert tensor ffn_{gate,up,down}_exps {cols, rows, E}.</summary>
    Expert,
    /// <summary>kv_b_proj: split into attn_k_b {Dn, R, Nh} (K part transposed) and attn_v_b {R, Dv, Nh}, or a legacy attn_kv_b.</summary>
    KvB,
}

/// <summary>Where a checkpoint tensor lives in a GGUF file.</summary>
public readonly record struct GgufLocation(GgufTensorKind Kind, string Name, int Layer, int Expert);
