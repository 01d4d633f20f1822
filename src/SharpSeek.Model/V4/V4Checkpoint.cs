// DeepSeek-V4 as released on Hugging Face (deepseek-ai/DeepSeek-V4-Flash): config.json (model_type deepseek_v4) and
// safetensors with DeepSeek's own tensor names (embed.weight, layers.N.attn.wq_a.weight, layers.N.ffn.experts.E.w1.weight,
// mtp.0.*). Weights are used as stored: FP8 E4M3 with a sibling NAME.scale of UE8M0 block scales (128x128), routed
// experts in MXFP4 (codes [out, in/2] as I8/U8, two per byte, + NAME.scale UE8M0 [out, in/32]), BF16/F32 otherwise.
// Only the block scales are widened to fp32 (one float per 128x128 block); nothing else is copied.
using SharpSeek.Formats;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Tensors;

namespace SharpSeek.Model.V4;

/// <summary>Loads DeepSeek-V4 checkpoints in the released safetensors layout.</summary>
public static class V4Checkpoint
{
    /// <summary>Opens config.json and the safetensors of <paramref name="directory"/> and maps the weights.</summary>
    public static V4Weights Load(string directory)
    {
        V4Config c = V4Config.Load(directory);
        Checkpoint ck = Checkpoint.Open(directory);
        var owners = new List<IDisposable>();
        try
        {
            var r = new Reader(ck, c, owners);
            int H = c.HiddenSize, V = c.VocabSize, Hc = c.HcMult;
            WeightMatrix embed = r.Matrix("embed.weight", V, H);
            WeightMatrix head = r.Matrix("head.weight", V, H);
            float[] norm = r.Vector("norm.weight", H);
            WeightMatrix hcFn = r.Matrix("hc_head_fn", Hc, Hc * H);
            float[] hcBase = r.Vector("hc_head_base", Hc), hcScale = r.Vector("hc_head_scale", 1);
            var layers = new V4LayerWeights[c.NumHiddenLayers];
            for (int l = 0; l < layers.Length; l++)
                layers[l] = r.Layer($"layers.{l}.", l);
            var mtp = new V4MtpWeights[c.NumNextnPredictLayers];
            for (int m = 0; m < mtp.Length; m++)
            {
                string p = $"mtp.{m}.";
                // DeepSeek's e_proj and h_proj as one [H, 2H] product over [enorm(e), hnorm(h)], as llama.cpp's eh_proj
                WeightMatrix e = r.Matrix(p + "e_proj.weight", H, H), h = r.Matrix(p + "h_proj.weight", H, H);
                mtp[m] = new V4MtpWeights
                {
                    EhProj = Concat(e, h, owners),
                    ENorm = r.Vector(p + "enorm.weight", H),
                    HNorm = r.Vector(p + "hnorm.weight", H),
                    HeadNorm = r.Vector(p + "norm.weight", H),
                    Layer = r.Layer(p, c.NumHiddenLayers + m),
                };
                // the module's own hyper-connection head: llama.cpp's deepseek4 files keep one head, the model's; so do we
                r.Skip(p + "hc_head_fn", p + "hc_head_base", p + "hc_head_scale");
            }
            r.CheckAllUsed();
            owners.Add(ck);
            return new V4Weights(c, embed, head, norm, hcFn, hcBase, hcScale, layers, mtp, [.. owners]);
        }
        catch
        {
            foreach (IDisposable o in owners)
                o.Dispose();
            ck.Dispose();
            throw;
        }
    }

    // [a | b] as one fp32 matrix (the MTP projections are H x H each: small next to the experts)
    private static WeightMatrix Concat(WeightMatrix a, WeightMatrix b, List<IDisposable> owners)
    {
        var v = new float[(long)a.Rows * (a.Cols + b.Cols)];
        var row = new float[Math.Max(a.Cols, b.Cols)];
        for (int r = 0; r < a.Rows; r++)
        {
            a.ReadRow(r, row);
            row.AsSpan(0, a.Cols).CopyTo(v.AsSpan(r * (a.Cols + b.Cols)));
            b.ReadRow(r, row);
            row.AsSpan(0, b.Cols).CopyTo(v.AsSpan(r * (a.Cols + b.Cols) + a.Cols));
        }
        return new F32Matrix(a.Rows, a.Cols + b.Cols, v);
    }

    /// <summary>Tensor access by DeepSeek name with shape and dtype checks; records which tensors were used.</summary>
    private sealed unsafe class Reader(Checkpoint ck, V4Config c, List<IDisposable> owners)
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);

        private TensorInfo Use(string name)
        {
            if (!ck.Contains(name))
                throw new InvalidDataException($"{ck.Directory}: tensor '{name}' is missing");
            _used.Add(name);
            return ck.Info(name);
        }

        public void Skip(params string[] names)
        {
            foreach (string n in names)
            {
                if (ck.Contains(n))
                    _used.Add(n);
            }
        }

        public float[] Vector(string name, int length)
        {
            Use(name);
            return ck.ReadFloats(name, length);
        }

        public float[] Table(string name, int rows, int cols)
        {
            Use(name);
            return ck.ReadFloats(name, rows, cols);
        }

        /// <summary>A weight view in the stored format: FP8 E4M3 with a UE8M0 (or fp32) NAME.scale grid, or BF16/F16/F32.</summary>
        public WeightMatrix Matrix(string name, int rows, int cols)
        {
            TensorInfo t = Use(name);
            if (t.DType != DType.F8_E4M3)
                return ck.Matrix(name, rows, cols);
            Checkpoint.CheckShape(t, rows, cols);
            string scaleName = ScaleName(name);
            TensorInfo s = Use(scaleName);
            int sr = (rows + 127) / 128, sc = (cols + 127) / 128;
            Checkpoint.CheckShape(s, sr, sc);
            var scales = new NativeBuffer((long)sr * sc * 4);
            owners.Add(scales);
            WidenScales(s, scaleName, (float*)scales.Pointer, sr * sc);
            return new Fp8BlockMatrix(ck.Pointer(name), (float*)scales.Pointer, rows, cols, 128, 128, ck);
        }

        /// <summary>An MXFP4 expert matrix: codes [rows, cols/2] (I8 or U8) and UE8M0 scales [rows, cols/32] (F8_E8M0 or U8).</summary>
        public WeightMatrix Fp4(string name, int rows, int cols)
        {
            TensorInfo t = Use(name);
            if (t.DType is not (DType.I8 or DType.U8))
                return Matrix(name, rows, cols); // a dequantized (bf16 / fp8) export of the experts
            Checkpoint.CheckShape(t, rows, cols / 2);
            string scaleName = ScaleName(name);
            TensorInfo s = Use(scaleName);
            Checkpoint.CheckShape(s, rows, cols / 32);
            if (s.DType is not (DType.F8_E8M0 or DType.U8))
                throw new InvalidDataException($"{s.FilePath}: tensor '{scaleName}' has dtype {s.DType}; MXFP4 scales are F8_E8M0 (UE8M0)");
            return new Mxfp4SplitMatrix(ck.Pointer(name), ck.Pointer(scaleName), rows, cols, ck);
        }

        private static string ScaleName(string name) =>
            name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length] + ".scale" : name + ".scale";

        private void WidenScales(TensorInfo s, string name, float* dst, int n)
        {
            byte* p = ck.Pointer(name);
            switch (s.DType)
            {
                case DType.F8_E8M0:
                case DType.U8:
                    for (int i = 0; i < n; i++)
                    {
                        if (p[i] == 0xFF)
                            throw new InvalidDataException($"{s.FilePath}: tensor '{name}' holds the UE8M0 NaN code 0xFF at {i}");
                        dst[i] = MathF.ScaleB(1f, p[i] - 127);
                    }
                    break;
                case DType.F32:
                    new ReadOnlySpan<float>(p, n).CopyTo(new Span<float>(dst, n));
                    break;
                default:
                    throw new InvalidDataException($"{s.FilePath}: tensor '{name}' has dtype {s.DType}; FP8 block scales are F8_E8M0 or F32");
            }
        }

        public int[] Ids(string name, int rows, int cols)
        {
            TensorInfo t = Use(name);
            Checkpoint.CheckShape(t, rows, cols);
            return c.ExpertTable(ck.ReadInt64(name), $"{t.FilePath}: tensor '{name}'");
        }

        /// <summary>The layer under <paramref name="p"/> ("layers.N." or "mtp.M.") as V4Layout names it.</summary>
        public V4LayerWeights Layer(string p, int l) => V4Layout.Layer(new LayerSource(this, p), c, l);

        private sealed class LayerSource(Reader r, string prefix) : IV4LayerSource
        {
            public WeightMatrix Matrix(string name, int rows, int cols) => r.Matrix(prefix + name, rows, cols);
            public float[] Vector(string name, int length) => r.Vector(prefix + name, length);
            public float[] Table(string name, int rows, int cols) => r.Table(prefix + name, rows, cols);
            public int[] Ids(string name, int rows, int cols) => r.Ids(prefix + name, rows, cols);

            // routed experts one tensor each: ffn.experts.E.w1.weight (+ .scale)
            public WeightMatrix[] Experts(string projection, int rows, int cols) =>
                Enumerable.Range(0, r.ExpertCount).Select(e => r.Fp4($"{prefix}ffn.experts.{e}.{projection}.weight", rows, cols)).ToArray();
        }

        public int ExpertCount => c.NRoutedExperts;

        /// <summary>Throws naming the first tensor the model did not read.</summary>
        public void CheckAllUsed()
        {
            foreach (string n in ck.Names)
            {
                // hash layers also carry an unused selection bias in some exports; the vision variant's image-token bias
                if (!_used.Contains(n) && !n.EndsWith(".ffn.gate.bias", StringComparison.Ordinal) && !n.EndsWith(".gate.bias_vl", StringComparison.Ordinal))
                    throw new InvalidDataException($"{ck.Directory}: unexpected tensor '{n}' (not part of this {V4Config.ModelType} model)");
            }
        }
    }
}
