using SharpSeek.Model;
using SharpSeek.Tests;

namespace SharpSeek.Model.Tests;

public sealed class ConfigTests
{
    private static string Cfg(string name) => Path.Combine(Fixtures.Root, "configs", name);

    [Fact]
    public void DeepSeekV3_parameter_counts_match_transformers()
    {
        ModelStats s = ModelStats.Compute(ModelConfig.Load(Cfg("deepseek-v3.json")));
        Assert.Equal(671_026_404_352, s.ParametersTotal);
        // docs/deepseek-architecture.md §2: activated 37.55B counting the full embedding and head
        Assert.InRange(s.ParametersActive, 37_540_000_000, 37_560_000_000);
        // MTP including its embedding/head copies: 13.46B (docs/deepseek-architecture.md §2)
        Assert.InRange(s.MtpParameters, 13_450_000_000, 13_470_000_000);
        Assert.Equal(70_272, s.KvCacheBytesPerToken);
        Assert.Equal(4_997_120, s.KvCacheBytesPerTokenMha);
    }

    [Fact]
    public void DeepSeekV2Lite_parameter_counts_match_transformers()
    {
        ModelConfig c = ModelConfig.Load(Cfg("deepseek-v2-lite.json"));
        ModelStats s = ModelStats.Compute(c);
        Assert.Equal(15_706_484_224, s.ParametersTotal);
        Assert.InRange(s.ParametersActive, 2_600_000_000, 2_700_000_000); // spec: ≈2.66B
        Assert.Equal(0, s.MtpParameters);
        Assert.Equal(31_104, s.KvCacheBytesPerToken);
        Assert.Equal(276_480, s.KvCacheBytesPerTokenMha);
        Assert.Equal(0, c.QLoraRank);
    }

    [Fact]
    public void Softmax_scales_match_the_spec()
    {
        Assert.Equal(0.1352338, ModelConfig.Load(Cfg("deepseek-v3.json")).SoftmaxScale, 6);
        Assert.Equal(0.1147214, ModelConfig.Load(Cfg("deepseek-v2-lite.json")).SoftmaxScale, 6);
        ModelConfig kimi = ModelConfig.Load(Cfg("kimi-k2.json"));
        Assert.Equal(1.813260 / Math.Sqrt(192), kimi.SoftmaxScale, 5);
        Assert.Equal(50000, kimi.Rope.Theta);
        Assert.Equal(1.0, kimi.RopeAttentionFactor, 12);
    }

    [Fact]
    public void Legacy_and_transformers5_rope_spellings_parse_the_same()
    {
        string legacy = File.ReadAllText(Cfg("deepseek-v3.json"));
        string v5 = legacy.Replace("\"rope_theta\": 10000,", "")
            .Replace("\"rope_scaling\": {", "\"rope_parameters\": {\n    \"rope_type\": \"yarn\", \"rope_theta\": 10000.0,")
            .Replace("\"type\": \"yarn\"", "\"truncate\": true");
        ModelConfig a = ModelConfig.Parse(legacy), b = ModelConfig.Parse(v5);
        Assert.Equal(a.Rope, b.Rope);
        Assert.Equal(RopeType.Yarn, b.Rope.Type);
        Assert.Equal(40, b.Rope.Factor);
    }

    [Fact]
    public void Routing_and_quantization_fields_parse()
    {
        ModelConfig c = ModelConfig.Load(Cfg("deepseek-v3.json"));
        Assert.Equal(TopKMethod.NoAuxTc, c.TopkMethod);
        Assert.Equal(ScoringFunc.Sigmoid, c.ScoringFunc);
        Assert.Equal((8, 4, 8, 256), (c.NGroup, c.TopkGroup, c.NumExpertsPerTok, c.NRoutedExperts));
        Assert.True(c.NormTopkProb);
        Assert.Equal(2.5, c.RoutedScalingFactor);
        Assert.Equal(1, c.NumNextnPredictLayers);
        Assert.False(c.IsMoeLayer(2));
        Assert.True(c.IsMoeLayer(3));
        Assert.Equal(new QuantizationConfig("fp8", "e4m3", 128, 128, "dynamic"), c.Quantization);
        ModelConfig k = ModelConfig.Load(Cfg("kimi-k2.json"));
        Assert.Equal("kimi_k2", k.ModelType);
    }

    [Fact]
    public void Moe_layer_freq_selects_layers()
    {
        string j = File.ReadAllText(Cfg("deepseek-v2-lite.json")).Replace("\"moe_layer_freq\": 1", "\"moe_layer_freq\": 2");
        ModelConfig c = ModelConfig.Parse(j);
        Assert.False(c.IsMoeLayer(0));
        Assert.True(c.IsMoeLayer(2));
        Assert.False(c.IsMoeLayer(3));
    }

    [Fact]
    public void Round_trips_through_ToJson()
    {
        foreach (string f in new[] { "deepseek-v3.json", "deepseek-v2-lite.json", "kimi-k2.json" })
        {
            ModelConfig a = ModelConfig.Load(Cfg(f));
            ModelConfig b = ModelConfig.Parse(a.ToJson());
            Assert.Equal(a with { EosTokenIds = [] }, b with { EosTokenIds = [] });
            Assert.Equal(a.EosTokenIds, b.EosTokenIds);
        }
    }

    [Theory]
    [InlineData("\"topk_method\": \"noaux_tc\"", "\"topk_method\": \"fancy\"", "topk_method")]
    [InlineData("\"scoring_func\": \"sigmoid\"", "\"scoring_func\": \"tanh\"", "scoring_func")]
    [InlineData("\"model_type\": \"deepseek_v3\"", "\"model_type\": \"llama\"", "model_type")]
    [InlineData("\"n_group\": 8", "\"n_group\": 7", "n_group")]
    [InlineData("\"topk_group\": 4", "\"topk_group\": 9", "topk_group")]
    [InlineData("\"num_experts_per_tok\": 8", "\"num_experts_per_tok\": 300", "num_experts_per_tok")]
    [InlineData("\"hidden_size\": 7168", "\"hidden_size\": -1", "hidden_size")]
    [InlineData("\"hidden_size\": 7168", "\"hidden_size\": 71.5", "hidden_size")]
    [InlineData("\"qk_rope_head_dim\": 64", "\"qk_rope_head_dim\": 63", "qk_rope_head_dim")]
    [InlineData("\"type\": \"yarn\"", "\"type\": \"dynamic\"", "rope_scaling.rope_type")]
    [InlineData("\"factor\": 40", "\"factor\": \"big\"", "rope_scaling.factor")]
    [InlineData("\"quant_method\": \"fp8\"", "\"quant_method\": \"gptq\"", "quantization_config.quant_method")]
    [InlineData("\"weight_block_size\": [128, 128]", "\"weight_block_size\": [128]", "quantization_config.weight_block_size")]
    [InlineData("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act")]
    [InlineData("\"eos_token_id\": 1", "\"eos_token_id\": 999999", "eos_token_id")]
    [InlineData("\"vocab_size\": 129280,", "", "vocab_size")]
    [InlineData("\"kv_lora_rank\": 512", "\"kv_lora_rank\": 0", "kv_lora_rank")]
    [InlineData("\"norm_topk_prob\": true", "\"norm_topk_prob\": 1", "norm_topk_prob")]
    public void Bad_values_fail_naming_the_field(string from, string to, string field)
    {
        string j = File.ReadAllText(Cfg("deepseek-v3.json"));
        Assert.Contains(from, j);
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Parse(j.Replace(from, to), "x/config.json"));
        Assert.Contains($"'{field}'", e.Message);
        Assert.Contains("x/config.json", e.Message);
    }

    [Fact]
    public void Not_json_fails_clearly()
    {
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Parse("{ nope", "c.json"));
        Assert.Contains("c.json", e.Message);
        Assert.Throws<FileNotFoundException>(() => ModelConfig.Load("/nonexistent/dir"));
    }
}
