// Hugging Face checkpoint names <-> GGUF deepseek2 tensor names (spec §9; llama.cpp gguf-py constants.py
// MODEL_TENSORS[DEEPSEEK2] and tensor_mapping.py). TensorNames spells the checkpoint side; this file the GGUF side.
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

/// <summary>The deepseek2 GGUF tensor names.</summary>
public static class GgufNames
{
    public const string Embed = "token_embd.weight";
    public const string OutputNorm = "output_norm.weight";
    public const string Output = "output.weight";

    public static string Block(int l) => $"blk.{l}.";
    public static string AttnKB(int l) => Block(l) + "attn_k_b.weight";
    public static string AttnVB(int l) => Block(l) + "attn_v_b.weight";
    public static string AttnKvB(int l) => Block(l) + "attn_kv_b.weight";

    /// <summary>Stacked routed experts of layer l: proj is gate, up or down.</summary>
    public static string Experts(int l, string proj) => Block(l) + $"ffn_{proj}_exps.weight";

    // checkpoint suffix after "model.layers.{l}." -> GGUF suffix after "blk.{l}."
    private static readonly Dictionary<string, string> LayerSuffixes = new(StringComparer.Ordinal)
    {
        ["input_layernorm.weight"] = "attn_norm.weight",
        ["post_attention_layernorm.weight"] = "ffn_norm.weight",
        ["self_attn.q_proj.weight"] = "attn_q.weight",
        ["self_attn.q_a_proj.weight"] = "attn_q_a.weight",
        ["self_attn.q_a_layernorm.weight"] = "attn_q_a_norm.weight",
        ["self_attn.q_b_proj.weight"] = "attn_q_b.weight",
        ["self_attn.kv_a_proj_with_mqa.weight"] = "attn_kv_a_mqa.weight",
        ["self_attn.kv_a_layernorm.weight"] = "attn_kv_a_norm.weight",
        ["self_attn.o_proj.weight"] = "attn_output.weight",
        ["mlp.gate_proj.weight"] = "ffn_gate.weight",
        ["mlp.up_proj.weight"] = "ffn_up.weight",
        ["mlp.down_proj.weight"] = "ffn_down.weight",
        ["mlp.gate.weight"] = "ffn_gate_inp.weight",
        ["mlp.gate.e_score_correction_bias"] = "exp_probs_b.bias",
        ["mlp.shared_experts.gate_proj.weight"] = "ffn_gate_shexp.weight",
        ["mlp.shared_experts.up_proj.weight"] = "ffn_up_shexp.weight",
        ["mlp.shared_experts.down_proj.weight"] = "ffn_down_shexp.weight",
    };

    /// <summary>The GGUF location of a checkpoint tensor, or null for a name deepseek2 GGUF files do not hold (MTP layers).</summary>
    public static GgufLocation? Locate(string hfName)
    {
        switch (hfName)
        {
            case TensorNames.Embed: return new GgufLocation(GgufTensorKind.Plain, Embed, -1, -1);
            case TensorNames.Norm: return new GgufLocation(GgufTensorKind.Plain, OutputNorm, -1, -1);
            case TensorNames.LmHead: return new GgufLocation(GgufTensorKind.Plain, Output, -1, -1);
        }
        const string prefix = "model.layers.";
        if (!hfName.StartsWith(prefix, StringComparison.Ordinal))
            return null;
        int dot = hfName.IndexOf('.', prefix.Length);
        if (dot < 0 || !int.TryParse(hfName.AsSpan(prefix.Length, dot - prefix.Length), out int l) || l < 0)
            return null;
        string rest = hfName[(dot + 1)..];
        if (rest == "self_attn.kv_b_proj.weight")
            return new GgufLocation(GgufTensorKind.KvB, AttnKB(l), l, -1);
        if (LayerSuffixes.TryGetValue(rest, out string? suffix))
            return new GgufLocation(GgufTensorKind.Plain, Block(l) + suffix, l, -1);
        const string experts = "mlp.experts.";
        if (rest.StartsWith(experts, StringComparison.Ordinal))
        {
            int d2 = rest.IndexOf('.', experts.Length);
            if (d2 < 0 || !int.TryParse(rest.AsSpan(experts.Length, d2 - experts.Length), out int e) || e < 0)
                return null;
            string proj = rest[(d2 + 1)..] switch
            {
                "gate_proj.weight" => "gate",
                "up_proj.weight" => "up",
                "down_proj.weight" => "down",
                _ => "",
            };
            return proj.Length == 0 ? null : new GgufLocation(GgufTensorKind.Expert, Experts(l, proj), l, e);
        }
        return null;
    }
}
