// Small random configurations for gradient checks and trainer tests (built in code, no files).
using SharpSeek.Model;

namespace SharpSeek.Training.Tests;

internal static class TinyModels
{
    /// <summary>V3-style: q_lora, sigmoid router with bias and groups, normalized and scaled weights, dense first layer, MTP.</summary>
    public static ModelConfig V3(int vocab = 97) => V3Like(vocab, firstDense: 1, maxPositions: 64, mtp: 1);

    /// <summary>V3-style attention on dense layers only (no routing, no MTP), for long sequences (several attention key blocks).</summary>
    public static ModelConfig V3Dense(int vocab = 97) => V3Like(vocab, firstDense: 2, maxPositions: 256, mtp: 0);

    private static ModelConfig V3Like(int vocab, int firstDense, int maxPositions, int mtp) => ModelConfig.Parse($$"""
        {
          "model_type": "deepseek_v3", "vocab_size": {{vocab}}, "hidden_size": 24, "intermediate_size": 40, "moe_intermediate_size": 12,
          "num_hidden_layers": 2, "num_attention_heads": 2, "n_shared_experts": 1, "n_routed_experts": 8, "num_experts_per_tok": 3,
          "n_group": 2, "topk_group": 2, "routed_scaling_factor": 2.5, "norm_topk_prob": true, "scoring_func": "sigmoid",
          "topk_method": "noaux_tc", "first_k_dense_replace": {{firstDense}}, "q_lora_rank": 16, "kv_lora_rank": 12, "qk_nope_head_dim": 8,
          "qk_rope_head_dim": 4, "v_head_dim": 6, "max_position_embeddings": {{maxPositions}}, "rms_norm_eps": 1e-6, "rope_theta": 10000,
          "num_nextn_predict_layers": {{mtp}}, "bos_token_id": 0, "eos_token_id": 1
        }
        """);

    /// <summary>
    /// V3.2-style dense layers (no routing, no MTP): V3 attention plus a lightning indexer of 2 heads x 8 keeping
    /// <paramref name="topK"/> positions.
    /// </summary>
    public static ModelConfig V32(int topK, int vocab = 97) => ModelConfig.Parse(V32Json(topK, vocab));

    /// <summary>The config.json text of <see cref="V32"/>.</summary>
    public static string V32Json(int topK, int vocab = 97) => $$"""
        {
          "model_type": "deepseek_v32", "vocab_size": {{vocab}}, "hidden_size": 24, "intermediate_size": 40, "moe_intermediate_size": 12,
          "num_hidden_layers": 2, "num_attention_heads": 2, "n_shared_experts": 1, "n_routed_experts": 8, "num_experts_per_tok": 3,
          "n_group": 2, "topk_group": 2, "routed_scaling_factor": 2.5, "norm_topk_prob": true, "scoring_func": "sigmoid",
          "topk_method": "noaux_tc", "first_k_dense_replace": 2, "q_lora_rank": 16, "kv_lora_rank": 12, "qk_nope_head_dim": 8,
          "qk_rope_head_dim": 4, "v_head_dim": 6, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000,
          "num_nextn_predict_layers": 0, "bos_token_id": 0, "eos_token_id": 1,
          "index_n_heads": 2, "index_head_dim": 8, "index_topk": {{topK}}
        }
        """;

    /// <summary>V2-style: plain q_proj, softmax greedy router without normalization, YaRN with mscale, no MTP.</summary>
    public static ModelConfig V2(int vocab = 89) => ModelConfig.Parse($$"""
        {
          "model_type": "deepseek_v2", "vocab_size": {{vocab}}, "hidden_size": 20, "intermediate_size": 36, "moe_intermediate_size": 10,
          "num_hidden_layers": 2, "num_attention_heads": 3, "n_shared_experts": 2, "n_routed_experts": 6, "num_experts_per_tok": 2,
          "n_group": 1, "topk_group": 1, "routed_scaling_factor": 1.5, "norm_topk_prob": false, "scoring_func": "softmax",
          "topk_method": "greedy", "first_k_dense_replace": 1, "q_lora_rank": null, "kv_lora_rank": 10, "qk_nope_head_dim": 6,
          "qk_rope_head_dim": 4, "v_head_dim": 5, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000,
          "rope_scaling": { "type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8, "beta_fast": 32, "beta_slow": 1,
                            "mscale": 0.707, "mscale_all_dim": 0.707 }
        }
        """);

    /// <summary>Random ids in [2, V).</summary>
    public static int[] Ids(int n, int vocab, ulong seed)
    {
        var rng = new Rng(seed);
        var ids = new int[n];
        for (int i = 0; i < n; i++)
            ids[i] = 2 + (int)(rng.NextUInt64() % (ulong)(vocab - 2));
        return ids;
    }

    /// <summary>Randomizes norm weights around 1 and router biases ~N(0, 1) (wide gaps keep expert choices stable under small perturbations).</summary>
    public static void Perturb(ModelParameters p, ulong seed)
    {
        var rng = new Rng(seed);
        foreach ((string name, Tensors.WeightMatrix? m, float[]? v) in p.Weights.Enumerate())
        {
            if (v is null)
                continue;
            for (int i = 0; i < v.Length; i++)
                v[i] = ModelParameters.IsRouterBias(name) ? (float)rng.NextNormal() : (float)(1 + rng.NextNormal() * 0.2);
        }
    }
}
