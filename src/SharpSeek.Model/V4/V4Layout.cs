// One definition of a DeepSeek-V4 layer's tensors for every place that names them: DeepSeek's checkpoint names (relative
// to "layers.N." or "mtp.M."), their llama.cpp GGUF names (relative to "blk.N."), the shapes, and which
// V4LayerWeights member holds each. The checkpoint loader, the GGUF loader and the GGUF writer all go through it.
using SharpSeek.Tensors;

namespace SharpSeek.Model.V4;

/// <summary>A source of one layer's tensors by DeepSeek's relative names (a checkpoint or a GGUF file).</summary>
internal interface IV4LayerSource
{
    WeightMatrix Matrix(string name, int rows, int cols);
    float[] Vector(string name, int length);
    /// <summary>A 2-D fp32 table [rows, cols] (the compressors' position biases).</summary>
    float[] Table(string name, int rows, int cols);
    /// <summary>The routed experts' matrices of projection w1, w2 or w3, one per expert.</summary>
    WeightMatrix[] Experts(string projection, int rows, int cols);
    /// <summary>A hash layer's token → expert table [rows, cols].</summary>
    int[] Ids(string name, int rows, int cols);
}

/// <summary>The names and shapes of a V4 layer's tensors.</summary>
internal static class V4Layout
{
    private static readonly Dictionary<string, string> s_gguf = new(StringComparer.Ordinal)
    {
        ["attn_norm.weight"] = "attn_norm.weight",
        ["ffn_norm.weight"] = "ffn_norm.weight",
        ["hc_attn_fn"] = "hc_attn_fn.weight",
        ["hc_attn_base"] = "hc_attn_base.weight",
        ["hc_attn_scale"] = "hc_attn_scale.weight",
        ["hc_ffn_fn"] = "hc_ffn_fn.weight",
        ["hc_ffn_base"] = "hc_ffn_base.weight",
        ["hc_ffn_scale"] = "hc_ffn_scale.weight",
        ["attn.wq_a.weight"] = "attn_q_a.weight",
        ["attn.q_norm.weight"] = "attn_q_a_norm.weight",
        ["attn.wq_b.weight"] = "attn_q_b.weight",
        ["attn.wkv.weight"] = "attn_kv.weight",
        ["attn.kv_norm.weight"] = "attn_kv_a_norm.weight",
        ["attn.wo_a.weight"] = "attn_output_a.weight", // {Nh·D/G, Ro·G}: group g's rows g·Ro.. (llama.cpp views it {Nh·D/G, Ro, G})
        ["attn.wo_b.weight"] = "attn_output_b.weight",
        ["attn.attn_sink"] = "attn_sinks.weight",
        ["attn.compressor.wkv.weight"] = "attn_compressor_kv.weight",
        ["attn.compressor.wgate.weight"] = "attn_compressor_gate.weight",
        ["attn.compressor.ape"] = "attn_compressor_ape.weight",
        ["attn.compressor.norm.weight"] = "attn_compressor_norm.weight",
        ["attn.indexer.wq_b.weight"] = "indexer.attn_q_b.weight",
        ["attn.indexer.weights_proj.weight"] = "indexer.proj.weight",
        ["attn.indexer.compressor.wkv.weight"] = "indexer_compressor_kv.weight",
        ["attn.indexer.compressor.wgate.weight"] = "indexer_compressor_gate.weight",
        ["attn.indexer.compressor.ape"] = "indexer_compressor_ape.weight",
        ["attn.indexer.compressor.norm.weight"] = "indexer_compressor_norm.weight",
        ["ffn.gate.weight"] = "ffn_gate_inp.weight",
        ["ffn.gate.bias"] = "exp_probs_b.bias",
        ["ffn.gate.tid2eid"] = "ffn_gate_tid2eid.weight",
        ["ffn.shared_experts.w1.weight"] = "ffn_gate_shexp.weight",
        ["ffn.shared_experts.w2.weight"] = "ffn_down_shexp.weight",
        ["ffn.shared_experts.w3.weight"] = "ffn_up_shexp.weight",
        ["w1"] = "ffn_gate_exps.weight",
        ["w2"] = "ffn_down_exps.weight",
        ["w3"] = "ffn_up_exps.weight",
    };

    /// <summary>llama.cpp's name (after "blk.N.") of DeepSeek's layer tensor <paramref name="name"/> (or expert projection w1/w2/w3).</summary>
    public static string GgufName(string name) =>
        s_gguf.TryGetValue(name, out string? g) ? g : throw new ArgumentException($"'{name}' is not a DeepSeek-V4 layer tensor");

    /// <summary>Builds layer <paramref name="l"/> (main or MTP) from <paramref name="s"/>.</summary>
    public static V4LayerWeights Layer(IV4LayerSource s, V4Config c, int l)
    {
        int H = c.HiddenSize, Nh = c.NumAttentionHeads, D = c.HeadDim, Dq = c.QLoraRank, G = c.OGroups, Ro = c.OLoraRank;
        int E = c.NRoutedExperts, I = c.MoeIntermediateSize, Is = I * c.NSharedExperts, mix = c.HcMixDim, Hc = c.HcMult;
        int ratio = c.Ratio(l);
        bool hash = c.IsHashLayer(l) && l < c.NumHiddenLayers;
        V4CompressorWeights Compressor(string p, int width)
        {
            int coff = ratio == 4 ? 2 : 1; // ratio 4 compresses overlapping windows: two halves per row
            return new V4CompressorWeights
            {
                Wkv = s.Matrix(p + "wkv.weight", coff * width, H),
                Wgate = s.Matrix(p + "wgate.weight", coff * width, H),
                Ape = s.Table(p + "ape", ratio, coff * width),
                Norm = s.Vector(p + "norm.weight", width),
            };
        }
        return new V4LayerWeights
        {
            AttnNorm = s.Vector("attn_norm.weight", H),
            FfnNorm = s.Vector("ffn_norm.weight", H),
            HcAttnFn = s.Matrix("hc_attn_fn", mix, Hc * H),
            HcAttnBase = s.Vector("hc_attn_base", mix),
            HcAttnScale = s.Vector("hc_attn_scale", 3),
            HcFfnFn = s.Matrix("hc_ffn_fn", mix, Hc * H),
            HcFfnBase = s.Vector("hc_ffn_base", mix),
            HcFfnScale = s.Vector("hc_ffn_scale", 3),
            WqA = s.Matrix("attn.wq_a.weight", Dq, H),
            QNorm = s.Vector("attn.q_norm.weight", Dq),
            WqB = s.Matrix("attn.wq_b.weight", Nh * D, Dq),
            Wkv = s.Matrix("attn.wkv.weight", D, H),
            KvNorm = s.Vector("attn.kv_norm.weight", D),
            WoA = s.Matrix("attn.wo_a.weight", G * Ro, Nh * D / G),
            WoB = s.Matrix("attn.wo_b.weight", H, G * Ro),
            Sinks = s.Vector("attn.attn_sink", Nh),
            Compressor = ratio != 0 ? Compressor("attn.compressor.", D) : null,
            Indexer = ratio == 4
                ? new V4IndexerWeights
                {
                    WqB = s.Matrix("attn.indexer.wq_b.weight", c.IndexHeads * c.IndexHeadDim, Dq),
                    Proj = s.Matrix("attn.indexer.weights_proj.weight", c.IndexHeads, H),
                    Compressor = Compressor("attn.indexer.compressor.", c.IndexHeadDim),
                }
                : null,
            Gate = s.Matrix("ffn.gate.weight", E, H),
            Bias = hash ? null : s.Vector("ffn.gate.bias", E),
            Tid2Eid = hash ? s.Ids("ffn.gate.tid2eid", c.VocabSize, c.NumExpertsPerTok) : null,
            ExpertGate = s.Experts("w1", I, H),
            ExpertDown = s.Experts("w2", H, I),
            ExpertUp = s.Experts("w3", I, H),
            SharedGate = s.Matrix("ffn.shared_experts.w1.weight", Is, H),
            SharedDown = s.Matrix("ffn.shared_experts.w2.weight", H, Is),
            SharedUp = s.Matrix("ffn.shared_experts.w3.weight", Is, H),
        };
    }

    /// <summary>
    /// A layer's tensors by DeepSeek's relative name, in llama.cpp's order (the writer's): WeightMatrix, float[]
    /// (vectors and tables), int[] (the token → expert table) or WeightMatrix[] (the experts of w1, w2, w3).
    /// </summary>
    public static IEnumerable<(string Name, object Value)> Tensors(V4LayerWeights w)
    {
        yield return ("attn_norm.weight", w.AttnNorm);
        yield return ("attn.attn_sink", w.Sinks);
        yield return ("attn.wq_a.weight", w.WqA);
        yield return ("attn.q_norm.weight", w.QNorm);
        yield return ("attn.wq_b.weight", w.WqB);
        yield return ("attn.wkv.weight", w.Wkv);
        yield return ("attn.kv_norm.weight", w.KvNorm);
        yield return ("attn.wo_a.weight", w.WoA);
        yield return ("attn.wo_b.weight", w.WoB);
        yield return ("hc_attn_fn", w.HcAttnFn);
        yield return ("hc_attn_base", w.HcAttnBase);
        yield return ("hc_attn_scale", w.HcAttnScale);
        yield return ("hc_ffn_fn", w.HcFfnFn);
        yield return ("hc_ffn_base", w.HcFfnBase);
        yield return ("hc_ffn_scale", w.HcFfnScale);
        foreach ((string p, V4CompressorWeights? cw) in new[] { ("attn.compressor.", w.Compressor), ("attn.indexer.compressor.", w.Indexer?.Compressor) })
        {
            if (cw is null)
                continue;
            if (p.StartsWith("attn.indexer", StringComparison.Ordinal))
            {
                yield return ("attn.indexer.weights_proj.weight", w.Indexer!.Proj);
                yield return ("attn.indexer.wq_b.weight", w.Indexer.WqB);
            }
            yield return (p + "wkv.weight", cw.Wkv);
            yield return (p + "wgate.weight", cw.Wgate);
            yield return (p + "ape", cw.Ape);
            yield return (p + "norm.weight", cw.Norm);
        }
        yield return ("ffn.gate.weight", w.Gate);
        if (w.Tid2Eid is { } table)
            yield return ("ffn.gate.tid2eid", table);
        if (w.Bias is { } bias)
            yield return ("ffn.gate.bias", bias);
        yield return ("ffn_norm.weight", w.FfnNorm);
        yield return ("w1", w.ExpertGate);
        yield return ("w2", w.ExpertDown);
        yield return ("w3", w.ExpertUp);
        yield return ("ffn.shared_experts.w1.weight", w.SharedGate);
        yield return ("ffn.shared_experts.w2.weight", w.SharedDown);
        yield return ("ffn.shared_experts.w3.weight", w.SharedUp);
    }
}
