// The architecture descriptors (issue 15): every role's checkpoint and GGUF name spelled out here independently,
// presence and shapes per config, name parsing, and the parameter counts against the closed-form formula
// ModelStats used before it read the descriptor.
using SharpSeek.Model.Architecture;
using SharpSeek.Model.Gguf;
using SharpSeek.Tests;

namespace SharpSeek.Model.Tests;

public sealed class ArchitectureTests
{
    private static ModelConfig Cfg(string name) => ModelConfig.Load(Path.Combine(Fixtures.Root, "configs", name));

    // role -> (checkpoint name of layer 3 / expert 5, GGUF name of layer 3 or null)
    private static readonly Dictionary<TensorRole, (string Hf, string? Gguf)> Names = new()
    {
        [TensorRole.Embed] = ("model.embed_tokens.weight", "token_embd.weight"),
        [TensorRole.FinalNorm] = ("model.norm.weight", "output_norm.weight"),
        [TensorRole.LmHead] = ("lm_head.weight", "output.weight"),
        [TensorRole.AttnNorm] = ("model.layers.3.input_layernorm.weight", "blk.3.attn_norm.weight"),
        [TensorRole.Wq] = ("model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight"),
        [TensorRole.WqA] = ("model.layers.3.self_attn.q_a_proj.weight", "blk.3.attn_q_a.weight"),
        [TensorRole.QNorm] = ("model.layers.3.self_attn.q_a_layernorm.weight", "blk.3.attn_q_a_norm.weight"),
        [TensorRole.WqB] = ("model.layers.3.self_attn.q_b_proj.weight", "blk.3.attn_q_b.weight"),
        [TensorRole.WkvA] = ("model.layers.3.self_attn.kv_a_proj_with_mqa.weight", "blk.3.attn_kv_a_mqa.weight"),
        [TensorRole.KvNorm] = ("model.layers.3.self_attn.kv_a_layernorm.weight", "blk.3.attn_kv_a_norm.weight"),
        [TensorRole.WkvB] = ("model.layers.3.self_attn.kv_b_proj.weight", "blk.3.attn_k_b.weight"),
        [TensorRole.Wo] = ("model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"),
        [TensorRole.FfnNorm] = ("model.layers.3.post_attention_layernorm.weight", "blk.3.ffn_norm.weight"),
        [TensorRole.DenseGate] = ("model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight"),
        [TensorRole.DenseUp] = ("model.layers.3.mlp.up_proj.weight", "blk.3.ffn_up.weight"),
        [TensorRole.DenseDown] = ("model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"),
        [TensorRole.Router] = ("model.layers.3.mlp.gate.weight", "blk.3.ffn_gate_inp.weight"),
        [TensorRole.RouterBias] = ("model.layers.3.mlp.gate.e_score_correction_bias", "blk.3.exp_probs_b.bias"),
        [TensorRole.ExpertGate] = ("model.layers.3.mlp.experts.5.gate_proj.weight", "blk.3.ffn_gate_exps.weight"),
        [TensorRole.ExpertUp] = ("model.layers.3.mlp.experts.5.up_proj.weight", "blk.3.ffn_up_exps.weight"),
        [TensorRole.ExpertDown] = ("model.layers.3.mlp.experts.5.down_proj.weight", "blk.3.ffn_down_exps.weight"),
        [TensorRole.SharedGate] = ("model.layers.3.mlp.shared_experts.gate_proj.weight", "blk.3.ffn_gate_shexp.weight"),
        [TensorRole.SharedUp] = ("model.layers.3.mlp.shared_experts.up_proj.weight", "blk.3.ffn_up_shexp.weight"),
        [TensorRole.SharedDown] = ("model.layers.3.mlp.shared_experts.down_proj.weight", "blk.3.ffn_down_shexp.weight"),
        [TensorRole.MtpEmbed] = ("model.layers.3.embed_tokens.weight", null),
        [TensorRole.MtpENorm] = ("model.layers.3.enorm.weight", null),
        [TensorRole.MtpHNorm] = ("model.layers.3.hnorm.weight", null),
        [TensorRole.MtpEhProj] = ("model.layers.3.eh_proj.weight", null),
        [TensorRole.MtpHeadNorm] = ("model.layers.3.shared_head.norm.weight", null),
        [TensorRole.MtpHead] = ("model.layers.3.shared_head.head.weight", null),
    };

    public static IEnumerable<object[]> Families() => [["deepseek_v2"], ["deepseek_v3"], ["kimi_k2"]];

    [Theory]
    [MemberData(nameof(Families))]
    public void Every_role_has_the_checkpoint_and_gguf_names_of_spec_2_and_9(string modelType)
    {
        ArchitectureDescriptor a = ArchitectureDescriptor.For(modelType);
        Assert.Equal(Names.Keys.Order(), a.Tensors.Select(t => t.Role).Order());
        Assert.Equal("deepseek2", a.GgufArchitecture);
        foreach ((TensorRole role, (string hf, string? gguf)) in Names)
        {
            TensorSpec s = a[role];
            bool model = s.Scope == TensorScope.Model;
            Assert.Equal(hf, a.HfName(role, model ? -1 : 3, s.Scope == TensorScope.Expert ? 5 : -1));
            if (gguf is null)
            {
                Assert.Null(s.Gguf);
                Assert.Throws<NotSupportedException>(() => a.GgufName(role, 3));
            }
            else
            {
                Assert.Equal(gguf, a.GgufName(role, model ? -1 : 3));
            }
        }
        GgufForm kvb = a[TensorRole.WkvB].Gguf!;
        Assert.Equal(GgufTensorKind.KvB, kvb.Kind);
        Assert.Equal("blk.{l}.attn_v_b.weight", kvb.Second);
        Assert.Equal("blk.{l}.attn_kv_b.weight", kvb.Legacy);
        Assert.Equal(GgufTensorKind.Expert, a[TensorRole.ExpertDown].Gguf!.Kind);
        Assert.Equal("model.layers.61.", a.HfLayerPrefix(61));
        Assert.Equal("_scale_inv", a.HfScaleSuffix);
        Assert.True(a.IsIgnoredHf("model.layers.0.self_attn.rotary_emb.inv_freq"));
        // the per-layer names of the split and legacy kv_b
        Assert.Equal("model.layers.3.self_attn.o_proj.weight", a.HfName(TensorRole.Wo, 3));
        Assert.Equal("blk.3.attn_v_b.weight", kvb.SecondOf(3));
        Assert.Equal("blk.3.attn_kv_b.weight", kvb.LegacyOf(3));
    }

    [Fact]
    public void Families_are_chosen_by_model_type()
    {
        Assert.Same(ArchitectureDescriptor.DeepSeekV2, Cfg("deepseek-v2-lite.json").GetArchitecture());
        Assert.Same(ArchitectureDescriptor.DeepSeekV3, Cfg("deepseek-v3.json").GetArchitecture());
        Assert.Same(ArchitectureDescriptor.DeepSeekV3, Cfg("kimi-k2.json").GetArchitecture());
        Assert.Same(ArchitectureDescriptor.DeepSeekV3, ArchitectureDescriptor.ForGguf("deepseek2"));
        Assert.Null(ArchitectureDescriptor.ForGguf("llama"));
    }

    [Fact]
    public void Presence_and_shapes_follow_the_config()
    {
        ModelConfig v3 = Cfg("deepseek-v3.json"), lite = Cfg("deepseek-v2-lite.json");
        ArchitectureDescriptor a = v3.GetArchitecture(), b = lite.GetArchitecture();
        Assert.True(a.Exists(TensorRole.WqA, v3, 0) && !a.Exists(TensorRole.Wq, v3, 0));
        Assert.True(b.Exists(TensorRole.Wq, lite, 0) && !b.Exists(TensorRole.WqA, lite, 0));
        Assert.True(a.Exists(TensorRole.DenseGate, v3, 2) && !a.Exists(TensorRole.Router, v3, 2));
        Assert.True(a.Exists(TensorRole.RouterBias, v3, 3) && !b.Exists(TensorRole.RouterBias, lite, 3));
        Assert.True(a.Exists(TensorRole.MtpEhProj, v3, 61) && a.Exists(TensorRole.ExpertUp, v3, 61) && !a.Exists(TensorRole.MtpEhProj, v3, 60));
        Assert.True(a.Exists(TensorRole.LmHead, v3));
        Assert.False(a.Exists(TensorRole.LmHead, v3 with { TieWordEmbeddings = true }));
        Assert.Equal([24576L, 1536], a[TensorRole.WqB].Shape(v3));
        Assert.Equal([32768L, 512], a[TensorRole.WkvB].Shape(v3));
        Assert.Equal([576L, 7168], a[TensorRole.WkvA].Shape(v3));
        Assert.Equal([7168L, 16384], a[TensorRole.Wo].Shape(v3));
        Assert.Equal([2048L, 7168], a[TensorRole.ExpertGate].Shape(v3));
        Assert.Equal([7168L, 14336], a[TensorRole.MtpEhProj].Shape(v3));
        Assert.Equal([256L], a[TensorRole.RouterBias].Shape(v3));
        Assert.Equal([3072L, 2048], b[TensorRole.Wq].Shape(lite));
        Assert.Equal([2816L, 2048], b[TensorRole.SharedUp].Shape(lite));
        Assert.Equal([2048L, 10944], b[TensorRole.DenseDown].Shape(lite));
        // docs/deepseek-architecture.md §2: 91,991 tensors in the V3 checkpoint, 3 per FP8 weight's scale aside: 61 layers + MTP
        int fp8 = a.CheckpointTensors(v3).Count(t => !t.Spec.IsVector && t.Role is not (TensorRole.Embed or TensorRole.LmHead
            or TensorRole.Router or TensorRole.MtpEmbed or TensorRole.MtpHead or TensorRole.MtpEhProj));
        Assert.Equal(91_991, a.CheckpointTensors(v3).Count() + fp8);
    }

    [Fact]
    public void Checkpoint_names_parse_back_to_role_layer_and_expert()
    {
        ModelConfig c = Cfg("deepseek-v3.json") with { NumHiddenLayers = 5 };
        ArchitectureDescriptor a = c.GetArchitecture();
        int n = 0;
        foreach (TensorRef t in a.CheckpointTensors(c))
        {
            Assert.True(a.TryParseHf(t.HfName, out TensorRef back), t.HfName);
            Assert.Equal(t, back);
            GgufLocation? loc = a.Locate(t.HfName);
            Assert.Equal(t.Spec.Gguf is null, loc is null);
            n++;
        }
        Assert.Equal(a.CheckpointTensors(c).Count(), n);
        Assert.Equal(new GgufLocation(GgufTensorKind.Expert, "blk.4.ffn_down_exps.weight", 4, 17), a.Locate("model.layers.4.mlp.experts.17.down_proj.weight"));
        Assert.Equal(new GgufLocation(GgufTensorKind.KvB, "blk.0.attn_k_b.weight", 0, -1), a.Locate("model.layers.0.self_attn.kv_b_proj.weight"));
        foreach (string bad in new[] { "model.layers.x.input_layernorm.weight", "model.layers.1.2.3.input_layernorm.weight", "model.layers.99999999999.input_layernorm.weight",
                                       "model.layers.1.mlp.experts.2.gate.weight", "model.embed_tokens.bias", "", "." })
        {
            Assert.False(a.TryParseHf(bad, out _), bad);
            Assert.Null(a.Locate(bad));
        }
    }

    public static IEnumerable<object[]> StatsConfigs() =>
        new[] { "deepseek-v3.json", "deepseek-v2-lite.json", "kimi-k2.json" }.Select(f => new object[] { f });

    [Theory]
    [MemberData(nameof(StatsConfigs))]
    public void Descriptor_parameter_counts_equal_the_closed_form(string file)
    {
        ModelConfig c = Cfg(file);
        foreach (ModelConfig v in new[]
                 {
                     c, c with { TieWordEmbeddings = !c.TieWordEmbeddings }, c with { QLoraRank = 0 }, c with { QLoraRank = 1536 },
                     c with { NSharedExperts = 0 }, c with { NumNextnPredictLayers = 2 }, c with { FirstKDenseReplace = 0 },
                     c with { TopkMethod = TopKMethod.NoAuxTc }, c with { NRoutedExperts = 0 },
                 })
        {
            Assert.Equal(ClosedForm(v), ModelStats.Compute(v));
        }
    }

    [Fact]
    public void Fixture_configs_count_what_their_weights_hold()
    {
        foreach (object[] f in Fixtures.HfFolders())
        {
            string dir = Fixtures.Hf((string)f[0]);
            ModelConfig c = ModelConfig.Load(dir);
            Assert.Equal(ClosedForm(c), ModelStats.Compute(c));
            using ModelWeights w = WeightLoader.Load(dir);
            long stored = w.EnumerateTensors().Where(t => t.Tensor.Spec.Learnable && t.Tensor.Layer < c.NumHiddenLayers)
                                              .Sum(t => t.Matrix is { } m ? (long)m.Rows * m.Cols : t.Vector!.Length);
            Assert.Equal(ModelStats.Compute(c).ParametersTotal, stored);
        }
    }

    // ModelStats.Compute as written before the descriptor (commit 94e1fff), kept as the independent check
    private static ModelStats ClosedForm(ModelConfig c)
    {
        long H = c.HiddenSize, V = c.VocabSize, Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dr = c.QkRopeHeadDim, Dv = c.VHeadDim;
        long R = c.KvLoraRank, Dq = c.QLoraRank, E = c.NRoutedExperts, K = c.NumExpertsPerTok, Ie = c.MoeIntermediateSize;
        long attn = (Dq > 0 ? H * Dq + Dq + Dq * Nh * (Dn + Dr) : H * Nh * (Dn + Dr))
                  + H * (R + Dr) + R + R * Nh * (Dn + Dv) + Nh * Dv * H;
        long norms = 2 * H;
        long expert = 3 * H * Ie;
        long shared = c.NSharedExperts * expert;
        long dense = 3 * H * c.IntermediateSize;
        long router = E * H;
        long total = 0, active = 0, routed = 0;
        int moeLayers = 0;
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            total += attn + norms;
            active += attn + norms;
            if (c.IsMoeLayer(l))
            {
                moeLayers++;
                total += router + E * expert + shared;
                active += router + K * expert + shared;
                routed += E * expert;
            }
            else
            {
                total += dense;
                active += dense;
            }
        }
        long embedding = V * H + (c.TieWordEmbeddings ? 0 : V * H);
        total += embedding + H;
        active += embedding + H;
        long mtpOne = 2 * V * H + 2 * H + 2 * H * H + attn + norms + router + E * expert + shared + H;
        long normVectors = c.NumHiddenLayers * (norms + R + (Dq > 0 ? Dq : 0)) + H;
        long matmulWeights = active - V * H - normVectors + (c.TieWordEmbeddings ? V * H : 0);
        return new ModelStats
        {
            ParametersTotal = total,
            ParametersActive = active,
            MtpParameters = c.NumNextnPredictLayers * mtpOne,
            RoutedExpertParameters = routed,
            EmbeddingParameters = embedding,
            KvCacheBytesPerToken = c.NumHiddenLayers * (R + Dr) * 2,
            KvCacheBytesPerTokenMha = c.NumHiddenLayers * Nh * (Dn + Dr + Dv) * 2,
            FlopsPerToken = 2 * matmulWeights,
            AttentionFlopsPerContextToken = 2 * c.NumHiddenLayers * Nh * (Dn + Dr + Dv),
            MoeLayers = moeLayers,
        };
    }
}
