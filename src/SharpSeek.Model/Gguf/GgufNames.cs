// Hugging Face checkpoint names <-> GGUF deepseek2 tensor names (docs/deepseek-architecture.md §9), as the architecture descriptor
// (Architecture/DeepSeek.cs) spells them; kept for callers that name single GGUF tensors.
using SharpSeek.Model.Architecture;

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

/// <summary>The deepseek2 GGUF tensor names (a facade over <see cref="ArchitectureDescriptor.DeepSeekV3"/>).</summary>
public static class GgufNames
{
    private static ArchitectureDescriptor A => ArchitectureDescriptor.DeepSeekV3;

    public static string Embed => A.GgufName(TensorRole.Embed);
    public static string OutputNorm => A.GgufName(TensorRole.FinalNorm);
    public static string Output => A.GgufName(TensorRole.LmHead);

    public static string AttnKB(int l) => A.GgufName(TensorRole.WkvB, l);
    public static string AttnVB(int l) => A[TensorRole.WkvB].Gguf!.SecondOf(l);
    public static string AttnKvB(int l) => A[TensorRole.WkvB].Gguf!.LegacyOf(l);

    /// <summary>The GGUF location of a checkpoint tensor, or null for a name deepseek2 GGUF files do not hold (MTP layers).</summary>
    public static GgufLocation? Locate(string hfName) => A.Locate(hfName);
}
