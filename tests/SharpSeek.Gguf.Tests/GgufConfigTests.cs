// deepseek2 metadata <-> ModelConfig (docs/deepseek-architecture.md §9): every config the project knows survives the trip, and the
// legacy encodings (yarn_log_multiplier = 0.1 x mscale_all_dim, gating func absent = softmax, no q_lora_rank) read as llama.cpp reads them.
using SharpSeek.Formats.Gguf;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tests;

namespace SharpSeek.Gguf.Tests;

public sealed class GgufConfigTests
{
    public static IEnumerable<object[]> Configs() =>
        Directory.GetFiles(Path.Combine(Fixtures.Root, "configs"), "*.json").Order(StringComparer.Ordinal)
            .Where(p => !Model.V4.V4Config.IsV4ConfigFile(p)) // deepseek4 metadata: V4GgufExport, tested with the V4 fixtures
            .Concat(Fixtures.HfFolders().Select(f => Path.Combine(Fixtures.Hf((string)f[0]), "config.json")))
            .Select(p => new object[] { Path.GetRelativePath(Fixtures.Root, p) });

    private static GgufFile MetadataOnly(ModelConfig c, Action<GgufWriter>? more = null)
    {
        var w = new GgufWriter();
        GgufExport.WriteMetadata(w, c, GgufFileType.BF16, "test");
        more?.Invoke(w);
        using var ms = new MemoryStream();
        w.WriteTo(ms);
        return GgufFile.FromMemory(ms.ToArray(), "meta.gguf");
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void Config_survives_metadata_round_trip(string relative)
    {
        ModelConfig c = ModelConfig.Load(Path.Combine(Fixtures.Root, relative));
        using GgufFile f = MetadataOnly(c);
        ModelConfig back = GgufModel.ReadConfig(f);
        // what GGUF deepseek2 cannot carry: MTP layers (dropped), FP8 settings (weights are converted), training
        // hyper-parameters, token ids (they come with a tokenizer); the two YaRN mscales are one number; a file
        // without output.weight is tied. Reals are stored as f32.
        static void Near(double want, double got, string what) => Assert.True(Math.Abs(want - got) <= 1e-6 * Math.Max(1, Math.Abs(want)), $"{what}: {got} != {want}");
        Near(c.RmsNormEps, back.RmsNormEps, "rms_norm_eps");
        Near(c.RoutedScalingFactor, back.RoutedScalingFactor, "routed_scaling_factor");
        Near(c.Rope.Theta, back.Rope.Theta, "rope_theta");
        Near(c.Rope.Factor, back.Rope.Factor, "rope factor");
        Near(c.Rope.BetaFast, back.Rope.BetaFast, "beta_fast");
        Near(c.Rope.BetaSlow, back.Rope.BetaSlow, "beta_slow");
        if (c.Rope.Type == RopeType.Yarn)
            Near(c.Rope.MscaleAllDim!.Value, back.Rope.MscaleAllDim!.Value, "mscale_all_dim");
        ModelConfig want = c with
        {
            NumNextnPredictLayers = 0,
            Quantization = null,
            AuxLossAlpha = 0,
            TieWordEmbeddings = true,
            // deepseek2 files name V2 or V3 by their routing; later architectures (deepseek32) name their family
            ModelType = c.GetArchitecture().GgufArchitecture != GgufModel.Architecture ? c.ModelType
                : c.ScoringFunc == ScoringFunc.Sigmoid ? "deepseek_v3" : "deepseek_v2",
            EosTokenIds = [],
            BosTokenId = null,
            RmsNormEps = back.RmsNormEps,
            RoutedScalingFactor = back.RoutedScalingFactor,
            Rope = back.Rope.Type == RopeType.Yarn
                ? c.Rope with { Theta = back.Rope.Theta, Factor = back.Rope.Factor, BetaFast = back.Rope.BetaFast, BetaSlow = back.Rope.BetaSlow, Mscale = back.Rope.MscaleAllDim, MscaleAllDim = back.Rope.MscaleAllDim }
                : c.Rope with { Theta = back.Rope.Theta },
        };
        Assert.Equal(want.ToJson(), back.ToJson());
        Assert.Equal(c.SoftmaxScale, back.SoftmaxScale, 1e-6);
        Assert.Equal(c.RopeAttentionFactor, back.RopeAttentionFactor, 1e-6);
    }

    [Fact]
    public void Keys_are_written_as_llama_cpp_reads_them()
    {
        ModelConfig c = ModelConfig.Load(Fixtures.Hf("v2-lite-tiny"));
        using GgufFile f = MetadataOnly(c);
        Assert.Equal("deepseek2", f.GetString("general.architecture"));
        Assert.Equal(GgufValueType.UInt32, f.Get("deepseek2.block_count")!.Type);
        Assert.Equal(1L, f.GetInteger("deepseek2.attention.head_count_kv"));
        Assert.Equal(c.KvLoraRank + c.QkRopeHeadDim, f.GetInteger("deepseek2.attention.key_length"));
        Assert.Equal(c.KvLoraRank, f.GetInteger("deepseek2.attention.value_length"));
        Assert.Equal(c.QkHeadDim, f.GetInteger("deepseek2.attention.key_length_mla"));
        Assert.Equal(c.VHeadDim, f.GetInteger("deepseek2.attention.value_length_mla"));
        Assert.Equal(0L, f.GetInteger("deepseek2.attention.q_lora_rank")); // q_lora null, 3 layers: see GgufExport
        Assert.Equal(0.1 * 0.707, f.GetNumber("deepseek2.rope.scaling.yarn_log_multiplier")!.Value, 1e-7);
        Assert.Equal("yarn", f.GetString("deepseek2.rope.scaling.type"));
        Assert.Equal(1L, f.GetInteger("deepseek2.expert_gating_func"));
        Assert.Null(f.Get("deepseek2.expert_weights_norm"));
        Assert.Equal(GgufValueType.Float32, f.Get("deepseek2.expert_weights_scale")!.Type);
        ModelConfig v3 = ModelConfig.Load(Fixtures.Hf("v3-tiny"));
        using GgufFile g = MetadataOnly(v3);
        Assert.Equal(2L, g.GetInteger("deepseek2.expert_gating_func"));
        Assert.Equal(true, g.GetBool("deepseek2.expert_weights_norm"));
        Assert.Equal(4L, g.GetInteger("deepseek2.expert_group_count"));
        Assert.Equal(2L, g.GetInteger("deepseek2.expert_group_used_count"));
        Assert.Equal(48L, g.GetInteger("deepseek2.attention.q_lora_rank"));
        Assert.Null(g.Get("deepseek2.rope.scaling.type"));
        Assert.Null(g.Get("deepseek2.nextn_predict_layers"));
    }

    private static GgufFile Legacy(Action<GgufWriter> keys)
    {
        var w = new GgufWriter();
        w.Add("general.architecture", "deepseek2");
        keys(w);
        using var ms = new MemoryStream();
        w.WriteTo(ms);
        return GgufFile.FromMemory(ms.ToArray(), "legacy.gguf");
    }

    private static void V2LiteKeys(GgufWriter w)
    {
        const string A = "deepseek2.";
        w.Add(A + "block_count", 27u);
        w.Add(A + "context_length", 163840u);
        w.Add(A + "embedding_length", 2048u);
        w.Add(A + "feed_forward_length", 10944u);
        w.Add(A + "attention.head_count", 16u);
        w.Add(A + "attention.head_count_kv", 16u);
        w.Add(A + "rope.freq_base", 10000f);
        w.Add(A + "attention.layer_norm_rms_epsilon", 1e-6f);
        w.Add(A + "expert_used_count", 6u);
        w.Add(A + "expert_count", 64u);
        w.Add(A + "leading_dense_block_count", 1u);
        w.Add(A + "vocab_size", 102400u);
        w.Add(A + "attention.kv_lora_rank", 512u);
        w.Add(A + "attention.key_length", 192u); // legacy files: the MHA head sizes, no *_mla keys
        w.Add(A + "attention.value_length", 128u);
        w.Add(A + "expert_feed_forward_length", 1408u);
        w.Add(A + "expert_shared_count", 2u);
        w.Add(A + "expert_weights_scale", 1f);
        w.Add(A + "rope.dimension_count", 64u);
        w.Add(A + "rope.scaling.type", "yarn");
        w.Add(A + "rope.scaling.factor", 40f);
        w.Add(A + "rope.scaling.original_context_length", 4096u);
        w.Add(A + "rope.scaling.yarn_log_multiplier", 0.0707f);
    }

    [Fact]
    public void Legacy_V2_Lite_file_reads_as_the_V2_Lite_config()
    {
        using GgufFile f = Legacy(V2LiteKeys);
        ModelConfig c = GgufModel.ReadConfig(f);
        ModelConfig want = ModelConfig.Load(Path.Combine(Fixtures.Root, "configs", "deepseek-v2-lite.json"));
        Assert.Equal(0, c.QLoraRank); // key absent: no query compression
        Assert.Equal(ScoringFunc.Softmax, c.ScoringFunc); // expert_gating_func absent: softmax, as llama.cpp assumes
        Assert.Equal(TopKMethod.Greedy, c.TopkMethod);
        Assert.False(c.NormTopkProb);
        Assert.Equal(128, c.QkNopeHeadDim);
        Assert.Equal(128, c.VHeadDim);
        Assert.Equal(0.707, c.Rope.MscaleAllDim!.Value, 1e-6);
        Assert.Equal(want.SoftmaxScale, c.SoftmaxScale, 1e-6);
        Assert.Equal(want.HiddenSize, c.HiddenSize);
        Assert.Equal(want.MoeIntermediateSize, c.MoeIntermediateSize);
    }

    [Fact]
    public void Yarn_without_log_multiplier_has_no_mscale_as_in_llama_cpp()
    {
        using GgufFile f = Legacy(w =>
        {
            V2LiteKeysWithout(w, "deepseek2.rope.scaling.yarn_log_multiplier");
        });
        ModelConfig c = GgufModel.ReadConfig(f);
        Assert.Equal(1 / Math.Sqrt(192), c.SoftmaxScale, 1e-9);
        Assert.Equal(1.0, c.RopeAttentionFactor);
    }

    private static void V2LiteKeysWithout(GgufWriter target, string skip)
    {
        var all = new GgufWriter();
        V2LiteKeys(all);
        using var ms = new MemoryStream();
        all.WriteTo(ms);
        using GgufFile f = GgufFile.FromMemory(ms.ToArray(), "keys");
        foreach (string k in f.Keys.Where(k => k != skip))
            target.Add(k, f.Metadata[k]);
    }

    [Fact]
    public void Missing_required_key_names_file_and_key()
    {
        using GgufFile f = Legacy(w => V2LiteKeysWithout(w, "deepseek2.attention.kv_lora_rank"));
        var e = Assert.Throws<InvalidDataException>(() => GgufModel.ReadConfig(f));
        Assert.Contains("legacy.gguf", e.Message);
        Assert.Contains("deepseek2.attention.kv_lora_rank", e.Message);
    }

    [Fact]
    public void Other_architectures_and_gating_functions_are_not_supported()
    {
        var w = new GgufWriter();
        w.Add("general.architecture", "llama");
        using var ms = new MemoryStream();
        w.WriteTo(ms);
        using GgufFile f = GgufFile.FromMemory(ms.ToArray(), "llama.gguf");
        Assert.Contains("'llama'", Assert.Throws<NotSupportedException>(() => GgufModel.ReadConfig(f)).Message);
        using GgufFile g = Legacy(w2 => { V2LiteKeys(w2); w2.Add("deepseek2.expert_gating_func", 3u); });
        Assert.Contains("expert_gating_func is 3", Assert.Throws<NotSupportedException>(() => GgufModel.ReadConfig(g)).Message);
    }

    [Fact]
    public void Wrongly_typed_key_names_file_and_key()
    {
        using GgufFile f = Legacy(w => { V2LiteKeysWithout(w, "deepseek2.block_count"); w.Add("deepseek2.block_count", "27"); });
        var e = Assert.Throws<InvalidDataException>(() => GgufModel.ReadConfig(f));
        Assert.Contains("'deepseek2.block_count' has type String", e.Message);
    }

    [Fact]
    public void Q4_K_M_type_choices_follow_llama_quantize()
    {
        ModelConfig c = ModelConfig.Load(Path.Combine(Fixtures.Root, "configs", "deepseek-v3.json"));
        GgufExport.TensorRole role = GgufExport.TensorRole.FfnDown;
        // use_more_bits over 61 layers: first 7, last 8, and every third between
        int[] more = Enumerable.Range(0, 61).Where(l => GgufExport.UseMoreBits(l, 61)).ToArray();
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 9, 12], more.Take(9));
        Assert.Equal(Formats.Gguf.GgmlType.Q6_K, GgufExport.TypeFor(GgufFileType.Q4_K_M, role, 2048, c, 0));
        Assert.Equal(Formats.Gguf.GgmlType.Q4_K, GgufExport.TypeFor(GgufFileType.Q4_K_M, role, 2048, c, 7));
        Assert.Equal(Formats.Gguf.GgmlType.Q6_K, GgufExport.TypeFor(GgufFileType.Q4_K_M, GgufExport.TensorRole.Output, 7168, c, -1));
        Assert.Equal(Formats.Gguf.GgmlType.Q4_K, GgufExport.TypeFor(GgufFileType.Q4_K_M, GgufExport.TensorRole.AttnOutput, 16384, c, 3));
        Assert.Equal(Formats.Gguf.GgmlType.Q8_0, GgufExport.TypeFor(GgufFileType.Q4_K_M, GgufExport.TensorRole.Other, 128, c, 3)); // attn_k_b rows of Dn
        Assert.Equal(Formats.Gguf.GgmlType.F16, GgufExport.TypeFor(GgufFileType.Q8_0, GgufExport.TensorRole.Other, 48, c, 3));
        Assert.Equal(Formats.Gguf.GgmlType.Q6_K, GgufExport.TypeFor(GgufFileType.Q4_K_M, GgufExport.TensorRole.AttnOutput, 512, c with { NRoutedExperts = 8 }, 0));
    }
}
