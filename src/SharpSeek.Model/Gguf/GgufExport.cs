// Writing a loaded model as a GGUF deepseek2 file the way llama.cpp's convert_hf_to_gguf.py (DeepseekV2Model) and
// llama-quantize (llama_tensor_get_type) would: metadata keys of docs/deepseek-architecture.md §9, split attn_k_b / attn_v_b, stacked experts,
// router and norms in F32, and the linear layers in the requested type:
//   f32, bf16: every matrix in that type.
//   q8_0: Q8_0 (F16 where a row is not a multiple of 32, as the converter does).
//   q4_0: Q4_0, output.weight Q6_K (llama-quantize's choice for every type but Q8_0), F16 where a row is not a multiple of 32.
//   q4_k_m: Q4_K, except output.weight Q6_K, every ffn_down* of the layers llama.cpp's use_more_bits picks Q6_K,
//           and attn_output Q6_K when the model has exactly 8 experts (llama.cpp picks Q5_K there; SharpSeek has no
//           Q5_K and takes the next larger type). Rows that are not a multiple of 256 fall back to Q8_0 (llama.cpp
//           takes Q5_0 for Q4_K and Q8_0 for Q6_K), and to F16 when not a multiple of 32.
// Deliberate differences from the converter, for llama.cpp to load what SharpSeek loads:
//   - attention.q_lora_rank is written as 0 for models without query compression. llama.cpp (b10221,
//     llama_model_deepseek2::load_arch_hparams) reads the key unless n_layer is 26 or 27 ("lite" V2 shapes), so a
//     q_lora-less model of any other depth written without it fails to load; with 0 it loads and uses attn_q.
//   - MTP layers are dropped (the converter's skip_mtp), so nextn_predict_layers is not written.
using SharpSeek.Formats.Gguf;
using SharpSeek.Model.Architecture;
using SharpSeek.Tensors;

namespace SharpSeek.Model.Gguf;

/// <summary>Weight type of an exported GGUF file.</summary>
public enum GgufFileType
{
    F32,
    BF16,
    Q8_0,
    Q4_K_M,
    Q4_0,
}

/// <summary>Writes models as GGUF deepseek2 files.</summary>
public static unsafe class GgufExport
{
    /// <summary>Parses --type: f32, bf16, q8_0, q4_k_m.</summary>
    public static GgufFileType ParseType(string name) => name.ToLowerInvariant() switch
    {
        "f32" => GgufFileType.F32,
        "bf16" => GgufFileType.BF16,
        "q8_0" => GgufFileType.Q8_0,
        "q4_k_m" => GgufFileType.Q4_K_M,
        "q4_0" => GgufFileType.Q4_0,
        _ => throw new ArgumentException($"--type '{name}' is not one of bf16, q8_0, q4_k_m, q4_0, f32"),
    };

    /// <summary>llama_ftype of the file (general.file_type).</summary>
    public static uint FileTypeId(GgufFileType t) => t switch
    {
        GgufFileType.F32 => 0,
        GgufFileType.BF16 => 32,
        GgufFileType.Q8_0 => 7,
        GgufFileType.Q4_0 => 2,
        _ => 15,
    };

    /// <summary>
    /// Writes <paramref name="w"/> to <paramref name="path"/> atomically. <paramref name="tokenizerJson"/> (a
    /// tokenizer.json, or null for none) supplies the tokenizer.ggml.* keys.
    /// </summary>
    public static void Write(ModelWeights w, string path, GgufFileType type, string? tokenizerJson, string? name = null, Action<string>? log = null)
    {
        GgufWriter g = Build(w, type, tokenizerJson, name, log);
        g.Save(path);
    }

    /// <summary>Builds the writer (metadata and tensor callbacks reading from <paramref name="w"/>, which must stay alive until saved).</summary>
    public static GgufWriter Build(ModelWeights w, GgufFileType type, string? tokenizerJson, string? name = null, Action<string>? log = null)
    {
        ModelConfig c = w.Config;
        if (c.MoeLayerFreq != 1)
            throw new NotSupportedException($"moe_layer_freq {c.MoeLayerFreq}: GGUF deepseek2 has only leading dense layers (leading_dense_block_count)");
        var g = new GgufWriter();
        WriteMetadata(g, c, type, name ?? c.ModelType);
        if (tokenizerJson is not null)
            GgufTokenizer.Write(g, tokenizerJson, c.VocabSize, c.BosTokenId, c.EosTokenIds.Length > 0 ? c.EosTokenIds[0] : null);
        else
            g.Add("tokenizer.ggml.model", "no_vocab"); // gguf-py's NoVocab: llama.cpp then runs on token ids (it refuses a file without the key)

        // the descriptor's order: embedding, per layer (experts stacked, MTP layers dropped), output norm, output head
        ArchitectureDescriptor arch = c.GetArchitecture();
        foreach (TensorRef t in arch.Leading(c))
            Add(g, w, t, type);
        foreach (LayerWeights l in w.Layers)
        {
            foreach (TensorRef t in arch.LayerTensors(c, l.Index, perExpert: false))
                Add(g, w, t, type);
        }
        foreach (TensorRef t in arch.Trailing(c))
            Add(g, w, t, type);
        if (log is not null)
        {
            var layerEnds = new HashSet<string>(w.Layers.Select(l => arch.GgufName(Architecture.TensorRole.FfnNorm, l.Index)), StringComparer.Ordinal);
            g.Progress = (done, total, tensor) =>
            {
                if (layerEnds.Contains(tensor) || done == total)
                    log($"{done}/{total} tensors written ({tensor})");
            };
        }
        return g;
    }

    // one descriptor tensor as its GGUF form: vectors F32, matrices by the role's type rule, experts stacked, kv_b split
    private static void Add(GgufWriter g, ModelWeights w, TensorRef t, GgufFileType type)
    {
        if (t.Spec.Gguf is not GgufForm form)
            return;
        ModelConfig c = w.Config;
        string name = form.NameOf(t.Layer);
        if (form.Kind == GgufTensorKind.Expert)
        {
            WeightMatrix[] experts = new WeightMatrix[c.NRoutedExperts];
            for (int e = 0; e < experts.Length; e++)
                experts[e] = w.Tensor(t.Role, t.Layer, e).Matrix!;
            AddExperts(g, name, experts, MatrixType(type, t, experts[0].Cols, c));
            return;
        }
        (WeightMatrix? m, float[]? v) = w.Tensor(t.Role, t.Layer);
        if (v is not null)
            AddVector(g, name, v);
        else if (form.Kind == GgufTensorKind.KvB)
            AddKvB(g, c, t.Layer, m!, type, name, form.SecondOf(t.Layer));
        else
            AddMatrix(g, name, m!, MatrixType(type, t, m!.Cols, c));
    }

    private static GgmlType MatrixType(GgufFileType type, TensorRef t, int cols, ModelConfig c) =>
        t.Spec.GgufType is TensorRole role ? TypeFor(type, role, cols, c, t.Layer) : GgmlType.F32;

    /// <summary>Adds the general.* and deepseek2.* keys of <paramref name="c"/> (docs/deepseek-architecture.md §9).</summary>
    public static void WriteMetadata(GgufWriter g, ModelConfig c, GgufFileType type, string name)
    {
        ArchitectureDescriptor family = c.GetArchitecture();
        string A = family.GgufArchitecture + ".";
        g.Add("general.architecture", family.GgufArchitecture);
        g.Add("general.type", "model");
        g.Add("general.name", name);
        g.Add(A + "block_count", (uint)c.NumHiddenLayers);
        g.Add(A + "context_length", (uint)c.MaxPositionEmbeddings);
        g.Add(A + "embedding_length", (uint)c.HiddenSize);
        g.Add(A + "feed_forward_length", (uint)c.IntermediateSize);
        g.Add(A + "attention.head_count", (uint)c.NumAttentionHeads);
        g.Add(A + "attention.head_count_kv", 1u); // MLA runs as MQA over the latent
        g.Add(A + "rope.freq_base", (float)c.Rope.Theta);
        g.Add(A + "attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        if (c.NRoutedExperts > 0)
        {
            g.Add(A + "expert_used_count", (uint)c.NumExpertsPerTok);
            g.Add(A + "expert_count", (uint)c.NRoutedExperts);
        }
        g.Add("general.file_type", FileTypeId(type));
        g.Add(A + "leading_dense_block_count", (uint)(c.NRoutedExperts > 0 ? c.FirstKDenseReplace : c.NumHiddenLayers));
        g.Add(A + "vocab_size", (uint)c.VocabSize);
        g.Add(A + "attention.q_lora_rank", (uint)c.QLoraRank); // 0 = no query compression (see the file header)
        g.Add(A + "attention.kv_lora_rank", (uint)c.KvLoraRank);
        g.Add(A + "attention.key_length", (uint)(c.KvLoraRank + c.QkRopeHeadDim));
        g.Add(A + "attention.value_length", (uint)c.KvLoraRank);
        g.Add(A + "attention.key_length_mla", (uint)c.QkHeadDim);
        g.Add(A + "attention.value_length_mla", (uint)c.VHeadDim);
        if (c.NRoutedExperts > 0)
        {
            g.Add(A + "expert_feed_forward_length", (uint)c.MoeIntermediateSize);
            g.Add(A + "expert_shared_count", (uint)c.NSharedExperts);
            g.Add(A + "expert_weights_scale", (float)c.RoutedScalingFactor);
            if (c.NormTopkProb)
                g.Add(A + "expert_weights_norm", true);
            g.Add(A + "expert_gating_func", c.ScoringFunc == ScoringFunc.Sigmoid ? 2u : 1u);
            g.Add(A + "expert_group_count", (uint)c.NGroup);
            g.Add(A + "expert_group_used_count", (uint)c.TopkGroup);
        }
        g.Add(A + "rope.dimension_count", (uint)c.QkRopeHeadDim);
        if (c.Rope.Type == RopeType.Yarn)
        {
            g.Add(A + "rope.scaling.type", "yarn");
            g.Add(A + "rope.scaling.factor", (float)c.Rope.Factor);
            g.Add(A + "rope.scaling.original_context_length", (uint)c.Rope.OriginalMaxPositions);
            if (c.Rope.MscaleAllDim is double ma && ma != 0)
                g.Add(A + "rope.scaling.yarn_log_multiplier", (float)(0.1 * ma));
            g.Add(A + "rope.scaling.yarn_beta_fast", (float)c.Rope.BetaFast);
            g.Add(A + "rope.scaling.yarn_beta_slow", (float)c.Rope.BetaSlow);
        }
        foreach ((string key, uint value) in family.GgufKeys?.Invoke(c) ?? [])
            g.Add(A + key, value);
        g.Add("general.quantization_version", 2u);
    }

    /// <summary>Which of llama.cpp's Q4_K_M rules applies to a tensor.</summary>
    public enum TensorRole
    {
        Other,
        Embedding,
        Output,
        FfnDown,
        AttnOutput,
    }

    /// <summary>The GGUF type a matrix of <paramref name="cols"/> columns gets (file header); layer -1 for non-layer tensors.</summary>
    public static GgmlType TypeFor(GgufFileType type, TensorRole role, int cols, ModelConfig c, int layer)
    {
        GgmlType t = type switch
        {
            GgufFileType.F32 => GgmlType.F32,
            GgufFileType.BF16 => GgmlType.BF16,
            GgufFileType.Q8_0 => GgmlType.Q8_0,
            GgufFileType.Q4_0 => role == TensorRole.Output ? (cols % 256 == 0 ? GgmlType.Q6_K : GgmlType.Q8_0) : GgmlType.Q4_0,
            _ => role switch
            {
                TensorRole.Output => cols % 256 == 0 ? GgmlType.Q6_K : GgmlType.Q8_0,
                TensorRole.FfnDown when UseMoreBits(layer, c.NumHiddenLayers) => GgmlType.Q6_K,
                TensorRole.AttnOutput when c.NRoutedExperts == 8 => GgmlType.Q6_K,
                _ => GgmlType.Q4_K,
            },
        };
        if (t is GgmlType.Q4_K or GgmlType.Q6_K && cols % 256 != 0)
            t = GgmlType.Q8_0;
        if (t is GgmlType.Q8_0 or GgmlType.Q4_0 && cols % 32 != 0)
            t = GgmlType.F16;
        return t;
    }

    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers and every third one between.</summary>
    public static bool UseMoreBits(int layer, int layers) =>
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    private static void AddVector(GgufWriter g, string name, float[] v) =>
        g.AddTensor(name, GgmlType.F32, [v.Length], s => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan())));

    private static void AddMatrix(GgufWriter g, string name, WeightMatrix m, GgmlType type) =>
        g.AddTensor(name, type, [m.Cols, m.Rows], s => WriteRows(s, m, 0, m.Rows, type));

    private static void AddExperts(GgufWriter g, string name, WeightMatrix[] experts, GgmlType type)
    {
        WeightMatrix e0 = experts[0];
        g.AddTensor(name, type, [e0.Cols, e0.Rows, experts.Length], s =>
        {
            foreach (WeightMatrix e in experts)
                WriteRows(s, e, 0, e.Rows, type);
        });
    }

    // attn_k_b {Dn, R, Nh}: per head the Dn rows of W_UK transposed to R rows of Dn; attn_v_b {R, Dv, Nh}: the Dv rows of W_UV
    private static void AddKvB(GgufWriter g, ModelConfig c, int layer, WeightMatrix kvb, GgufFileType type, string kName, string vName)
    {
        int Nh = c.NumAttentionHeads, Dn = c.QkNopeHeadDim, Dv = c.VHeadDim, R = c.KvLoraRank;
        GgmlType kType = TypeFor(type, TensorRole.Other, Dn, c, layer), vType = TypeFor(type, TensorRole.Other, R, c, layer);
        g.AddTensor(kName, kType, [Dn, R, Nh], s =>
        {
            var wuk = new float[Dn * R];
            var kb = new float[R * Dn];
            for (int h = 0; h < Nh; h++)
            {
                for (int i = 0; i < Dn; i++)
                    kvb.ReadRow(h * (Dn + Dv) + i, wuk.AsSpan(i * R, R));
                for (int r = 0; r < R; r++)
                {
                    for (int i = 0; i < Dn; i++)
                        kb[r * Dn + i] = wuk[i * R + r];
                }
                var m = new F32Matrix(R, Dn, kb);
                WriteRows(s, m, 0, R, kType);
            }
        });
        g.AddTensor(vName, vType, [R, Dv, Nh], s =>
        {
            for (int h = 0; h < Nh; h++)
                WriteRows(s, kvb, h * (Dn + Dv) + Dn, Dv, vType);
        });
    }

    /// <summary>Writes rows [start, start + count) of m converted to <paramref name="type"/> (raw copy when already in it).</summary>
    internal static void WriteRows(Stream s, WeightMatrix m, int start, int count, GgmlType type)
    {
        int cols = m.Cols;
        long rowBytes = GgmlTypes.RowBytes(type, cols);
        var row = new float[cols];
        var bytes = new byte[rowBytes];
        fixed (byte* dst = bytes)
        {
            for (int r = start; r < start + count; r++)
            {
                ReadOnlySpan<byte> raw = RawRow(m, r, type, rowBytes, bytes);
                if (!raw.IsEmpty)
                {
                    s.Write(raw);
                    continue;
                }
                m.ReadRow(r, row);
                switch (type)
                {
                    case GgmlType.F32:
                        row.AsSpan().CopyTo(new Span<float>(dst, cols));
                        break;
                    case GgmlType.F16:
                        System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(row, new Span<Half>(dst, cols));
                        break;
                    case GgmlType.BF16:
                        Bf16.FromFloat(row, new Span<ushort>(dst, cols));
                        break;
                    case GgmlType.Q8_0:
                        Q8_0Matrix.QuantizeRow(row, dst);
                        break;
                    case GgmlType.Q4_K:
                        Q4KMatrix.QuantizeRow(row, dst);
                        break;
                    case GgmlType.Q6_K:
                        Q6KMatrix.QuantizeRow(row, dst);
                        break;
                    case GgmlType.Q4_0:
                        Q4_0Matrix.QuantizeRow(row, dst);
                        break;
                    case GgmlType.MXFP4:
                        Mxfp4Matrix.QuantizeRow(row, dst);
                        break;
                    default:
                        throw new NotSupportedException($"cannot write {GgmlTypes.Name(type)} tensors");
                }
                s.Write(bytes);
            }
        }
    }

    // the stored bytes of a row when the matrix already holds exactly the target format (the interleaved Q4_K layout
    // gives them back exactly, copied into scratch)
    private static ReadOnlySpan<byte> RawRow(WeightMatrix m, int r, GgmlType type, long rowBytes, byte[] scratch) => (m, type) switch
    {
        (F32Matrix f, GgmlType.F32) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.Row(r)),
        (Bf16Matrix b, GgmlType.BF16) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.Row(r)),
        (F16Matrix h, GgmlType.F16) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(h.Row(r)),
        (Q8_0Matrix q, GgmlType.Q8_0) => new ReadOnlySpan<byte>(q.RowPointer(r), (int)rowBytes),
        (Q4KMatrix q, GgmlType.Q4_K) => new ReadOnlySpan<byte>(q.RowPointer(r), (int)rowBytes),
        (Q4KRepackingMatrix q, GgmlType.Q4_K) => new ReadOnlySpan<byte>(q.RowLayout.RowPointer(r), (int)rowBytes),
        (Q4KInterleavedMatrix q, GgmlType.Q4_K) => StandardRow(q, r, scratch),
        (Q6KMatrix q, GgmlType.Q6_K) => new ReadOnlySpan<byte>(q.RowPointer(r), (int)rowBytes),
        (Q6KRepackingMatrix q, GgmlType.Q6_K) => new ReadOnlySpan<byte>(q.RowLayout.RowPointer(r), (int)rowBytes),
        (Q4_0Matrix q, GgmlType.Q4_0) => new ReadOnlySpan<byte>(q.RowPointer(r), (int)rowBytes),
        (Mxfp4Matrix q, GgmlType.MXFP4) => new ReadOnlySpan<byte>(q.RowPointer(r), (int)rowBytes),
        (Mxfp4SplitMatrix q, GgmlType.MXFP4) => q.CopyGgmlRow(r, scratch),
        _ => default,
    };

    private static ReadOnlySpan<byte> StandardRow(Q4KInterleavedMatrix q, int r, byte[] scratch)
    {
        q.CopyStandardRow(r, scratch);
        return scratch;
    }
}
