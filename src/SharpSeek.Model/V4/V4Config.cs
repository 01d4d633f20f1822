// DeepSeek-V4 configuration (model_type deepseek_v4; llama.cpp architecture deepseek4): hyper-connections, per-layer KV
// compression (0 = sliding window only, 4 = compressed sparse attention with an indexer, 128 = heavily compressed
// attention), one shared K=V head, grouped low-rank output, sqrtsoftplus routing with hash-routed first layers.
// The math is DeepSeek's V4-Flash inference/model.py; docs/deepseek-v4.md says what SharpSeek runs and where the
// implementations differ.
//
// Letters: H hidden, Nh heads, D head_dim (K = V width), Dr rope dims (the last Dr of D), Dq q_lora_rank, G o_groups,
// Ro o_lora_rank, W sliding window, E routed experts, K experts per token, Ie expert width, In/Id indexer heads/width,
// Hc hc_mult (residual streams).
using System.Text.Json.Nodes;

namespace SharpSeek.Model.V4;

/// <summary>A validated DeepSeek-V4 configuration.</summary>
public sealed record V4Config
{
    /// <summary>config.json's model_type of the family.</summary>
    public const string ModelType = "deepseek_v4";

    /// <summary>llama.cpp's general.architecture of the family.</summary>
    public const string GgufArchitecture = "deepseek4";

    /// <summary>The compression ratios V4 defines (llama.cpp and DeepSeek's reference support these three).</summary>
    public static readonly int[] Ratios = [0, 4, 128];

    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int NumAttentionHeads { get; init; }
    public int HeadDim { get; init; }
    public int RopeHeadDim { get; init; }
    public int QLoraRank { get; init; }
    public int OGroups { get; init; }
    public int OLoraRank { get; init; }
    public int SlidingWindow { get; init; }
    /// <summary>Per layer, main layers then MTP layers: 0, 4 or 128.</summary>
    public int[] CompressRatios { get; init; } = [];
    public int NRoutedExperts { get; init; }
    public int NSharedExperts { get; init; } = 1;
    public int NumExpertsPerTok { get; init; }
    public int MoeIntermediateSize { get; init; }
    public double RoutedScalingFactor { get; init; } = 1;
    public bool NormTopkProb { get; init; } = true;
    /// <summary>SwiGLU clamp of the routed experts per layer (0: none): up to [-L, L], gate to at most L.</summary>
    public float[] SwigluLimitRouted { get; init; } = [];
    /// <summary>SwiGLU clamp of the shared expert per layer (0: none; DeepSeek's reference does not clamp it).</summary>
    public float[] SwigluLimitShared { get; init; } = [];
    public int NumHashLayers { get; init; }
    public int IndexHeads { get; init; }
    public int IndexHeadDim { get; init; }
    public int IndexTopK { get; init; }
    public int HcMult { get; init; } = 4;
    public int HcSinkhornIters { get; init; } = 20;
    public double HcEps { get; init; } = 1e-6;
    public double RmsNormEps { get; init; } = 1e-6;
    public int NumNextnPredictLayers { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 4096;
    /// <summary>RoPE base of the sliding-window-only layers (no YaRN there).</summary>
    public double RopeTheta { get; init; } = 10000;
    /// <summary>RoPE base of the compressed layers (with YaRN when <see cref="YarnFactor"/> &gt; 1).</summary>
    public double CompressRopeTheta { get; init; } = 160000;
    public double YarnFactor { get; init; } = 1;
    public int YarnOriginalMaxPositions { get; init; }
    public double YarnBetaFast { get; init; } = 32;
    public double YarnBetaSlow { get; init; } = 1;
    public int? BosTokenId { get; init; }
    public int[] EosTokenIds { get; init; } = [];

    /// <summary>Width of the hyper-connection mix: (2 + Hc)·Hc (pre, post, Hc×Hc combination).</summary>
    public int HcMixDim => (2 + HcMult) * HcMult;

    /// <summary>Compression ratio of layer <paramref name="l"/>.</summary>
    public int Ratio(int l) => CompressRatios[l];

    /// <summary>Whether layer <paramref name="l"/> routes by the token-id table instead of its learned router.</summary>
    public bool IsHashLayer(int l) => l < NumHashLayers;

    /// <summary>Whether YaRN applies to the compressed layers' RoPE.</summary>
    public bool HasYarn => YarnFactor > 1 && YarnOriginalMaxPositions > 0;

    /// <summary>A hash layer's token → expert table as ints, every entry checked to name one of the routed experts.</summary>
    /// <exception cref="InvalidDataException">An entry outside [0, n_routed_experts), named with <paramref name="what"/>.</exception>
    public int[] ExpertTable(ReadOnlySpan<long> ids, string what)
    {
        var r = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            if ((ulong)ids[i] >= (ulong)NRoutedExperts)
                throw new InvalidDataException($"{what} names expert {ids[i]} at {i}; the model has {NRoutedExperts}");
            r[i] = (int)ids[i];
        }
        return r;
    }

    /// <summary>Reads and validates config.json of a model directory (or the file itself).</summary>
    public static V4Config Load(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file))
            throw new FileNotFoundException($"config.json not found: {file}", file);
        return Parse(File.ReadAllText(file), file);
    }

    /// <summary>Whether config.json text (or the file at <paramref name="path"/>) declares model_type deepseek_v4.</summary>
    public static bool IsV4ConfigFile(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file) || new FileInfo(file).Length > 1 << 20)
            return false;
        try
        {
            return JsonNode.Parse(File.ReadAllText(file)) is JsonObject o && o["model_type"]?.GetValueKind() == System.Text.Json.JsonValueKind.String
                && (string?)o["model_type"] == ModelType;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    /// <summary>Parses a deepseek_v4 config.json (the released key names); errors name the source and field.</summary>
    public static V4Config Parse(string json, string source = "config.json")
    {
        JsonObject o = ModelConfig.ParseObject(json, source);
        var r = new ModelConfig.Reader(o, source);
        string type = r.String("model_type") ?? throw r.Error("model_type", "is missing");
        if (type != ModelType)
            throw r.Error("model_type", $"is '{type}'; expected {ModelType}");
        string scoring = r.String("scoring_func") ?? "sqrtsoftplus";
        if (scoring != "sqrtsoftplus")
            throw r.Error("scoring_func", $"is '{scoring}'; DeepSeek-V4 routes with sqrtsoftplus");
        string act = r.String("hidden_act") ?? "silu";
        if (act != "silu")
            throw r.Error("hidden_act", $"is '{act}'; only silu (SwiGLU) is supported");
        int layers = r.Int("num_hidden_layers", min: 1);
        int nextn = r.IntOrNull("num_nextn_predict_layers") ?? 0;
        int[] ratios = r.IntList("compress_ratios");
        if (ratios.Length == 0)
            throw r.Error("compress_ratios", "is missing (released V4 configs list one ratio per layer, MTP layers included)");
        if (ratios.Length < layers)
            throw r.Error("compress_ratios", $"has {ratios.Length} entries for {layers} layers");
        // released configs list the MTP layers' ratios too; a missing one is sliding-window only, as DeepSeek's MTP block
        ratios = [.. ratios.Take(layers + nextn), .. Enumerable.Repeat(0, Math.Max(0, layers + nextn - ratios.Length))];
        float limit = (float)(r.Double("swiglu_limit") ?? 0);

        double theta = r.Double("rope_theta") ?? 10000, compressTheta = r.Double("compress_rope_theta") ?? 160000;
        double factor = 1, betaFast = 32, betaSlow = 1;
        int orig = 0;
        if (o["rope_scaling"] is JsonObject rs)
        {
            var sr = new ModelConfig.Reader(rs, source, "rope_scaling.");
            string rt = sr.String("rope_type") ?? sr.String("type") ?? "default";
            if (rt == "yarn")
            {
                factor = sr.Double("factor") ?? throw r.Error("rope_scaling.factor", "is missing for yarn");
                orig = sr.IntOrNull("original_max_position_embeddings") ?? throw r.Error("rope_scaling.original_max_position_embeddings", "is missing for yarn");
                betaFast = sr.Double("beta_fast") ?? 32;
                betaSlow = sr.Double("beta_slow") ?? 1;
            }
            else if (rt is not ("default" or "none"))
                throw r.Error("rope_scaling.type", $"is '{rt}'; supported: yarn, default");
        }

        var cfg = new V4Config
        {
            VocabSize = r.Int("vocab_size", min: 1),
            HiddenSize = r.Int("hidden_size", min: 1),
            NumHiddenLayers = layers,
            NumAttentionHeads = r.Int("num_attention_heads", min: 1),
            HeadDim = r.Int("head_dim", min: 1),
            RopeHeadDim = r.Int("qk_rope_head_dim", min: 0),
            QLoraRank = r.Int("q_lora_rank", min: 1),
            OGroups = r.Int("o_groups", min: 1),
            OLoraRank = r.Int("o_lora_rank", min: 1),
            SlidingWindow = r.Int("sliding_window", min: 1),
            CompressRatios = ratios,
            NRoutedExperts = r.Int("n_routed_experts", min: 1),
            NSharedExperts = r.IntOrNull("n_shared_experts") ?? 1,
            NumExpertsPerTok = r.Int("num_experts_per_tok", min: 1),
            MoeIntermediateSize = r.Int("moe_intermediate_size", min: 1),
            RoutedScalingFactor = r.Double("routed_scaling_factor") ?? 1,
            NormTopkProb = r.Bool("norm_topk_prob") ?? true,
            SwigluLimitRouted = Enumerable.Repeat(limit, layers + nextn).ToArray(),
            SwigluLimitShared = new float[layers + nextn],
            NumHashLayers = r.IntOrNull("num_hash_layers") ?? 0,
            IndexHeads = r.Int("index_n_heads", min: 1),
            IndexHeadDim = r.Int("index_head_dim", min: 1),
            IndexTopK = r.Int("index_topk", min: 1),
            HcMult = r.IntOrNull("hc_mult") ?? 4,
            HcSinkhornIters = r.IntOrNull("hc_sinkhorn_iters") ?? 20,
            HcEps = r.Double("hc_eps") ?? 1e-6,
            RmsNormEps = r.Double("rms_norm_eps") ?? 1e-6,
            NumNextnPredictLayers = nextn,
            MaxPositionEmbeddings = r.IntOrNull("max_position_embeddings") ?? 4096,
            RopeTheta = theta,
            CompressRopeTheta = compressTheta,
            YarnFactor = factor,
            YarnOriginalMaxPositions = orig,
            YarnBetaFast = betaFast,
            YarnBetaSlow = betaSlow,
            BosTokenId = r.IntOrNull("bos_token_id"),
            EosTokenIds = r.IntList("eos_token_id"),
        };
        cfg.Validate(source);
        return cfg;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming <paramref name="source"/> and the field on an inconsistent config.</summary>
    public void Validate(string source)
    {
        void Check(bool ok, string field, string msg)
        {
            if (!ok)
                throw new InvalidDataException($"{source}: field '{field}' {msg}");
        }
        // bounds keep every buffer sized from the config far below what a forward could allocate by mistake
        Check(VocabSize is > 0 and <= 1 << 24, "vocab_size", $"is {VocabSize}; must be in [1, 2^24]");
        Check(HiddenSize is > 0 and <= 1 << 16, "hidden_size", $"is {HiddenSize}; must be in [1, 65536]");
        Check(NumHiddenLayers is > 0 and <= 1024, "num_hidden_layers", $"is {NumHiddenLayers}; must be in [1, 1024]");
        Check(NumNextnPredictLayers is >= 0 and <= 16, "num_nextn_predict_layers", $"is {NumNextnPredictLayers}; must be in [0, 16]");
        Check(NumAttentionHeads is > 0 and <= 1024, "num_attention_heads", $"is {NumAttentionHeads}");
        Check(HeadDim is > 0 and <= 4096, "head_dim", $"is {HeadDim}");
        Check(RopeHeadDim >= 0 && RopeHeadDim <= HeadDim && RopeHeadDim % 2 == 0, "qk_rope_head_dim", $"is {RopeHeadDim}; must be even and at most head_dim {HeadDim}");
        Check(QLoraRank is > 0 and <= 1 << 16, "q_lora_rank", $"is {QLoraRank}");
        Check(OGroups > 0 && NumAttentionHeads % OGroups == 0, "o_groups", $"is {OGroups}; must divide num_attention_heads {NumAttentionHeads}");
        Check(OLoraRank is > 0 and <= 1 << 16, "o_lora_rank", $"is {OLoraRank}");
        Check(SlidingWindow is > 0 and <= 1 << 20, "sliding_window", $"is {SlidingWindow}");
        Check(CompressRatios.Length == NumHiddenLayers + NumNextnPredictLayers, "compress_ratios",
              $"has {CompressRatios.Length} entries; expected {NumHiddenLayers + NumNextnPredictLayers} (main and MTP layers)");
        for (int l = 0; l < CompressRatios.Length; l++)
            Check(Ratios.Contains(CompressRatios[l]), "compress_ratios", $"entry {l} is {CompressRatios[l]}; supported: 0, 4, 128");
        Check(NRoutedExperts is > 0 and <= 1 << 16, "n_routed_experts", $"is {NRoutedExperts}");
        Check(NumExpertsPerTok > 0 && NumExpertsPerTok <= NRoutedExperts, "num_experts_per_tok", $"is {NumExpertsPerTok}; must be in [1, {NRoutedExperts}]");
        Check(NSharedExperts is >= 0 and <= 16, "n_shared_experts", $"is {NSharedExperts}");
        Check(MoeIntermediateSize is > 0 and <= 1 << 20, "moe_intermediate_size", $"is {MoeIntermediateSize}");
        Check(NumHashLayers >= 0 && NumHashLayers <= NumHiddenLayers, "num_hash_layers", $"is {NumHashLayers}; must be in [0, {NumHiddenLayers}]");
        Check(IndexHeads is > 0 and <= 1024, "index_n_heads", $"is {IndexHeads}");
        Check(IndexHeadDim >= RopeHeadDim && IndexHeadDim <= 4096, "index_head_dim", $"is {IndexHeadDim}; must be at least qk_rope_head_dim {RopeHeadDim}");
        Check(IndexTopK is > 0 and <= 1 << 20, "index_topk", $"is {IndexTopK}");
        Check(HcMult is > 0 and <= 16, "hc_mult", $"is {HcMult}; must be in [1, 16]");
        Check(HcSinkhornIters is > 0 and <= 1000, "hc_sinkhorn_iters", $"is {HcSinkhornIters}; must be in [1, 1000]");
        Check(HcEps >= 0 && double.IsFinite(HcEps), "hc_eps", $"is {HcEps}");
        Check(RmsNormEps > 0 && double.IsFinite(RmsNormEps), "rms_norm_eps", $"is {RmsNormEps}");
        Check(YarnFactor >= 1, "rope_scaling.factor", $"is {YarnFactor}; must be >= 1");
        Check(SwigluLimitRouted.Length == CompressRatios.Length && SwigluLimitShared.Length == CompressRatios.Length, "swiglu_limit", "needs one value per layer");
        Check(MaxPositionEmbeddings > 0, "max_position_embeddings", $"is {MaxPositionEmbeddings}");
        if (BosTokenId is int b)
            Check(b >= 0 && b < VocabSize, "bos_token_id", $"is {b}; outside the vocabulary of {VocabSize}");
        foreach (int e in EosTokenIds)
            Check(e >= 0 && e < VocabSize, "eos_token_id", $"is {e}; outside the vocabulary of {VocabSize}");
    }
}
