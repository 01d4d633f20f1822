// Writing a DeepSeek-V4 model as a llama.cpp deepseek4 GGUF file with the keys, key types and tensor names of llama.cpp's
// converter (conversion/deepseek.py DeepseekV4Model, de3ff81). Routed experts stored as MXFP4 are repacked bit-exactly
// into ggml's block layout whatever the type; --type chooses the other matrices:
//   mxfp4 (the converter's choice): FP8 matrices as Q8_0, BF16/F16/F32 ones kept, experts MXFP4 (quantized if stored otherwise).
//   f32, bf16, q8_0: every other matrix in that type.
// Norms, hyper-connection parameters, sinks, the compressors' position biases and the router bias are F32, the hash
// layers' token -> expert tables I32. The MTP layers are appended as blocks after the main ones with nextn_predict_layers
// (llama.cpp reads such a file; its converter writes them into a separate file), their e_proj/h_proj as one eh_proj.
using SharpSeek.Formats.Gguf;
using SharpSeek.Model.Gguf;
using SharpSeek.Tensors;

namespace SharpSeek.Model.V4;

/// <summary>Matrix types of an exported deepseek4 file.</summary>
public enum V4GgufType
{
    Mxfp4,
    F32,
    BF16,
    Q8_0,
}

/// <summary>Writes V4 models as GGUF deepseek4 files.</summary>
public static unsafe class V4GgufExport
{
    /// <summary>Parses --type for V4: mxfp4, f32, bf16, q8_0.</summary>
    public static V4GgufType ParseType(string name) => name.ToLowerInvariant() switch
    {
        "mxfp4" => V4GgufType.Mxfp4,
        "f32" => V4GgufType.F32,
        "bf16" => V4GgufType.BF16,
        "q8_0" => V4GgufType.Q8_0,
        _ => throw new ArgumentException($"--type '{name}' is not a DeepSeek-V4 GGUF type (mxfp4, f32, bf16, q8_0)"),
    };

    /// <summary>Writes <paramref name="w"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(V4Weights w, string path, V4GgufType type, string? tokenizerJson = null, string? name = null) =>
        Build(w, type, tokenizerJson, name).Save(path);

    /// <summary>Builds the writer (tensor callbacks read from <paramref name="w"/>, which must stay alive until saved).</summary>
    public static GgufWriter Build(V4Weights w, V4GgufType type, string? tokenizerJson = null, string? name = null)
    {
        V4Config c = w.Config;
        var g = new GgufWriter();
        const string A = V4Config.GgufArchitecture + ".";
        int all = c.NumHiddenLayers + c.NumNextnPredictLayers;
        g.Add("general.architecture", V4Config.GgufArchitecture);
        g.Add("general.type", "model");
        g.Add("general.name", name ?? V4Config.ModelType);
        g.Add(A + "block_count", (uint)all);
        g.Add(A + "context_length", (uint)c.MaxPositionEmbeddings);
        g.Add(A + "embedding_length", (uint)c.HiddenSize);
        g.Add(A + "attention.head_count", (uint)c.NumAttentionHeads);
        g.Add(A + "attention.head_count_kv", 1u);
        g.Add(A + "rope.freq_base", (float)c.RopeTheta);
        if (c.HasYarn)
        {
            g.Add(A + "rope.scaling.type", "yarn");
            g.Add(A + "rope.scaling.factor", (float)c.YarnFactor);
            g.Add(A + "rope.scaling.original_context_length", (uint)c.YarnOriginalMaxPositions);
            g.Add(A + "rope.scaling.yarn_beta_fast", (float)c.YarnBetaFast);
            g.Add(A + "rope.scaling.yarn_beta_slow", (float)c.YarnBetaSlow);
        }
        g.Add(A + "attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        g.Add(A + "expert_count", (uint)c.NRoutedExperts);
        g.Add(A + "expert_used_count", (uint)c.NumExpertsPerTok);
        g.Add(A + "expert_gating_func", 4u); // sqrtsoftplus
        g.Add(A + "attention.key_length", (uint)c.HeadDim);
        g.Add(A + "attention.value_length", (uint)c.HeadDim);
        g.Add(A + "rope.dimension_count", (uint)c.RopeHeadDim);
        g.Add(A + "attention.q_lora_rank", (uint)c.QLoraRank);
        g.Add(A + "attention.sliding_window", (uint)c.SlidingWindow);
        g.Add(A + "expert_feed_forward_length", (uint)c.MoeIntermediateSize);
        g.Add(A + "expert_shared_count", (uint)c.NSharedExperts);
        g.Add(A + "expert_weights_scale", (float)c.RoutedScalingFactor);
        g.Add(A + "expert_weights_norm", c.NormTopkProb);
        g.Add(A + "swiglu_clamp_exp", GgufValue.Array(c.SwigluLimitRouted.ToArray()));
        g.Add(A + "swiglu_clamp_shexp", GgufValue.Array(c.SwigluLimitShared.ToArray()));
        g.Add(A + "attention.indexer.head_count", (uint)c.IndexHeads);
        g.Add(A + "attention.indexer.key_length", (uint)c.IndexHeadDim);
        g.Add(A + "attention.indexer.top_k", (uint)c.IndexTopK);
        g.Add(A + "attention.output_group_count", (uint)c.OGroups);
        g.Add(A + "attention.output_lora_rank", (uint)c.OLoraRank);
        g.Add(A + "attention.compress_ratios", GgufValue.Array(c.CompressRatios.ToArray()));
        g.Add(A + "attention.compress_rope_freq_base", (float)c.CompressRopeTheta);
        g.Add(A + "hyper_connection.count", (uint)c.HcMult);
        g.Add(A + "hyper_connection.sinkhorn_iterations", (uint)c.HcSinkhornIters);
        g.Add(A + "hyper_connection.epsilon", (float)c.HcEps);
        g.Add(A + "hash_layer_count", (uint)c.NumHashLayers);
        g.Add(A + "embedding_length_out", (uint)(c.HiddenSize * c.HcMult));
        if (c.NumNextnPredictLayers > 0)
            g.Add(A + "nextn_predict_layers", (uint)c.NumNextnPredictLayers);
        g.Add(A + "vocab_size", (uint)c.VocabSize);
        if (tokenizerJson is not null)
            GgufTokenizer.Write(g, tokenizerJson, c.VocabSize, c.BosTokenId, c.EosTokenIds.Length > 0 ? c.EosTokenIds[0] : null);
        else
        {
            if (c.BosTokenId is int bos)
                g.Add("tokenizer.ggml.bos_token_id", (uint)bos);
            if (c.EosTokenIds.Length > 0)
                g.Add("tokenizer.ggml.eos_token_id", (uint)c.EosTokenIds[0]);
            g.Add("tokenizer.ggml.model", "no_vocab"); // runs on token ids (as gguf-py's NoVocab)
        }

        Matrix(g, "token_embd.weight", w.Embed, type);
        Vector(g, "output_norm.weight", w.Norm);
        Matrix(g, "output.weight", w.Head, type);
        Matrix(g, "output_hc_fn.weight", w.HcHeadFn, V4GgufType.F32);
        Vector(g, "output_hc_base.weight", w.HcHeadBase);
        Vector(g, "output_hc_scale.weight", w.HcHeadScale);
        for (int l = 0; l < c.NumHiddenLayers; l++)
            Layer(g, c, $"blk.{l}.", l, w.Layers[l], type);
        for (int m = 0; m < w.Mtp.Length; m++)
        {
            int l = c.NumHiddenLayers + m;
            string b = $"blk.{l}.";
            V4MtpWeights mw = w.Mtp[m];
            Layer(g, c, b, l, mw.Layer, type);
            Matrix(g, b + "nextn.eh_proj.weight", mw.EhProj, type);
            Vector(g, b + "nextn.enorm.weight", mw.ENorm);
            Vector(g, b + "nextn.hnorm.weight", mw.HNorm);
            Vector(g, b + "nextn.shared_head_norm.weight", mw.HeadNorm);
        }
        return g;
    }

    // a layer's tensors as V4Layout lists them, under llama.cpp's names
    private static void Layer(GgufWriter g, V4Config c, string b, int l, V4LayerWeights w, V4GgufType type)
    {
        foreach ((string name, object value) in V4Layout.Tensors(w))
        {
            string gguf = b + V4Layout.GgufName(name);
            switch (value)
            {
                case WeightMatrix m:
                    Matrix(g, gguf, m, name.StartsWith("hc_", StringComparison.Ordinal) ? V4GgufType.F32 : type); // hc_fn stays fp32, as the converter
                    break;
                case WeightMatrix[] experts:
                    Experts(g, gguf, experts, type);
                    break;
                case int[] table:
                    g.AddTensor(gguf, GgmlType.I32, [c.NumExpertsPerTok, c.VocabSize], st => st.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(table.AsSpan())));
                    break;
                case float[] v when name.EndsWith(".ape", StringComparison.Ordinal):
                    g.AddTensor(gguf, GgmlType.F32, [v.Length / c.Ratio(l), c.Ratio(l)], st => st.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan())));
                    break;
                case float[] v:
                    Vector(g, gguf, v);
                    break;
            }
        }
    }

    private static void Vector(GgufWriter g, string name, float[] v) =>
        g.AddTensor(name, GgmlType.F32, [v.Length], s => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan())));

    // the ggml type of a (non-expert) matrix: the converter's choice for mxfp4, else the requested type; Q8_0 needs rows of 32
    private static GgmlType TypeOf(WeightMatrix m, V4GgufType type)
    {
        GgmlType t = type switch
        {
            V4GgufType.F32 => GgmlType.F32,
            V4GgufType.BF16 => GgmlType.BF16,
            V4GgufType.Q8_0 => GgmlType.Q8_0,
            _ => m.Format switch
            {
                WeightFormat.F32 => GgmlType.F32,
                WeightFormat.F16 => GgmlType.F16,
                WeightFormat.BF16 => GgmlType.BF16,
                _ => GgmlType.Q8_0, // FP8 and quantized matrices, as the converter dequantizes FP8 to Q8_0
            },
        };
        return t == GgmlType.Q8_0 && m.Cols % 32 != 0 ? GgmlType.F32 : t;
    }

    private static void Matrix(GgufWriter g, string name, WeightMatrix m, V4GgufType type)
    {
        GgmlType t = TypeOf(m, type);
        g.AddTensor(name, t, [m.Cols, m.Rows], s => GgufExport.WriteRows(s, m, 0, m.Rows, t));
    }

    // stacked {cols, rows, E}: experts stored as MXFP4 stay MXFP4 (bit-exact); others take the matrix type, or MXFP4 for --type mxfp4
    private static void Experts(GgufWriter g, string name, WeightMatrix[] e, V4GgufType type)
    {
        WeightMatrix m0 = e[0];
        GgmlType t = m0.Format == WeightFormat.Mxfp4 || type == V4GgufType.Mxfp4 && m0.Cols % 32 == 0 ? GgmlType.MXFP4 : TypeOf(m0, type);
        g.AddTensor(name, t, [m0.Cols, m0.Rows, e.Length], s =>
        {
            foreach (WeightMatrix m in e)
                GgufExport.WriteRows(s, m, 0, m.Rows, t);
        });
    }
}
