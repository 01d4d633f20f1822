// config.json of DeepSeek-V2/V3-family checkpoints (deepseek_v2, deepseek_v3, kimi_k2), both the legacy
// (rope_scaling + rope_theta) and the transformers-5 (rope_parameters) spellings. Spec: docs/deepseek-architecture.md §1.
//
// Dimension letters used in kernels: T tokens, H hidden_size, Nh heads, Dn qk_nope_head_dim, Dr qk_rope_head_dim,
// Dv v_head_dim, Dq q_lora_rank, R kv_lora_rank (latent width), E routed experts, K experts per token,
// I dense intermediate size, Ie expert intermediate size, V vocabulary.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpSeek.Model;

/// <summary>How the router picks experts.</summary>
public enum TopKMethod
{
    /// <summary>Plain top-K over all experts (V2-Lite).</summary>
    Greedy,
    /// <summary>Groups scored by their maximum; top groups kept (V2, V2.5).</summary>
    GroupLimitedGreedy,
    /// <summary>Bias-corrected selection; groups scored by the sum of their top-2 (V3, R1, Kimi).</summary>
    NoAuxTc,
}

/// <summary>Router affinity function.</summary>
public enum ScoringFunc
{
    Softmax,
    Sigmoid,
}

/// <summary>Rotary embedding variant.</summary>
public enum RopeType
{
    /// <summary>Plain RoPE.</summary>
    Default,
    /// <summary>YaRN frequency blend with attention scaling.</summary>
    Yarn,
}

/// <summary>RoPE / YaRN parameters.</summary>
public sealed record RopeConfig
{
    public RopeType Type { get; init; } = RopeType.Default;
    public double Theta { get; init; } = 10000;
    public double Factor { get; init; } = 1;
    public int OriginalMaxPositions { get; init; }
    public double BetaFast { get; init; } = 32;
    public double BetaSlow { get; init; } = 1;
    public double? Mscale { get; init; }
    public double? MscaleAllDim { get; init; }
    /// <summary>Explicit cos/sin multiplier (transformers' <c>attention_factor</c>), if the config sets one.</summary>
    public double? AttentionFactor { get; init; }
    /// <summary>Round the YaRN correction range to integers (transformers' <c>truncate</c>, default true).</summary>
    public bool Truncate { get; init; } = true;
}

/// <summary>DeepSeek-V3.2's lightning indexer (DeepSeek Sparse Attention): <c>index_n_heads</c>, <c>index_head_dim</c>, <c>index_topk</c>.</summary>
public sealed record IndexerConfig(int Heads, int HeadDim, int TopK);

/// <summary>How the indexer scores (DeepSeek's reference quantizes its rotated q and k to FP8; llama.cpp keeps f32).</summary>
public enum IndexerPrecision
{
    /// <summary>Hadamard-rotated q and k as FP8 e4m3 with one scale per 128 values, as DeepSeek's inference/model.py.</summary>
    Fp8,
    /// <summary>fp32 throughout, as llama.cpp (and, without the rotation, which does not change the scores, transformers).</summary>
    F32,
}

/// <summary>FP8 block quantization settings (<c>quantization_config</c>).</summary>
public sealed record QuantizationConfig(string Method, string Format, int BlockRows, int BlockCols, string ActivationScheme);

/// <summary>A validated DeepSeek-family model configuration.</summary>
public sealed record ModelConfig
{
    public string ModelType { get; init; } = "deepseek_v3";
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int MoeIntermediateSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int NumAttentionHeads { get; init; }
    /// <summary>0 means no query compression (q_lora_rank null): a single q_proj.</summary>
    public int QLoraRank { get; init; }
    public int KvLoraRank { get; init; }
    public int QkNopeHeadDim { get; init; }
    public int QkRopeHeadDim { get; init; }
    public int VHeadDim { get; init; }
    public int NRoutedExperts { get; init; }
    public int NSharedExperts { get; init; }
    public int NumExpertsPerTok { get; init; }
    public int NGroup { get; init; } = 1;
    public int TopkGroup { get; init; } = 1;
    public TopKMethod TopkMethod { get; init; } = TopKMethod.Greedy;
    public ScoringFunc ScoringFunc { get; init; } = ScoringFunc.Softmax;
    public bool NormTopkProb { get; init; }
    public double RoutedScalingFactor { get; init; } = 1;
    public int FirstKDenseReplace { get; init; }
    public int MoeLayerFreq { get; init; } = 1;
    public int NumNextnPredictLayers { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public double RmsNormEps { get; init; } = 1e-6;
    public int MaxPositionEmbeddings { get; init; } = 4096;
    public RopeConfig Rope { get; init; } = new();
    public QuantizationConfig? Quantization { get; init; }
    public int? BosTokenId { get; init; }
    public int[] EosTokenIds { get; init; } = [];
    /// <summary>Aux-loss coefficient from the config (training only).</summary>
    public double AuxLossAlpha { get; init; }
    /// <summary>The lightning indexer of each layer (deepseek_v32), else null.</summary>
    public IndexerConfig? Indexer { get; init; }
    /// <summary>The indexer's arithmetic (a load option, not a config.json field).</summary>
    public IndexerPrecision IndexerPrecision { get; init; } = IndexerPrecision.Fp8;

    /// <summary>Dn + Dr, the per-head query/key width.</summary>
    public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    /// <summary>Values cached per token per layer by MLA: R + Dr.</summary>
    public int LatentDim => KvLoraRank + QkRopeHeadDim;

    /// <summary>Whether the router's top-K weights are normalized XOR scaled (DeepSeek-V2's remote code: normalized when
    /// norm_topk_prob and K > 1, else multiplied by routed_scaling_factor); the V3 family normalizes, then always scales.</summary>
    public bool RouterNormalizesXorScales => ModelType == "deepseek_v2";

    /// <summary>Whether decoder layer <paramref name="layer"/> uses MoE (else the dense MLP).</summary>
    public bool IsMoeLayer(int layer) =>
        NRoutedExperts > 0 && layer >= FirstKDenseReplace && layer % MoeLayerFreq == 0;

    /// <summary>The architecture descriptor of the config's family: tensor names, shapes and format rules.</summary>
    public Architecture.ArchitectureDescriptor GetArchitecture() => Architecture.ArchitectureDescriptor.For(this);

    /// <summary>The family's addition to MLA (V3.2's indexer), or null.</summary>
    public Layers.IAttentionVariant? GetAttentionVariant() => GetArchitecture().Attention?.Invoke(this);

    /// <summary>Eps of q_a_layernorm and kv_a_layernorm: 1e-6, as transformers and DeepSeek's code build them (docs/deepseek-architecture.md §7.4).</summary>
    public const double LatentNormEps = 1e-6;

    /// <summary>YaRN mscale: 1 if factor ≤ 1, else 0.1·m·ln(factor) + 1.</summary>
    public static double YarnMscale(double factor, double m) => factor <= 1 ? 1 : 0.1 * m * Math.Log(factor) + 1;

    /// <summary>Multiplier on cos/sin of RoPE (transformers' attention_factor).</summary>
    public double RopeAttentionFactor
    {
        get
        {
            if (Rope.Type != RopeType.Yarn)
                return 1;
            if (Rope.AttentionFactor is double af)
                return af;
            if (Rope.Mscale is double m && m != 0 && Rope.MscaleAllDim is double ma && ma != 0)
                return YarnMscale(Rope.Factor, m) / YarnMscale(Rope.Factor, ma);
            return YarnMscale(Rope.Factor, 1);
        }
    }

    /// <summary>Softmax scale σ = (Dn+Dr)^-½ · mscale(factor, mscale_all_dim)² (the second factor only with YaRN and mscale_all_dim).</summary>
    public double SoftmaxScale
    {
        get
        {
            double s = 1.0 / Math.Sqrt(QkHeadDim);
            if (Rope.Type == RopeType.Yarn && Rope.MscaleAllDim is double ma && ma != 0)
            {
                double m = YarnMscale(Rope.Factor, ma);
                s *= m * m;
            }
            return s;
        }
    }

    /// <summary>Reads and validates <c>config.json</c> in a model directory (or a path to the file itself, or a .gguf file's metadata).</summary>
    public static ModelConfig Load(string path)
    {
        if (Gguf.GgufModel.IsGgufPath(path))
            return Gguf.GgufModel.LoadConfig(path);
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file))
            throw new FileNotFoundException($"config.json not found: {file}", file);
        return Parse(File.ReadAllText(file), file);
    }

    /// <summary>Parses and validates config.json text; errors name <paramref name="source"/> and the field.</summary>
    public static ModelConfig Parse(string json, string source = "config.json")
    {
        JsonObject o = ParseObject(json, source);
        var r = new Reader(o, source);
        string modelType = r.String("model_type") ?? throw r.Error("model_type", "is missing");
        if (modelType == V4.V4Config.ModelType)
            throw r.Error("model_type", $"is '{modelType}': a DeepSeek-V4 model, which runs through SharpSeek.Model.V4 (V4Config, V4Transformer), not ModelConfig and the V2/V3 Transformer (in the sharpseek tool: generate, chat, logits, inspect, bench, convert)");
        if (!Architecture.ArchitectureDescriptor.All.Any(a => a.ModelTypes.Contains(modelType)))
            throw r.Error("model_type", $"is '{modelType}'; supported: {string.Join(", ", Architecture.ArchitectureDescriptor.All.SelectMany(a => a.ModelTypes))}, {V4.V4Config.ModelType}");
        return Parse(o, r, modelType, source);
    }

    /// <summary>
    /// A config file's text (config.json; with <paramref name="allowComments"/> the training configs) as a JSON object,
    /// every string unescaped, so that a key given twice or an unpaired surrogate escape is refused here, naming
    /// <paramref name="source"/>, not on first use.
    /// </summary>
    public static JsonObject ParseObject(string json, string source, bool allowComments = false)
    {
        JsonObject o;
        try
        {
            var options = new JsonDocumentOptions
            {
                AllowTrailingCommas = true,
                MaxDepth = 32,
                AllowDuplicateProperties = false,
                CommentHandling = allowComments ? JsonCommentHandling.Skip : JsonCommentHandling.Disallow,
            };
            o = JsonNode.Parse(json, documentOptions: options) as JsonObject
                ?? throw new InvalidDataException($"{source}: not a JSON object");
            Materialize(o);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e) // JsonNode unescapes lazily: a lone surrogate escape ("\ud800") fails on first access
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
        return o;
    }

    private static ModelConfig Parse(JsonObject o, Reader r, string modelType, string source)
    {

        int nRouted = r.IntOrNull("n_routed_experts") ?? 0;
        string topk = r.String("topk_method") ?? (modelType == "deepseek_v2" ? "greedy" : "noaux_tc");
        TopKMethod method = topk switch
        {
            "greedy" => TopKMethod.Greedy,
            "group_limited_greedy" => TopKMethod.GroupLimitedGreedy,
            "noaux_tc" => TopKMethod.NoAuxTc,
            _ => throw r.Error("topk_method", $"is '{topk}'; expected greedy, group_limited_greedy or noaux_tc"),
        };
        string scoring = r.String("scoring_func") ?? (modelType == "deepseek_v2" ? "softmax" : "sigmoid");
        ScoringFunc sf = scoring switch
        {
            "softmax" => ScoringFunc.Softmax,
            "sigmoid" => ScoringFunc.Sigmoid,
            _ => throw r.Error("scoring_func", $"is '{scoring}'; expected softmax or sigmoid"),
        };
        string act = r.String("hidden_act") ?? "silu";
        if (act != "silu")
            throw r.Error("hidden_act", $"is '{act}'; only silu (SwiGLU) is supported");
        if (r.Bool("attention_bias") == true)
            throw r.Error("attention_bias", "is true; DeepSeek releases have no attention biases and this engine does not load them");
        if (o["rope_interleave"] is JsonNode ri && ri.GetValueKind() == JsonValueKind.False)
            throw r.Error("rope_interleave", "is false; only checkpoints with interleaved RoPE pairs (every DeepSeek release) are supported");

        var cfg = new ModelConfig
        {
            ModelType = modelType,
            VocabSize = r.Int("vocab_size", min: 1),
            HiddenSize = r.Int("hidden_size", min: 1),
            IntermediateSize = r.IntOrNull("intermediate_size") ?? 0,
            MoeIntermediateSize = r.IntOrNull("moe_intermediate_size") ?? 0,
            NumHiddenLayers = r.Int("num_hidden_layers", min: 1),
            NumAttentionHeads = r.Int("num_attention_heads", min: 1),
            QLoraRank = r.IntOrNull("q_lora_rank") ?? 0,
            KvLoraRank = r.Int("kv_lora_rank", min: 1),
            QkNopeHeadDim = r.Int("qk_nope_head_dim", min: 0),
            QkRopeHeadDim = r.Int("qk_rope_head_dim", min: 0),
            VHeadDim = r.Int("v_head_dim", min: 1),
            NRoutedExperts = nRouted,
            NSharedExperts = r.IntOrNull("n_shared_experts") ?? 0,
            NumExpertsPerTok = r.IntOrNull("num_experts_per_tok") ?? 0,
            NGroup = r.IntOrNull("n_group") ?? 1,
            TopkGroup = r.IntOrNull("topk_group") ?? 1,
            TopkMethod = method,
            ScoringFunc = sf,
            NormTopkProb = r.Bool("norm_topk_prob") ?? false,
            RoutedScalingFactor = r.Double("routed_scaling_factor") ?? 1.0,
            FirstKDenseReplace = r.IntOrNull("first_k_dense_replace") ?? 0,
            MoeLayerFreq = r.IntOrNull("moe_layer_freq") ?? 1,
            NumNextnPredictLayers = r.IntOrNull("num_nextn_predict_layers") ?? 0,
            TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? false,
            RmsNormEps = r.Double("rms_norm_eps") ?? 1e-6,
            MaxPositionEmbeddings = r.IntOrNull("max_position_embeddings") ?? 4096,
            Rope = ParseRope(o, r),
            Quantization = ParseQuantization(o, r),
            BosTokenId = r.IntOrNull("bos_token_id"),
            EosTokenIds = r.IntList("eos_token_id"),
            AuxLossAlpha = r.Double("aux_loss_alpha") ?? 0,
            Indexer = modelType == "deepseek_v32"
                ? new IndexerConfig(r.Int("index_n_heads", min: 1), r.Int("index_head_dim", min: 1), r.Int("index_topk", min: 1))
                : null,
        };
        cfg.Validate(source);
        return cfg;
    }

    private static RopeConfig ParseRope(JsonObject o, Reader r)
    {
        // transformers 5: rope_parameters holds rope_type, rope_theta and the YaRN keys; legacy: rope_scaling + rope_theta.
        string key = o["rope_parameters"] is JsonObject ? "rope_parameters" : "rope_scaling";
        double theta = r.Double("rope_theta") ?? 10000;
        if (o[key] is not JsonObject rs)
        {
            if (o[key] is JsonNode bad && bad.GetValueKind() != JsonValueKind.Null)
                throw r.Error(key, "must be an object or null");
            return new RopeConfig { Theta = theta };
        }
        var sr = new Reader(rs, r.Source, key + ".");
        theta = sr.Double("rope_theta") ?? theta;
        string type = sr.String("rope_type") ?? sr.String("type") ?? "default";
        if (type is "default" or "none")
            return new RopeConfig { Theta = theta };
        if (type != "yarn")
            throw r.Error(key + ".rope_type", $"is '{type}'; supported: yarn, default");
        double factor = sr.Double("factor") ?? throw r.Error(key + ".factor", "is missing for yarn");
        if (!(factor >= 1))
            throw r.Error(key + ".factor", $"is {factor}; YaRN needs a factor >= 1");
        int orig = sr.IntOrNull("original_max_position_embeddings") ?? throw r.Error(key + ".original_max_position_embeddings", "is missing for yarn");
        if (orig <= 0)
            throw r.Error(key + ".original_max_position_embeddings", $"is {orig}; must be positive");
        return new RopeConfig
        {
            Type = RopeType.Yarn,
            Theta = theta,
            Factor = factor,
            OriginalMaxPositions = orig,
            BetaFast = sr.Double("beta_fast") ?? 32,
            BetaSlow = sr.Double("beta_slow") ?? 1,
            Mscale = sr.Double("mscale"),
            MscaleAllDim = sr.Double("mscale_all_dim"),
            AttentionFactor = sr.Double("attention_factor"),
            Truncate = sr.Bool("truncate") ?? true,
        };
    }

    private static QuantizationConfig? ParseQuantization(JsonObject o, Reader r)
    {
        if (o["quantization_config"] is not JsonObject q)
        {
            if (o["quantization_config"] is JsonNode bad && bad.GetValueKind() != JsonValueKind.Null)
                throw r.Error("quantization_config", "must be an object or null");
            return null;
        }
        var qr = new Reader(q, r.Source, "quantization_config.");
        string method = qr.String("quant_method") ?? throw r.Error("quantization_config.quant_method", "is missing");
        if (method != "fp8")
            throw r.Error("quantization_config.quant_method", $"is '{method}'; only fp8 (DeepSeek block-scaled e4m3) is supported");
        string fmt = qr.String("fmt") ?? "e4m3";
        if (fmt != "e4m3")
            throw r.Error("quantization_config.fmt", $"is '{fmt}'; only e4m3 is supported");
        int[] block = qr.IntList("weight_block_size");
        if (block.Length == 0)
            block = [128, 128];
        if (block.Length != 2 || block[0] <= 0 || block[1] <= 0)
            throw r.Error("quantization_config.weight_block_size", "must be two positive integers");
        string act = qr.String("activation_scheme") ?? "dynamic";
        return new QuantizationConfig(method, fmt, block[0], block[1], act);
    }

    /// <summary>Checks the relations between fields; throws naming the field.</summary>
    public void Validate(string source = "config.json")
    {
        InvalidDataException Err(string field, string msg) => new($"{source}: field '{field}' {msg}");
        if (QkRopeHeadDim % 2 != 0)
            throw Err("qk_rope_head_dim", $"is {QkRopeHeadDim}; RoPE needs an even width");
        if (QkHeadDim <= 0)
            throw Err("qk_nope_head_dim", "plus qk_rope_head_dim must be positive");
        if (QLoraRank < 0)
            throw Err("q_lora_rank", $"is {QLoraRank}; must be null or positive");
        if (FirstKDenseReplace < 0)
            throw Err("first_k_dense_replace", $"is {FirstKDenseReplace}; must be >= 0");
        if (MoeLayerFreq < 1)
            throw Err("moe_layer_freq", $"is {MoeLayerFreq}; must be >= 1");
        if (NumNextnPredictLayers < 0)
            throw Err("num_nextn_predict_layers", $"is {NumNextnPredictLayers}; must be >= 0");
        // layer counts size per-layer arrays (and the loop below) before any tensor is looked up: an untrusted count
        // of 10^9 would allocate gigabytes; bounded as the GGUF reader bounds block_count
        const int MaxLayers = 1 << 16;
        if (NumHiddenLayers > MaxLayers)
            throw Err("num_hidden_layers", $"is {NumHiddenLayers}; at most {MaxLayers} are supported");
        if (NumNextnPredictLayers > MaxLayers)
            throw Err("num_nextn_predict_layers", $"is {NumNextnPredictLayers}; at most {MaxLayers} are supported");
        if (!(RmsNormEps > 0))
            throw Err("rms_norm_eps", $"is {RmsNormEps}; must be positive");
        bool anyDense = false, anyMoe = false;
        for (int l = 0; l < NumHiddenLayers + NumNextnPredictLayers; l++)
        {
            if (l < NumHiddenLayers && IsMoeLayer(l)) anyMoe = true;
            else if (l < NumHiddenLayers) anyDense = true;
        }
        if (anyDense && IntermediateSize <= 0)
            throw Err("intermediate_size", $"is {IntermediateSize}; dense layers need a positive width");
        if (anyMoe || NumNextnPredictLayers > 0)
        {
            if (NRoutedExperts <= 0)
                throw Err("n_routed_experts", $"is {NRoutedExperts}; MoE layers need experts");
            if (MoeIntermediateSize <= 0)
                throw Err("moe_intermediate_size", $"is {MoeIntermediateSize}; must be positive");
            if (NumExpertsPerTok < 1 || NumExpertsPerTok > NRoutedExperts)
                throw Err("num_experts_per_tok", $"is {NumExpertsPerTok}; must be in [1, n_routed_experts = {NRoutedExperts}]");
            if (NSharedExperts < 0)
                throw Err("n_shared_experts", $"is {NSharedExperts}; must be >= 0");
            if (NGroup < 1 || NRoutedExperts % NGroup != 0)
                throw Err("n_group", $"is {NGroup}; must divide n_routed_experts = {NRoutedExperts}");
            if (TopkGroup < 1 || TopkGroup > NGroup)
                throw Err("topk_group", $"is {TopkGroup}; must be in [1, n_group = {NGroup}]");
            if (TopkMethod != TopKMethod.Greedy && NumExpertsPerTok > TopkGroup * (NRoutedExperts / NGroup))
                throw Err("num_experts_per_tok", $"is {NumExpertsPerTok}, more than the {TopkGroup * (NRoutedExperts / NGroup)} experts of the topk_group kept groups");
            if (TopkMethod == TopKMethod.NoAuxTc && NRoutedExperts / NGroup < 2)
                throw Err("n_group", $"is {NGroup}; noaux_tc scores a group by its top-2 experts, so groups need at least 2 experts");
            if (TopkMethod == TopKMethod.NoAuxTc && ScoringFunc != ScoringFunc.Sigmoid)
                throw Err("scoring_func", "must be sigmoid with topk_method noaux_tc");
            if (!(RoutedScalingFactor > 0))
                throw Err("routed_scaling_factor", $"is {RoutedScalingFactor}; must be positive");
        }
        if (Rope.Type == RopeType.Yarn && !(Rope.BetaFast > 0 && Rope.BetaSlow > 0))
            throw Err("rope_scaling.beta_fast", "and beta_slow must be positive");
        if (!(Rope.Theta > 1))
            throw Err("rope_theta", $"is {Rope.Theta}; must be > 1");
        if (Indexer is { } ix)
        {
            if (QLoraRank <= 0)
                throw Err("q_lora_rank", "must be set: the indexer's queries come from MLA's query latent");
            if (ix.HeadDim < QkRopeHeadDim || ix.HeadDim % 2 != 0)
                throw Err("index_head_dim", $"is {ix.HeadDim}; must be even and at least qk_rope_head_dim = {QkRopeHeadDim}");
            if ((ix.HeadDim & (ix.HeadDim - 1)) != 0)
                throw Err("index_head_dim", $"is {ix.HeadDim}; the Hadamard rotation needs a power of two");
        }
        // widths that are multiplied into one matrix dimension must fit an int (a config or GGUF header is untrusted)
        if ((long)NumAttentionHeads * Math.Max(QkHeadDim, QkNopeHeadDim + VHeadDim) > int.MaxValue)
            throw Err("num_attention_heads", $"is {NumAttentionHeads}; times the head width {Math.Max(QkHeadDim, QkNopeHeadDim + VHeadDim)} it overflows a matrix dimension");
        if ((long)MoeIntermediateSize * NSharedExperts > int.MaxValue)
            throw Err("n_shared_experts", $"is {NSharedExperts}; times moe_intermediate_size {MoeIntermediateSize} it overflows a matrix dimension");
        if ((long)KvLoraRank + QkRopeHeadDim > int.MaxValue || 2L * HiddenSize > int.MaxValue)
            throw Err("kv_lora_rank", "or hidden_size is too large for a matrix dimension");
        if (BosTokenId is int b && (b < 0 || b >= VocabSize))
            throw Err("bos_token_id", $"is {b}; outside the vocabulary of {VocabSize}");
        foreach (int e in EosTokenIds)
        {
            if (e < 0 || e >= VocabSize)
                throw Err("eos_token_id", $"is {e}; outside the vocabulary of {VocabSize}");
        }
    }

    /// <summary>Serializes to config.json (legacy rope_scaling spelling, as real checkpoints write it).</summary>
    public string ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(GetArchitecture().HfArchitecture),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["moe_intermediate_size"] = MoeIntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumAttentionHeads,
            ["n_shared_experts"] = NSharedExperts,
            ["n_routed_experts"] = NRoutedExperts,
            ["num_experts_per_tok"] = NumExpertsPerTok,
            ["n_group"] = NGroup,
            ["topk_group"] = TopkGroup,
            ["routed_scaling_factor"] = RoutedScalingFactor,
            ["norm_topk_prob"] = NormTopkProb,
            ["scoring_func"] = ScoringFunc == ScoringFunc.Sigmoid ? "sigmoid" : "softmax",
            ["topk_method"] = TopkMethod switch { TopKMethod.NoAuxTc => "noaux_tc", TopKMethod.GroupLimitedGreedy => "group_limited_greedy", _ => "greedy" },
            ["first_k_dense_replace"] = FirstKDenseReplace,
            ["moe_layer_freq"] = MoeLayerFreq,
            ["q_lora_rank"] = QLoraRank > 0 ? QLoraRank : null,
            ["kv_lora_rank"] = KvLoraRank,
            ["qk_nope_head_dim"] = QkNopeHeadDim,
            ["qk_rope_head_dim"] = QkRopeHeadDim,
            ["v_head_dim"] = VHeadDim,
            ["hidden_act"] = "silu",
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = Rope.Theta,
            ["rope_scaling"] = Rope.Type == RopeType.Yarn ? RopeJson() : null,
            ["attention_bias"] = false,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["num_nextn_predict_layers"] = NumNextnPredictLayers,
            ["bos_token_id"] = BosTokenId,
            ["eos_token_id"] = EosTokenIds.Length == 1 ? EosTokenIds[0] : EosTokenIds.Length == 0 ? null : new JsonArray(EosTokenIds.Select(e => (JsonNode?)e).ToArray()),
        };
        if (AuxLossAlpha != 0)
            o["aux_loss_alpha"] = AuxLossAlpha;
        if (Indexer is { } ix)
        {
            o["index_n_heads"] = ix.Heads;
            o["index_head_dim"] = ix.HeadDim;
            o["index_topk"] = ix.TopK;
        }
        if (Quantization is { } q)
        {
            o["quantization_config"] = new JsonObject
            {
                ["activation_scheme"] = q.ActivationScheme,
                ["fmt"] = q.Format,
                ["quant_method"] = q.Method,
                ["weight_block_size"] = new JsonArray(q.BlockRows, q.BlockCols),
            };
        }
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private JsonObject RopeJson()
    {
        var y = new JsonObject
        {
            ["type"] = "yarn",
            ["factor"] = Rope.Factor,
            ["original_max_position_embeddings"] = Rope.OriginalMaxPositions,
            ["beta_fast"] = Rope.BetaFast,
            ["beta_slow"] = Rope.BetaSlow,
        };
        if (Rope.Mscale is double m) y["mscale"] = m;
        if (Rope.MscaleAllDim is double ma) y["mscale_all_dim"] = ma;
        if (Rope.AttentionFactor is double af) y["attention_factor"] = af;
        return y;
    }

    // JsonNode builds objects and unescapes strings on first access; walking the tree once here makes every such error
    // (a duplicate key, an unpaired surrogate escape) surface inside Parse's catch as a JSON error naming the file
    private static void Materialize(JsonNode? n)
    {
        switch (n)
        {
            case JsonObject o:
                foreach (KeyValuePair<string, JsonNode?> kv in o)
                    Materialize(kv.Value);
                break;
            case JsonArray a:
                foreach (JsonNode? e in a)
                    Materialize(e);
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                v.GetValue<string>();
                break;
        }
    }

    /// <summary>Typed field access with errors that name the field.</summary>
    internal sealed class Reader(JsonObject o, string source, string prefix = "")
    {
        public string Source => source;

        public InvalidDataException Error(string field, string msg) => new($"{source}: field '{field}' {msg}");

        private JsonNode? Get(string key) => o[key] is JsonNode n && n.GetValueKind() != JsonValueKind.Null ? n : null;

        public string? String(string key)
        {
            JsonNode? n = Get(key);
            if (n is null) return null;
            return n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : throw Error(prefix + key, $"must be a string, got {n.ToJsonString()}");
        }

        public double? Double(string key)
        {
            JsonNode? n = Get(key);
            if (n is null) return null;
            if (n.GetValueKind() != JsonValueKind.Number)
                throw Error(prefix + key, $"must be a number, got {n.ToJsonString()}");
            double v = n.GetValue<double>();
            return double.IsFinite(v) ? v : throw Error(prefix + key, "must be finite");
        }

        public bool? Bool(string key)
        {
            JsonNode? n = Get(key);
            if (n is null) return null;
            return n.GetValueKind() switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Error(prefix + key, $"must be true or false, got {n.ToJsonString()}"),
            };
        }

        public int? IntOrNull(string key)
        {
            JsonNode? n = Get(key);
            if (n is null) return null;
            if (n.GetValueKind() != JsonValueKind.Number)
                throw Error(prefix + key, $"must be an integer, got {n.ToJsonString()}");
            double v = n.GetValue<double>();
            if (v != Math.Floor(v) || v < int.MinValue || v > int.MaxValue)
                throw Error(prefix + key, $"must be an integer, got {n.ToJsonString()}");
            return (int)v;
        }

        public int Int(string key, int min)
        {
            int v = IntOrNull(key) ?? throw Error(prefix + key, "is missing");
            return v >= min ? v : throw Error(prefix + key, $"is {v}; must be >= {min}");
        }

        public int[] IntList(string key)
        {
            JsonNode? n = Get(key);
            if (n is null) return [];
            if (n is JsonArray a)
                return a.Select((e, i) => e is not null && e.GetValueKind() == JsonValueKind.Number && e.GetValue<double>() == Math.Floor(e.GetValue<double>())
                    ? (int)e.GetValue<double>() : throw Error(prefix + key, $"element {i} must be an integer")).ToArray();
            return [IntOrNull(key)!.Value];
        }
    }
}
