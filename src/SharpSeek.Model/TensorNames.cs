// Hugging Face checkpoint tensor names (spec §2). The only place that spells them.
namespace SharpSeek.Model;

/// <summary>Checkpoint names of every weight.</summary>
public static class TensorNames
{
    public const string Embed = "model.embed_tokens.weight";
    public const string Norm = "model.norm.weight";
    public const string LmHead = "lm_head.weight";

    public static string Layer(int l) => $"model.layers.{l}.";

    public static string AttnNorm(int l) => Layer(l) + "input_layernorm.weight";
    public static string FfnNorm(int l) => Layer(l) + "post_attention_layernorm.weight";
    public static string Wq(int l) => Layer(l) + "self_attn.q_proj.weight";
    public static string WqA(int l) => Layer(l) + "self_attn.q_a_proj.weight";
    public static string QNorm(int l) => Layer(l) + "self_attn.q_a_layernorm.weight";
    public static string WqB(int l) => Layer(l) + "self_attn.q_b_proj.weight";
    public static string WkvA(int l) => Layer(l) + "self_attn.kv_a_proj_with_mqa.weight";
    public static string KvNorm(int l) => Layer(l) + "self_attn.kv_a_layernorm.weight";
    public static string WkvB(int l) => Layer(l) + "self_attn.kv_b_proj.weight";
    public static string Wo(int l) => Layer(l) + "self_attn.o_proj.weight";

    /// <summary>Dense MLP (prefix "mlp."), shared experts ("mlp.shared_experts.") or routed expert e ("mlp.experts.{e}.").</summary>
    public static string Mlp(int l, string part, string proj) => Layer(l) + part + proj + ".weight";
    public const string Dense = "mlp.";
    public const string Shared = "mlp.shared_experts.";
    public static string Expert(int e) => $"mlp.experts.{e}.";
    public const string Gate = "gate_proj";
    public const string Up = "up_proj";
    public const string Down = "down_proj";

    public static string Router(int l) => Layer(l) + "mlp.gate.weight";
    public static string RouterBias(int l) => Layer(l) + "mlp.gate.e_score_correction_bias";

    // MTP module k is stored as layer L + k.
    public static string MtpEmbed(int l) => Layer(l) + "embed_tokens.weight";
    public static string MtpENorm(int l) => Layer(l) + "enorm.weight";
    public static string MtpHNorm(int l) => Layer(l) + "hnorm.weight";
    public static string MtpEhProj(int l) => Layer(l) + "eh_proj.weight";
    public static string MtpHeadNorm(int l) => Layer(l) + "shared_head.norm.weight";
    public static string MtpHead(int l) => Layer(l) + "shared_head.head.weight";

    /// <summary>Suffix of an FP8 weight's block-scale sibling.</summary>
    public const string ScaleSuffix = "_scale_inv";
}
