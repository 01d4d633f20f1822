// The DeepSeek-V2 and V3 families (docs/deepseek-architecture.md §2 checkpoint names, §9 GGUF deepseek2 names as llama.cpp gguf-py
// constants.py MODEL_TENSORS[DEEPSEEK2] and tensor_mapping.py spell them). The only place that spells a tensor name.
// V2 and V3 share every name and shape rule (presence follows the config: q_lora_rank, noaux_tc, n_shared_experts,
// MTP modules); they are two descriptors so that a later family (V3.2: V3 plus an indexer per layer) derives from
// the one it extends.
using SharpSeek.Model.Gguf;

namespace SharpSeek.Model.Architecture;

/// <summary>Builds the DeepSeek descriptors.</summary>
internal static class DeepSeek
{
    private const string L = "model.layers.{l}.";
    private const string B = "blk.{l}.";

    public static ArchitectureDescriptor V2() =>
        new("deepseek-v2", ["deepseek_v2"], GgufModel.Architecture, L, "_scale_inv", [".rotary_emb.inv_freq"], Tensors());

    public static ArchitectureDescriptor V3() =>
        new("deepseek-v3", ["deepseek_v3", "kimi_k2"], GgufModel.Architecture, L, "_scale_inv", [".rotary_emb.inv_freq"], Tensors());

    /// <summary>Every family, oldest first (a GGUF architecture is read by the latest family that writes it).</summary>
    public static ArchitectureDescriptor[] Families(ArchitectureDescriptor v2, ArchitectureDescriptor v3) => [v2, v3, V32()];

    /// <summary>DeepSeek-V3.2 (-Exp): V3 plus a lightning indexer in every layer (Layers/Indexer.cs); GGUF deepseek32.</summary>
    public static ArchitectureDescriptor V32() =>
        new("deepseek-v3.2", ["deepseek_v32"], "deepseek32", L, "_scale_inv", [".rotary_emb.inv_freq"], Tensors(IndexerTensors()))
        {
            HfArchitecture = "DeepseekV32ForCausalLM",
            Attention = c => new Layers.Indexer(c),
            GgufKeys = c =>
            [
                ("attention.indexer.head_count", (uint)c.Indexer!.Heads),
                ("attention.indexer.key_length", (uint)c.Indexer.HeadDim),
                ("attention.indexer.top_k", (uint)c.Indexer.TopK),
            ],
            ReadGgufKeys = (c, key) => c with
            {
                Indexer = new IndexerConfig(key("attention.indexer.head_count"), key("attention.indexer.key_length"), key("attention.indexer.top_k")),
            },
        };

    // the indexer's tensors (transformers' deepseek_v32 and DeepSeek's checkpoint names; llama.cpp's deepseek32 GGUF names)
    private static TensorSpec[] IndexerTensors()
    {
        const TensorScope Ly = TensorScope.Layer;
        static long Hi(ModelConfig c) => c.Indexer!.Heads;
        static long Di(ModelConfig c) => c.Indexer!.HeadDim;
        return
        [
            Matrix(TensorRole.IndexerWqB, Ly, L + "self_attn.indexer.wq_b.weight", Plain(B + "indexer.attn_q_b.weight"), Always,
                   c => Hi(c) * Di(c), Dq) with { Extension = true },
            Matrix(TensorRole.IndexerWk, Ly, L + "self_attn.indexer.wk.weight", Plain(B + "indexer.attn_k.weight"), Always, Di, H)
                with { Extension = true },
            Vector(TensorRole.IndexerKNorm, Ly, L + "self_attn.indexer.k_norm.weight", Plain(B + "indexer.k_norm.weight"), Always, Di)
                with { Extension = true },
            Vector(TensorRole.IndexerKNormBias, Ly, L + "self_attn.indexer.k_norm.bias", Plain(B + "indexer.k_norm.bias"), Always, Di)
                with { Extension = true },
            // stored bf16 and used in fp32 by the reference (weights_proj): kept bf16 when loading converted
            Matrix(TensorRole.IndexerWeights, Ly, L + "self_attn.indexer.weights_proj.weight", Plain(B + "indexer.proj.weight"), Always,
                   Hi, H, LoadRule.KeepBf16) with { Extension = true },
        ];
    }

    private static bool Always(ModelConfig c, LayerInfo l) => true;
    private static bool QLora(ModelConfig c, LayerInfo l) => c.QLoraRank > 0;
    private static bool Dense(ModelConfig c, LayerInfo l) => !l.Moe;
    private static bool Moe(ModelConfig c, LayerInfo l) => l.Moe;
    private static bool Shared(ModelConfig c, LayerInfo l) => l.Moe && c.NSharedExperts > 0;
    private static bool Mtp(ModelConfig c, LayerInfo l) => l.Mtp;

    private static GgufForm Plain(string name) => new(GgufTensorKind.Plain, name);
    private static GgufForm Stacked(string name) => new(GgufTensorKind.Expert, name);

    private static TensorSpec Matrix(TensorRole role, TensorScope scope, string hf, GgufForm? gguf, Func<ModelConfig, LayerInfo, bool> exists,
                                     Func<ModelConfig, long> rows, Func<ModelConfig, long> cols,
                                     LoadRule load = LoadRule.Linear, GgufExport.TensorRole? ggufType = GgufExport.TensorRole.Other) => new()
    {
        Role = role,
        Scope = scope,
        Hf = hf,
        Gguf = gguf,
        Exists = exists,
        ShapeOf = (c, l) => [rows(c), cols(c)],
        Load = load,
        GgufType = ggufType,
    };

    private static TensorSpec Vector(TensorRole role, TensorScope scope, string hf, GgufForm? gguf, Func<ModelConfig, LayerInfo, bool> exists,
                                     Func<ModelConfig, long> length) => new()
    {
        Role = role,
        Scope = scope,
        Hf = hf,
        Gguf = gguf,
        Exists = exists,
        ShapeOf = (c, l) => [length(c)],
        GgufType = null,
        IsVector = true,
    };

    // dimension letters of ModelConfig's doc comment
    private static long H(ModelConfig c) => c.HiddenSize;
    private static long V(ModelConfig c) => c.VocabSize;
    private static long Q(ModelConfig c) => (long)c.NumAttentionHeads * c.QkHeadDim;
    private static long Dq(ModelConfig c) => c.QLoraRank;
    private static long R(ModelConfig c) => c.KvLoraRank;
    private static long I(ModelConfig c) => c.IntermediateSize;
    private static long E(ModelConfig c) => c.NRoutedExperts;
    private static long Ie(ModelConfig c) => c.MoeIntermediateSize;
    private static long Is(ModelConfig c) => (long)c.MoeIntermediateSize * c.NSharedExperts;

    // the V2/V3 tensors, with a family's attention-variant tensors after o_proj
    private static TensorSpec[] Tensors(TensorSpec[]? attention = null)
    {
        const TensorScope M = TensorScope.Model, Ly = TensorScope.Layer, X = TensorScope.Expert;
        const GgufExport.TensorRole FfnDown = GgufExport.TensorRole.FfnDown;
        return
        [
            Matrix(TensorRole.Embed, M, "model.embed_tokens.weight", Plain("token_embd.weight"), Always, V, H,
                   LoadRule.KeepBf16, GgufExport.TensorRole.Embedding),
            // MTP module k = layer L + k: enorm(embed(next token)), hnorm(h) -> eh_proj -> block -> shared_head (docs/deepseek-architecture.md §5)
            Matrix(TensorRole.MtpEmbed, Ly, L + "embed_tokens.weight", null, Mtp, V, H, LoadRule.KeepBf16),
            Vector(TensorRole.MtpENorm, Ly, L + "enorm.weight", null, Mtp, H),
            Vector(TensorRole.MtpHNorm, Ly, L + "hnorm.weight", null, Mtp, H),
            Matrix(TensorRole.MtpEhProj, Ly, L + "eh_proj.weight", null, Mtp, H, c => 2 * H(c)),
            Vector(TensorRole.AttnNorm, Ly, L + "input_layernorm.weight", Plain(B + "attn_norm.weight"), Always, H),
            Matrix(TensorRole.Wq, Ly, L + "self_attn.q_proj.weight", Plain(B + "attn_q.weight"), (c, l) => c.QLoraRank == 0, Q, H),
            Matrix(TensorRole.WqA, Ly, L + "self_attn.q_a_proj.weight", Plain(B + "attn_q_a.weight"), QLora, Dq, H),
            Vector(TensorRole.QNorm, Ly, L + "self_attn.q_a_layernorm.weight", Plain(B + "attn_q_a_norm.weight"), QLora, Dq),
            Matrix(TensorRole.WqB, Ly, L + "self_attn.q_b_proj.weight", Plain(B + "attn_q_b.weight"), QLora, Q, Dq),
            Matrix(TensorRole.WkvA, Ly, L + "self_attn.kv_a_proj_with_mqa.weight", Plain(B + "attn_kv_a_mqa.weight"), Always,
                   c => R(c) + c.QkRopeHeadDim, H),
            Vector(TensorRole.KvNorm, Ly, L + "self_attn.kv_a_layernorm.weight", Plain(B + "attn_kv_a_norm.weight"), Always, R),
            // GGUF: attn_k_b {Dn, R, Nh} (W_UK per head, transposed) + attn_v_b {R, Dv, Nh}; legacy files hold attn_kv_b
            Matrix(TensorRole.WkvB, Ly, L + "self_attn.kv_b_proj.weight",
                   new GgufForm(GgufTensorKind.KvB, B + "attn_k_b.weight", B + "attn_v_b.weight", B + "attn_kv_b.weight"), Always,
                   c => (long)c.NumAttentionHeads * (c.QkNopeHeadDim + c.VHeadDim), R, LoadRule.KvB),
            Matrix(TensorRole.Wo, Ly, L + "self_attn.o_proj.weight", Plain(B + "attn_output.weight"), Always,
                   H, c => (long)c.NumAttentionHeads * c.VHeadDim, ggufType: GgufExport.TensorRole.AttnOutput),
            .. attention ?? [],
            Vector(TensorRole.FfnNorm, Ly, L + "post_attention_layernorm.weight", Plain(B + "ffn_norm.weight"), Always, H),
            Matrix(TensorRole.DenseGate, Ly, L + "mlp.gate_proj.weight", Plain(B + "ffn_gate.weight"), Dense, I, H),
            Matrix(TensorRole.DenseUp, Ly, L + "mlp.up_proj.weight", Plain(B + "ffn_up.weight"), Dense, I, H),
            Matrix(TensorRole.DenseDown, Ly, L + "mlp.down_proj.weight", Plain(B + "ffn_down.weight"), Dense, H, I, ggufType: FfnDown),
            Matrix(TensorRole.Router, Ly, L + "mlp.gate.weight", Plain(B + "ffn_gate_inp.weight"), Moe, E, H, LoadRule.KeepBf16, ggufType: null),
            Vector(TensorRole.RouterBias, Ly, L + "mlp.gate.e_score_correction_bias", Plain(B + "exp_probs_b.bias"),
                   (c, l) => l.Moe && c.TopkMethod == TopKMethod.NoAuxTc, E) with { Learnable = false, Fp32 = true },
            // GGUF stacks the routed experts: ffn_*_exps {cols, rows, E}, expert e a slice
            Matrix(TensorRole.ExpertGate, X, L + "mlp.experts.{e}.gate_proj.weight", Stacked(B + "ffn_gate_exps.weight"), Moe, Ie, H),
            Matrix(TensorRole.ExpertUp, X, L + "mlp.experts.{e}.up_proj.weight", Stacked(B + "ffn_up_exps.weight"), Moe, Ie, H),
            Matrix(TensorRole.ExpertDown, X, L + "mlp.experts.{e}.down_proj.weight", Stacked(B + "ffn_down_exps.weight"), Moe, H, Ie,
                   ggufType: FfnDown),
            Matrix(TensorRole.SharedGate, Ly, L + "mlp.shared_experts.gate_proj.weight", Plain(B + "ffn_gate_shexp.weight"), Shared, Is, H),
            Matrix(TensorRole.SharedUp, Ly, L + "mlp.shared_experts.up_proj.weight", Plain(B + "ffn_up_shexp.weight"), Shared, Is, H),
            Matrix(TensorRole.SharedDown, Ly, L + "mlp.shared_experts.down_proj.weight", Plain(B + "ffn_down_shexp.weight"), Shared,
                   H, Is, ggufType: FfnDown),
            Vector(TensorRole.MtpHeadNorm, Ly, L + "shared_head.norm.weight", null, Mtp, H),
            Matrix(TensorRole.MtpHead, Ly, L + "shared_head.head.weight", null, Mtp, V, H, LoadRule.OutputHead),
            Vector(TensorRole.FinalNorm, M, "model.norm.weight", Plain("output_norm.weight"), Always, H),
            Matrix(TensorRole.LmHead, M, "lm_head.weight", Plain("output.weight"), (c, l) => !c.TieWordEmbeddings, V, H,
                   LoadRule.OutputHead, GgufExport.TensorRole.Output),
        ];
    }
}
