// Loading a GGUF deepseek2 file (as llama.cpp's converter writes it, docs/deepseek-architecture.md §9) as a SharpSeek model: metadata ->
// ModelConfig, tensors -> an IWeightSource keyed by Hugging Face checkpoint names. Tensors are used in place from
// the memory map (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS); stacked experts are sliced as views; kv_b_proj is
// rebuilt from the split attn_k_b / attn_v_b (a small [Nh·(Dn+Dv), R] matrix, materialized exactly: in bf16 when a
// half is BF16 and the other not F32 / F16, else in fp32) or taken from a legacy attn_kv_b. Quantized halves also serve
// the absorbed decode as stored (SplitKvBMatrix: fewer bytes a token than a copy, and their exact values).
// Tensor names and storage kinds come from the config's architecture descriptor; GgufModel.Open (GgufModelFile)
// parses a file once for its configuration, tokenizer and weights.
using SharpSeek.Formats.Gguf;
using SharpSeek.Model.Architecture;
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;
using SharpSeek.Tokenizer;

namespace SharpSeek.Model.Gguf;

/// <summary>deepseek2 GGUF files as models.</summary>
public static class GgufModel
{
    /// <summary>The architecture name llama.cpp uses for DeepSeek-V2/V3-family models.</summary>
    public const string Architecture = "deepseek2";


    /// <summary>True for a path that names a GGUF file (by its extension), which loaders take instead of a directory.</summary>
    public static bool IsGgufPath(string path) =>
        path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) && !Directory.Exists(path);

    /// <summary>
    /// Opens a GGUF file once for its configuration, tokenizer and weights (each read on first use). Dispose it when
    /// done; weights loaded from it keep the mapping alive until they are disposed too.
    /// </summary>
    /// <param name="path">The .gguf file.</param>
    public static GgufModelFile Open(string path) => new(GgufFile.Open(path));

    /// <summary>Reads the model configuration of a GGUF file.</summary>
    public static ModelConfig LoadConfig(string path)
    {
        using GgufModelFile m = Open(path);
        return m.Config;
    }

    /// <summary>Reads the tokenizer of a GGUF file (null when it has none).</summary>
    public static BpeTokenizer? LoadTokenizer(string path)
    {
        using GgufModelFile m = Open(path);
        return m.Tokenizer;
    }

    /// <summary>The tokenizer of a model path: the tokenizer stored in a .gguf file, else tokenizer.json
    /// (+ tokenizer_config.json) of a checkpoint directory.</summary>
    /// <exception cref="InvalidDataException">A GGUF file without tokenizer metadata.</exception>
    public static BpeTokenizer LoadTokenizerFor(string modelPath)
    {
        if (!IsGgufPath(modelPath))
            return BpeTokenizer.LoadFromDirectory(modelPath);
        using GgufModelFile m = Open(modelPath);
        return m.RequireTokenizer();
    }

    /// <summary>As <see cref="LoadTokenizerFor"/>, but null when the path has no tokenizer (a .gguf file without
    /// tokenizer metadata, a directory without tokenizer.json); the file is read once either way.</summary>
    public static BpeTokenizer? TryLoadTokenizerFor(string modelPath)
    {
        if (IsGgufPath(modelPath))
            return LoadTokenizer(modelPath);
        return File.Exists(Path.Combine(modelPath, "tokenizer.json")) ? BpeTokenizer.LoadFromDirectory(modelPath) : null;
    }

    /// <summary>Opens a GGUF file and loads its weights (views into the mapping unless <paramref name="options"/> converts them).</summary>
    /// <param name="path">The .gguf file.</param>
    /// <param name="config">The configuration to build; null reads it from the file.</param>
    /// <param name="options">Load options (Dtype converts the linear layers as for checkpoints).</param>
    public static ModelWeights Load(string path, ModelConfig? config = null, LoadOptions? options = null)
    {
        using GgufModelFile m = Open(path);
        return config is null ? m.LoadWeights(options) : m.LoadWeights(config, options);
    }

    /// <summary>Builds the weights of <paramref name="config"/> from an open file; <paramref name="owners"/> holds what keeps them alive.</summary>
    internal static ModelWeights Load(GgufFile f, ModelConfig config, LoadOptions? options, WeightLoader.OwnerList owners)
    {
        config = options?.Apply(config) ?? config;
        var stored = new GgufWeightSource(f, config, owners);
        IWeightSource src = options?.Dtype is WeightFormat fmt ? new WeightLoader.ConvertingSource(stored, fmt, owners, config.GetArchitecture()) : stored;
        ModelWeights w = WeightLoader.Build(config, src, owners);
        stored.CheckAllUsed();
        return w;
    }

    /// <summary>Maps deepseek2 metadata to a <see cref="ModelConfig"/> (docs/deepseek-architecture.md §9), validated.</summary>
    /// <exception cref="NotSupportedException">Another architecture, or a feature SharpSeek does not run.</exception>
    /// <exception cref="InvalidDataException">A required key is missing or inconsistent (named with the file).</exception>
    public static ModelConfig ReadConfig(GgufFile f)
    {
        string arch = f.GetString("general.architecture") ?? throw Missing(f, "general.architecture");
        if (arch == V4.V4Config.GgufArchitecture)
            throw new NotSupportedException($"{f.FilePath}: a DeepSeek-V4 model (deepseek4), which runs through SharpSeek.Model.V4 (V4Gguf, V4Transformer), not the V2/V3 Transformer (in the sharpseek tool: generate, chat, logits, inspect, bench, convert)");
        if (ArchitectureDescriptor.ForGguf(arch) is not ArchitectureDescriptor family)
            throw new NotSupportedException($"{f.FilePath}: general.architecture is '{arch}'; SharpSeek runs {string.Join(", ", ArchitectureDescriptor.All.Select(a => a.GgufArchitecture).Distinct())}");
        string A = arch + ".";
        int Req(string key, int min = 0) => (int)(f.GetInteger(A + key, min, int.MaxValue) ?? throw Missing(f, A + key));
        int Opt(string key, int fallback, int min = 0) => (int)(f.GetInteger(A + key, min, int.MaxValue) ?? fallback);

        // counts that size arrays are bounded by what the file can hold before anything is allocated from them
        int layers = Req("block_count", 1);
        if (layers > 1 << 16)
            throw new InvalidDataException($"{f.FilePath}: {A}block_count is {layers}; at most {1 << 16} are supported");
        // deepseek32 files may append the MTP blocks (nextn_predict_layers) after the main ones; SharpSeek reads the
        // main model and leaves those blocks unread (GgufWeightSource.CheckAllUsed)
        int nextn = Opt("nextn_predict_layers", 0);
        if (nextn >= layers)
            throw new InvalidDataException($"{f.FilePath}: {A}nextn_predict_layers is {nextn}, not fewer than block_count {layers}");
        layers -= nextn;
        int heads = Req("attention.head_count", 1);
        int rope = Req("rope.dimension_count");
        // split-MLA files carry the per-head sizes as *_mla; legacy files as the plain MHA key/value lengths
        int kLen = f.Get(A + "attention.key_length_mla") is not null ? Req("attention.key_length_mla", 1) : Req("attention.key_length", 1);
        int vLen = f.Get(A + "attention.value_length_mla") is not null ? Req("attention.value_length_mla", 1) : Req("attention.value_length", 1);
        if (kLen <= rope)
            throw new InvalidDataException($"{f.FilePath}: key length {kLen} is not larger than rope.dimension_count {rope}");
        int experts = Opt("expert_count", 0);
        if (experts > 1 << 16)
            throw new InvalidDataException($"{f.FilePath}: {A}expert_count is {experts}; at most {1 << 16} are supported");
        uint gating = (uint)Opt("expert_gating_func", 1);
        ScoringFunc scoring = gating switch
        {
            1 => ScoringFunc.Softmax,
            2 => ScoringFunc.Sigmoid,
            _ => throw new NotSupportedException($"{f.FilePath}: {A}expert_gating_func is {gating}; supported: 1 (softmax), 2 (sigmoid)"),
        };
        int groups = Math.Max(1, Opt("expert_group_count", 1));
        int groupsUsed = Math.Max(1, Opt("expert_group_used_count", groups));
        TopKMethod method = scoring == ScoringFunc.Sigmoid ? TopKMethod.NoAuxTc
            : groups > 1 ? TopKMethod.GroupLimitedGreedy : TopKMethod.Greedy;
        string[]? tokens = f.GetStringArray("tokenizer.ggml.tokens");
        int vocab = (int)(f.GetInteger(A + "vocab_size", 1, int.MaxValue) ?? tokens?.Length
            ?? (f.TryGetTensor(family.GgufName(TensorRole.Embed), out GgufTensorInfo te) && te.Dims.Length == 2 ? te.Dims[1] : throw Missing(f, A + "vocab_size")));
        long? bos = f.GetInteger("tokenizer.ggml.bos_token_id", 0, vocab - 1);
        long? eos = f.GetInteger("tokenizer.ggml.eos_token_id", 0, vocab - 1);

        var cfg = new ModelConfig
        {
            // deepseek2 files hold both V2 (softmax routing) and V3; later architectures name one family
            ModelType = arch != Architecture ? family.ModelTypes[0] : scoring == ScoringFunc.Sigmoid ? "deepseek_v3" : "deepseek_v2",
            VocabSize = vocab,
            HiddenSize = Req("embedding_length", 1),
            IntermediateSize = Opt("feed_forward_length", 0),
            MoeIntermediateSize = Opt("expert_feed_forward_length", 0),
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            QLoraRank = Opt("attention.q_lora_rank", 0),
            KvLoraRank = Req("attention.kv_lora_rank", 1),
            QkNopeHeadDim = kLen - rope,
            QkRopeHeadDim = rope,
            VHeadDim = vLen,
            NRoutedExperts = experts,
            NSharedExperts = Opt("expert_shared_count", 0),
            NumExpertsPerTok = Opt("expert_used_count", 0),
            NGroup = groups,
            TopkGroup = groupsUsed,
            TopkMethod = method,
            ScoringFunc = scoring,
            NormTopkProb = f.GetBool(A + "expert_weights_norm") ?? false,
            RoutedScalingFactor = f.GetNumber(A + "expert_weights_scale") is double s && s != 0 ? s : 1.0,
            FirstKDenseReplace = Opt("leading_dense_block_count", 0),
            NumNextnPredictLayers = 0, // the deepseek2 converter drops MTP layers
            TieWordEmbeddings = !f.Contains(family.GgufName(TensorRole.LmHead)),
            RmsNormEps = f.GetNumber(A + "attention.layer_norm_rms_epsilon") ?? throw Missing(f, A + "attention.layer_norm_rms_epsilon"),
            MaxPositionEmbeddings = Opt("context_length", 4096, 1),
            Rope = ReadRope(f, A),
            BosTokenId = bos is long b ? (int)b : null,
            EosTokenIds = eos is long e ? [(int)e] : [],
        };
        if (family.ReadGgufKeys is { } own)
            cfg = own(cfg, key => Req(key, 1));
        cfg.Validate(f.FilePath);
        return cfg;
    }

    private static RopeConfig ReadRope(GgufFile f, string A)
    {
        double theta = f.GetNumber(A + "rope.freq_base") ?? 10000;
        string type = f.GetString(A + "rope.scaling.type") ?? "none";
        if (type == "none")
            return new RopeConfig { Theta = theta };
        if (type != "yarn")
            throw new NotSupportedException($"{f.FilePath}: {A}rope.scaling.type is '{type}'; supported: yarn, none");
        double factor = f.GetNumber(A + "rope.scaling.factor") ?? throw Missing(f, A + "rope.scaling.factor");
        int orig = (int)(f.GetInteger(A + "rope.scaling.original_context_length", 1, int.MaxValue) ?? throw Missing(f, A + "rope.scaling.original_context_length"));
        // yarn_log_multiplier is stored as 0.1·mscale_all_dim (llama.cpp divides by 0.1 on load). Without it llama.cpp
        // applies neither the softmax mscale² nor a cos/sin factor: AttentionFactor 1 and no mscale_all_dim say the same.
        double? mscaleAllDim = f.GetNumber(A + "rope.scaling.yarn_log_multiplier") is double lm ? lm / 0.1 : null;
        return new RopeConfig
        {
            Type = RopeType.Yarn,
            Theta = theta,
            Factor = factor,
            OriginalMaxPositions = orig,
            BetaFast = f.GetNumber(A + "rope.scaling.yarn_beta_fast") ?? 32,
            BetaSlow = f.GetNumber(A + "rope.scaling.yarn_beta_slow") ?? 1,
            Mscale = mscaleAllDim,
            MscaleAllDim = mscaleAllDim,
            AttentionFactor = mscaleAllDim is null ? 1.0 : null,
        };
    }

    private static InvalidDataException Missing(GgufFile f, string key) => new($"{f.FilePath}: key '{key}' is missing");
}

/// <summary>The tensors of a deepseek2 GGUF file, by checkpoint name; records which ones were used.</summary>
public sealed unsafe class GgufWeightSource : IWeightSource
{
    private readonly GgufFile _f;
    private readonly ModelConfig _c;
    private readonly List<IDisposable> _owners;
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private readonly ArchitectureDescriptor _arch;
    private readonly GgufForm _kvb;

    public GgufWeightSource(GgufFile file, ModelConfig config, List<IDisposable> owners)
    {
        _f = file;
        _c = config;
        _owners = owners;
        _arch = config.GetArchitecture();
        _kvb = _arch[TensorRole.WkvB].Gguf!;
        _layers = config.NumHiddenLayers;
    }

    private readonly int _layers;

    public bool Has(string name)
    {
        if (_arch.Locate(name) is not GgufLocation loc)
            return false;
        return loc.Kind == GgufTensorKind.KvB ? _f.Contains(loc.Name) || _f.Contains(_kvb.LegacyOf(loc.Layer)) : _f.Contains(loc.Name);
    }

    public WeightMatrix Matrix(string name, int rows, int cols)
    {
        GgufLocation loc = _arch.Locate(name) ?? throw new InvalidDataException($"{_f.FilePath}: no deepseek2 GGUF tensor holds '{name}'");
        switch (loc.Kind)
        {
            case GgufTensorKind.Expert:
            {
                GgufTensorInfo t = Use(loc.Name);
                CheckDims(t, name, cols, rows, _c.NRoutedExperts);
                long bytes = GgmlTypes.RowBytes(t.Type, cols) * rows;
                return View(t, name, (long)loc.Expert * bytes, rows, cols);
            }
            case GgufTensorKind.KvB:
                return KvB(loc.Layer, name, rows, cols);
            default:
            {
                GgufTensorInfo t = Use(loc.Name);
                CheckDims(t, name, cols, rows);
                return View(t, name, 0, rows, cols);
            }
        }
    }

    public float[] Vector(string name, int length)
    {
        GgufLocation loc = _arch.Locate(name) ?? throw new InvalidDataException($"{_f.FilePath}: no deepseek2 GGUF tensor holds '{name}'");
        GgufTensorInfo t = Use(loc.Name);
        CheckDims(t, name, length);
        byte* p = _f.Pointer(t);
        var v = new float[length];
        switch (t.Type)
        {
            case GgmlType.F32:
                new ReadOnlySpan<float>(p, length).CopyTo(v);
                break;
            case GgmlType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(p, length), v);
                break;
            case GgmlType.BF16:
                Bf16.ToFloat(new ReadOnlySpan<ushort>(p, length), v);
                break;
            default:
                throw new NotSupportedException($"{_f.FilePath}: tensor '{t.Name}' ({name}) has type {GgmlTypes.Name(t.Type)}; vectors must be F32, F16 or BF16");
        }
        return v;
    }

    /// <summary>Throws naming the first tensor of the file the model did not read (llama.cpp refuses such files too).</summary>
    public void CheckAllUsed()
    {
        foreach (GgufTensorInfo t in _f.Tensors)
        {
            if (!_used.Contains(t.Name) && !IsMtpBlock(t.Name))
                throw new InvalidDataException($"{_f.FilePath}: unexpected tensor '{t.Name}' {t.DimsText} (not part of this {_arch.GgufArchitecture} model)");
        }
    }

    // a tensor of an appended MTP block (blk.N.* with N >= the main layers), which SharpSeek does not load from GGUF files
    private bool IsMtpBlock(string name)
    {
        if (!name.StartsWith("blk.", StringComparison.Ordinal))
            return false;
        int dot = name.IndexOf('.', 4);
        return dot > 4 && int.TryParse(name.AsSpan(4, dot - 4), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int l)
            && l >= _layers;
    }

    private GgufTensorInfo Use(string ggufName)
    {
        GgufTensorInfo t = _f.Tensor(ggufName);
        _used.Add(ggufName);
        return t;
    }

    private void CheckDims(GgufTensorInfo t, string hfName, params long[] want)
    {
        if (!t.Dims.AsSpan().SequenceEqual(want))
            throw new InvalidDataException($"{_f.FilePath}: tensor '{t.Name}' ({hfName}) has dims {t.DimsText}, expected {{{string.Join(", ", want)}}}");
    }

    /// <summary>A weight view of rows x cols starting <paramref name="byteOffset"/> bytes into tensor t.</summary>
    private WeightMatrix View(GgufTensorInfo t, string hfName, long byteOffset, int rows, int cols) => ViewOf(_f, t, hfName, byteOffset, rows, cols);

    /// <summary>A weight view of rows x cols starting <paramref name="byteOffset"/> bytes into tensor t of file f (memory-mapped, no copy).</summary>
    internal static WeightMatrix ViewOf(GgufFile _f, GgufTensorInfo t, string hfName, long byteOffset, int rows, int cols)
    {
        byte* p = _f.Pointer(t) + byteOffset;
        return t.Type switch
        {
            GgmlType.F32 => new F32Matrix((float*)p, rows, cols, _f),
            GgmlType.F16 => new F16Matrix((Half*)p, rows, cols, _f),
            GgmlType.BF16 => new Bf16Matrix((ushort*)p, rows, cols, _f),
            GgmlType.Q8_0 => new Q8_0Matrix(p, rows, cols, _f),
            GgmlType.Q4_0 => new Q4_0Matrix(p, rows, cols, _f),
            GgmlType.Q4_1 => new SmallBlockMatrix(WeightFormat.Q4_1, p, rows, cols, _f),
            GgmlType.Q5_0 => new SmallBlockMatrix(WeightFormat.Q5_0, p, rows, cols, _f),
            GgmlType.Q5_1 => new SmallBlockMatrix(WeightFormat.Q5_1, p, rows, cols, _f),
            GgmlType.MXFP4 => new Mxfp4Matrix(p, rows, cols, _f),
            // products on an interleaved copy made on first use (llama.cpp repacks its Q4_K for x86 the same way)
            GgmlType.Q4_K when rows >= Q4KInterleavedMatrix.GroupRows => new Q4KRepackingMatrix(new Q4KMatrix(p, rows, cols, _f)),
            GgmlType.Q4_K => new Q4KMatrix(p, rows, cols, _f),
            GgmlType.Q5_K => new Q5KMatrix(p, rows, cols, _f),
            GgmlType.Q2_K => new LowBitKMatrix(WeightFormat.Q2_K, p, rows, cols, _f),
            GgmlType.Q3_K => new LowBitKMatrix(WeightFormat.Q3_K, p, rows, cols, _f),
            GgmlType.IQ4_NL => new SmallBlockMatrix(WeightFormat.IQ4_NL, p, rows, cols, _f),
            GgmlType.IQ4_XS => new Iq4XsMatrix(p, rows, cols, _f),
            // one-token products on an interleaved copy made on first use where its kernel runs (Q6KInterleavedMatrix: 512 or 256 bits)
            GgmlType.Q6_K when rows >= Q6KInterleavedMatrix.GroupRows => new Q6KRepackingMatrix(new Q6KMatrix(p, rows, cols, _f)),
            GgmlType.Q6_K => new Q6KMatrix(p, rows, cols, _f),
            _ => throw new NotSupportedException(
                $"{_f.FilePath}: tensor '{t.Name}' ({hfName}) has type {GgmlTypes.Name(t.Type)}; SharpSeek multiplies F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS and MXFP4"),
        };
    }

    // kv_b_proj [Nh·(Dn+Dv), R]: per head Dn rows of W_UK (attn_k_b holds them transposed, [R, Dn] per head) then Dv rows of W_UV
    private WeightMatrix KvB(int l, string hfName, int rows, int cols)
    {
        int Nh = _c.NumAttentionHeads, Dn = _c.QkNopeHeadDim, Dv = _c.VHeadDim, R = cols;
        string kName = _kvb.NameOf(l), vName = _kvb.SecondOf(l), legacyName = _kvb.LegacyOf(l);
        if (!_f.Contains(kName) && _f.Contains(legacyName))
        {
            GgufTensorInfo legacy = Use(legacyName);
            CheckDims(legacy, hfName, cols, rows);
            return View(legacy, hfName, 0, rows, cols);
        }
        GgufTensorInfo kt = Use(kName), vt = Use(vName);
        CheckDims(kt, hfName, Dn, R, Nh);
        CheckDims(vt, hfName, R, Dv, Nh);
        WeightMatrix k = View(kt, hfName, 0, Nh * R, Dn), v = View(vt, hfName, 0, Nh * Dv, R);
        // f32/f16 halves are kept exactly in fp32, and so are two quantized ones (whose absorbed decode reads them as
        // stored, SplitKvBMatrix: prefill's copy then holds their exact values, as the decode multiplies them); with a
        // bf16 half the copy is bf16 (exact for that half)
        bool quantized = !IsFloat(kt.Type) && !IsFloat(vt.Type);
        bool bf16 = !quantized && kt.Type is not (GgmlType.F32 or GgmlType.F16) && vt.Type is not (GgmlType.F32 or GgmlType.F16);
        var all = new float[(long)rows * cols];
        var kRow = new float[Dn];
        for (int h = 0; h < Nh; h++)
        {
            long head = (long)h * (Dn + Dv) * R;
            for (int c = 0; c < R; c++)
            {
                k.ReadRow(h * R + c, kRow);
                for (int i = 0; i < Dn; i++)
                    all[head + (long)i * R + c] = kRow[i];
            }
            for (int j = 0; j < Dv; j++)
                v.ReadRow(h * Dv + j, all.AsSpan((int)(head + (long)(Dn + j) * R), R));
        }
        if (quantized)
            return new SplitKvBMatrix(new F32Matrix(rows, cols, all), k, v, Nh);
        if (!bf16)
            return new F32Matrix(rows, cols, all);
        var buf = new NativeBuffer((long)rows * cols * 2);
        _owners.Add(buf);
        Bf16.FromFloat(all, new Span<ushort>(buf.Pointer, rows * cols));
        return new Bf16Matrix((ushort*)buf.Pointer, rows, cols, buf);
    }

    private static bool IsFloat(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;
}
