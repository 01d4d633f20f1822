// DeepSeek-V4 in GGUF (llama.cpp's deepseek4 architecture, de3ff81): metadata keys -> V4Config, tensors -> V4Weights
// as memory-mapped views. Names and shapes as llama.cpp's load_arch_tensors; ggml dims are {cols, rows[, experts]}.
using SharpSeek.Formats.Gguf;
using SharpSeek.Model.Gguf;
using SharpSeek.Tensors;

namespace SharpSeek.Model.V4;

/// <summary>Reads deepseek4 GGUF files.</summary>
public static class V4Gguf
{
    /// <summary>Whether <paramref name="f"/> is a deepseek4 file.</summary>
    public static bool IsV4(GgufFile f) => f.GetString("general.architecture") == V4Config.GgufArchitecture;

    /// <summary>Whether the .gguf file at <paramref name="path"/> holds a deepseek4 model (reads its first metadata entry).</summary>
    public static bool IsV4File(string path) =>
        GgufModel.IsGgufPath(path) && File.Exists(path) && GgufFile.ReadArchitecture(path) == V4Config.GgufArchitecture;

    /// <summary>Maps deepseek4 metadata to a validated <see cref="V4Config"/>; errors name the file and key.</summary>
    public static V4Config ReadConfig(GgufFile f)
    {
        const string A = V4Config.GgufArchitecture + ".";
        string arch = f.GetString("general.architecture") ?? throw Missing(f, "general.architecture");
        if (arch != V4Config.GgufArchitecture)
            throw new NotSupportedException($"{f.FilePath}: general.architecture is '{arch}', not {V4Config.GgufArchitecture}");
        int Req(string key, int min = 0) => (int)(f.GetInteger(A + key, min, int.MaxValue) ?? throw Missing(f, A + key));
        int Opt(string key, int fallback) => (int)(f.GetInteger(A + key, 0, int.MaxValue) ?? fallback);
        double Num(string key) => f.GetNumber(A + key) ?? throw Missing(f, A + key);

        int all = Req("block_count", 1);
        if (all > 1024)
            throw new InvalidDataException($"{f.FilePath}: {A}block_count is {all}; at most 1024 are supported");
        int nextn = Opt("nextn_predict_layers", 0);
        if (nextn >= all)
            throw new InvalidDataException($"{f.FilePath}: {A}nextn_predict_layers is {nextn}, not fewer than block_count {all}");
        // llama.cpp drops MTP blocks whose tensors are absent (the converter skips them by default)
        if (nextn > 0 && !f.Contains($"blk.{all - nextn}.nextn.eh_proj.weight"))
        {
            all -= nextn;
            nextn = 0;
        }
        int layers = all - nextn;
        int gating = Opt("expert_gating_func", 0);
        if (gating != 4)
            throw new NotSupportedException($"{f.FilePath}: {A}expert_gating_func is {gating}; DeepSeek-V4 routes with sqrtsoftplus (4)");
        int[] ratios = f.GetInt32Array(A + "attention.compress_ratios") ?? throw Missing(f, A + "attention.compress_ratios");
        if (ratios.Length < all)
            throw new InvalidDataException($"{f.FilePath}: {A}attention.compress_ratios has {ratios.Length} entries for {all} blocks");
        int kLen = Req("attention.key_length", 1);
        int vLen = Opt("attention.value_length", kLen);
        if (vLen != kLen)
            throw new InvalidDataException($"{f.FilePath}: {A}attention.value_length {vLen} differs from key_length {kLen}; V4 shares one K=V head");
        string[]? tokens = f.GetStringArray("tokenizer.ggml.tokens");
        int vocab = (int)(f.GetInteger(A + "vocab_size", 1, int.MaxValue) ?? tokens?.Length
            ?? (f.TryGetTensor("token_embd.weight", out GgufTensorInfo te) && te.Dims.Length == 2 ? te.Dims[1] : throw Missing(f, A + "vocab_size")));
        float[] clampExp = Floats(f, A + "swiglu_clamp_exp", all) ?? new float[all];
        float[] clampShexp = Floats(f, A + "swiglu_clamp_shexp", all) ?? clampExp; // llama.cpp's fallback: the routed experts' clamp
        string scaling = f.GetString(A + "rope.scaling.type") ?? "none";
        if (scaling is not ("none" or "yarn"))
            throw new NotSupportedException($"{f.FilePath}: {A}rope.scaling.type is '{scaling}'; supported: yarn, none");
        bool yarn = scaling == "yarn";
        long? bos = f.GetInteger("tokenizer.ggml.bos_token_id", 0, vocab - 1);
        long? eos = f.GetInteger("tokenizer.ggml.eos_token_id", 0, vocab - 1);

        var c = new V4Config
        {
            VocabSize = vocab,
            HiddenSize = Req("embedding_length", 1),
            NumHiddenLayers = layers,
            NumAttentionHeads = Req("attention.head_count", 1),
            HeadDim = kLen,
            RopeHeadDim = Req("rope.dimension_count"),
            QLoraRank = Req("attention.q_lora_rank", 1),
            OGroups = Req("attention.output_group_count", 1),
            OLoraRank = Req("attention.output_lora_rank", 1),
            SlidingWindow = Req("attention.sliding_window", 1),
            CompressRatios = ratios[..all],
            NRoutedExperts = Req("expert_count", 1),
            NSharedExperts = Opt("expert_shared_count", 1),
            NumExpertsPerTok = Req("expert_used_count", 1),
            MoeIntermediateSize = Req("expert_feed_forward_length", 1),
            RoutedScalingFactor = f.GetNumber(A + "expert_weights_scale") is double s && s != 0 ? s : 1.0,
            NormTopkProb = f.GetBool(A + "expert_weights_norm") ?? false,
            SwigluLimitRouted = clampExp,
            SwigluLimitShared = clampShexp,
            NumHashLayers = Opt("hash_layer_count", 0),
            IndexHeads = Req("attention.indexer.head_count", 1),
            IndexHeadDim = Req("attention.indexer.key_length", 1),
            IndexTopK = Req("attention.indexer.top_k", 1),
            HcMult = Req("hyper_connection.count", 1),
            HcSinkhornIters = Req("hyper_connection.sinkhorn_iterations", 1),
            HcEps = Num("hyper_connection.epsilon"),
            RmsNormEps = Num("attention.layer_norm_rms_epsilon"),
            NumNextnPredictLayers = nextn,
            MaxPositionEmbeddings = Opt("context_length", 4096),
            RopeTheta = f.GetNumber(A + "rope.freq_base") ?? 10000,
            CompressRopeTheta = Num("attention.compress_rope_freq_base"),
            YarnFactor = yarn ? Num("rope.scaling.factor") : 1,
            YarnOriginalMaxPositions = yarn ? Req("rope.scaling.original_context_length", 1) : 0,
            YarnBetaFast = f.GetNumber(A + "rope.scaling.yarn_beta_fast") ?? 32,
            YarnBetaSlow = f.GetNumber(A + "rope.scaling.yarn_beta_slow") ?? 1,
            BosTokenId = bos is long b ? (int)b : null,
            EosTokenIds = eos is long e ? [(int)e] : [],
        };
        c.Validate(f.FilePath);
        return c;
    }

    // a per-layer float array, or one number for every layer
    private static float[]? Floats(GgufFile f, string key, int n)
    {
        if (f.Get(key) is not { } v)
            return null;
        if (v.Type != GgufValueType.Array)
            return Enumerable.Repeat((float)(v.AsDouble() ?? throw new InvalidDataException($"{f.FilePath}: key '{key}' must be a number or an array of numbers")), n).ToArray();
        if (v.Value is not float[] a)
            throw new InvalidDataException($"{f.FilePath}: key '{key}' must be an array of float32");
        if (a.Length < n)
            throw new InvalidDataException($"{f.FilePath}: key '{key}' has {a.Length} entries for {n} blocks");
        return a[..n];
    }

    /// <summary>Opens a deepseek4 GGUF file and maps its weights (the file stays open until the weights are disposed).</summary>
    public static V4Weights Load(string path)
    {
        GgufFile f = GgufFile.Open(path);
        try
        {
            return Load(f, ReadConfig(f), f);
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    /// <summary>Maps the weights of <paramref name="c"/> from <paramref name="f"/>; <paramref name="owner"/> is disposed with them.</summary>
    public static V4Weights Load(GgufFile f, V4Config c, IDisposable? owner = null)
    {
        var r = new Reader(f, c);
        int H = c.HiddenSize, V = c.VocabSize, Hc = c.HcMult;
        WeightMatrix embed = r.Matrix("token_embd.weight", V, H);
        WeightMatrix head = r.Matrix("output.weight", V, H);
        float[] norm = r.Vector("output_norm.weight", H);
        WeightMatrix hcFn = r.Matrix("output_hc_fn.weight", Hc, Hc * H);
        float[] hcBase = r.Vector("output_hc_base.weight", Hc);
        float[] hcScale = r.Vector("output_hc_scale.weight", 1);
        var layers = new V4LayerWeights[c.NumHiddenLayers];
        for (int l = 0; l < layers.Length; l++)
            layers[l] = r.Layer(l);
        var mtp = new V4MtpWeights[c.NumNextnPredictLayers];
        for (int m = 0; m < mtp.Length; m++)
        {
            int l = c.NumHiddenLayers + m;
            string p = $"blk.{l}.nextn.";
            mtp[m] = new V4MtpWeights
            {
                EhProj = r.Matrix(p + "eh_proj.weight", H, 2 * H),
                ENorm = r.Vector(p + "enorm.weight", H),
                HNorm = r.Vector(p + "hnorm.weight", H),
                HeadNorm = f.Contains(p + "shared_head_norm.weight") ? r.Vector(p + "shared_head_norm.weight", H) : norm,
                Layer = r.Layer(l),
            };
        }
        r.CheckAllUsed();
        return new V4Weights(c, embed, head, norm, hcFn, hcBase, hcScale, layers, mtp, owner is null ? [] : [owner]);
    }

    private static InvalidDataException Missing(GgufFile f, string key) => new($"{f.FilePath}: key '{key}' is missing");

    /// <summary>Tensor access by GGUF name with shape checks; records which tensors were used.</summary>
    private sealed unsafe class Reader(GgufFile f, V4Config c)
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);

        private GgufTensorInfo Use(string name, params long[] dims)
        {
            if (!f.TryGetTensor(name, out GgufTensorInfo t))
                throw new InvalidDataException($"{f.FilePath}: tensor '{name}' is missing");
            if (!t.Dims.AsSpan().SequenceEqual(dims))
                throw new InvalidDataException($"{f.FilePath}: tensor '{name}' has dims {t.DimsText}, expected {{{string.Join(", ", dims)}}}");
            _used.Add(name);
            return t;
        }

        public WeightMatrix Matrix(string name, int rows, int cols) =>
            GgufWeightSource.ViewOf(f, Use(name, cols, rows), name, 0, rows, cols);

        // expert e of a stacked {cols, rows, E} tensor
        public WeightMatrix[] Experts(string name, int rows, int cols)
        {
            GgufTensorInfo t = Use(name, cols, rows, c.NRoutedExperts);
            long bytes = GgmlTypes.RowBytes(t.Type, cols) * rows;
            var m = new WeightMatrix[c.NRoutedExperts];
            for (int e = 0; e < m.Length; e++)
                m[e] = GgufWeightSource.ViewOf(f, t, name, e * bytes, rows, cols);
            return m;
        }

        public float[] Vector(string name, int length) => Floats(Use(name, length), name, length);

        // a 2-D fp32 table (the compressors' ape [ratio, coff·D])
        public float[] Table(string name, int rows, int cols) => Floats(Use(name, cols, rows), name, rows * cols);

        private float[] Floats(GgufTensorInfo t, string name, int n)
        {
            byte* p = f.Pointer(t);
            var v = new float[n];
            switch (t.Type)
            {
                case GgmlType.F32: new ReadOnlySpan<float>(p, n).CopyTo(v); break;
                case GgmlType.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(p, n), v); break;
                case GgmlType.BF16: Bf16.ToFloat(new ReadOnlySpan<ushort>(p, n), v); break;
                default: throw new NotSupportedException($"{f.FilePath}: tensor '{name}' has type {GgmlTypes.Name(t.Type)}; expected F32, F16 or BF16");
            }
            return v;
        }

        public int[] Ids(string name, int rows, int cols)
        {
            GgufTensorInfo t = Use(name, cols, rows);
            if (t.Type != GgmlType.I32)
                throw new InvalidDataException($"{f.FilePath}: tensor '{name}' has type {GgmlTypes.Name(t.Type)}; expected I32");
            var ids = new long[rows * cols];
            ReadOnlySpan<int> v = new(f.Pointer(t), rows * cols);
            for (int i = 0; i < ids.Length; i++)
                ids[i] = v[i];
            return c.ExpertTable(ids, $"{f.FilePath}: tensor '{name}'");
        }

        /// <summary>Layer <paramref name="l"/>'s tensors by DeepSeek's names, mapped to llama.cpp's (V4Layout).</summary>
        public V4LayerWeights Layer(int l) => V4Layout.Layer(new LayerSource(this, $"blk.{l}."), c, l);

        private sealed class LayerSource(Reader r, string prefix) : IV4LayerSource
        {
            private string Name(string name) => prefix + V4Layout.GgufName(name);
            public WeightMatrix Matrix(string name, int rows, int cols) => r.Matrix(Name(name), rows, cols);
            public float[] Vector(string name, int length) => r.Vector(Name(name), length);
            public float[] Table(string name, int rows, int cols) => r.Table(Name(name), rows, cols);
            public WeightMatrix[] Experts(string projection, int rows, int cols) => r.Experts(Name(projection), rows, cols);
            public int[] Ids(string name, int rows, int cols) => r.Ids(Name(name), rows, cols);
        }

        /// <summary>Throws naming the first tensor the model did not read (llama.cpp refuses such files too).</summary>
        public void CheckAllUsed()
        {
            foreach (GgufTensorInfo t in f.Tensors)
            {
                // the vision variant's routing bias for image tokens is optional and unused for text
                if (!_used.Contains(t.Name) && !t.Name.EndsWith(".exp_probs_b_vl.bias", StringComparison.Ordinal))
                    throw new InvalidDataException($"{f.FilePath}: unexpected tensor '{t.Name}' {t.DimsText} (not part of this {V4Config.GgufArchitecture} model)");
            }
        }
    }
}
