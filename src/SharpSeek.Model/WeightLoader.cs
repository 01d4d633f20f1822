// Builds ModelWeights from a weight source (a safetensors checkpoint, a GGUF file, random init), checking every
// tensor's presence and shape, and that the checkpoint has no tensor the model does not use.
using SharpSeek.Formats.Safetensors;
using SharpSeek.Tensors;

namespace SharpSeek.Model;

/// <summary>Where weights come from, by checkpoint name.</summary>
public interface IWeightSource
{
    /// <summary>A matrix [rows, cols]; throws <see cref="InvalidDataException"/> naming the tensor if absent or misshapen.</summary>
    WeightMatrix Matrix(string name, int rows, int cols);

    /// <summary>A vector of fp32 values [length].</summary>
    float[] Vector(string name, int length);

    /// <summary>True if the source has the tensor.</summary>
    bool Has(string name);
}

/// <summary>How to load weights.</summary>
public sealed record LoadOptions
{
    /// <summary>In-memory format of the linear layers; null keeps the checkpoint's own (memory-mapped, no copy).</summary>
    public WeightFormat? Dtype { get; init; }
}

/// <summary>Builds the weight structure of a config from a source.</summary>
public static class WeightLoader
{
    /// <summary>Opens a Hugging Face checkpoint directory (config.json + safetensors), or a .gguf file, and loads its weights.</summary>
    public static ModelWeights Load(string directory, ModelConfig? config = null, LoadOptions? options = null)
    {
        if (Gguf.GgufModel.IsGgufPath(directory))
            return Gguf.GgufModel.Load(directory, config, options);
        config ??= ModelConfig.Load(directory);
        Checkpoint ckpt = Checkpoint.Open(directory);
        var owners = new OwnerList { ckpt };
        try
        {
            var stored = new CheckpointSource(ckpt, config);
            IWeightSource src = options?.Dtype is WeightFormat f ? new ConvertingSource(stored, f, owners) : stored;
            ModelWeights w = Build(config, src, owners);
            stored.CheckAllUsed();
            return w;
        }
        catch
        {
            owners.Dispose();
            throw;
        }
    }

    /// <summary>Disposes a list of owners in reverse order.</summary>
    public sealed class OwnerList : List<IDisposable>, IDisposable
    {
        public void Dispose()
        {
            for (int i = Count - 1; i >= 0; i--)
                this[i].Dispose();
            Clear();
        }
    }

    /// <summary>
    /// Converts matrices to a target format as they are read: every linear layer of the decoder and the output
    /// heads. The router keeps bf16 unless the target is fp32 or bf16; kv_b_proj (used band by band in absorbed
    /// attention) becomes Q8_0 for the Q8_0 and Q4_K targets, bf16 for FP8; the embedding is read one row per token and
    /// is converted only to fp32 or bf16.
    /// Q4_K output heads use Q8_0, as llama.cpp's Q4_K_M keeps its output head at higher precision.
    /// </summary>
    public sealed class ConvertingSource(IWeightSource inner, WeightFormat target, List<IDisposable> owners) : IWeightSource
    {
        public bool Has(string name) => inner.Has(name);

        public float[] Vector(string name, int length) => inner.Vector(name, length);

        public WeightMatrix Matrix(string name, int rows, int cols)
        {
            WeightMatrix m = inner.Matrix(name, rows, cols);
            return WeightConversion.Convert(m, TargetFor(name, target), owners);
        }

        /// <summary>The format a tensor gets when the model is loaded as <paramref name="target"/>.</summary>
        public static WeightFormat TargetFor(string name, WeightFormat target)
        {
            bool plain = target is WeightFormat.F32 or WeightFormat.BF16;
            if (name.EndsWith("mlp.gate.weight", StringComparison.Ordinal) || name.EndsWith("embed_tokens.weight", StringComparison.Ordinal))
                return plain ? target : WeightFormat.BF16;
            // W_UK and W_UV are read band by band on every decoded token: Q8_0 (as llama.cpp's attn_k_b / attn_v_b in
            // its quantized files) halves those bytes against bf16; FP8 keeps them bf16
            if (name.Contains("kv_b_proj", StringComparison.Ordinal))
                return plain ? target : target is WeightFormat.Q8_0 or WeightFormat.Q4_K ? WeightFormat.Q8_0 : WeightFormat.BF16;
            bool head = name == TensorNames.LmHead || name.EndsWith("shared_head.head.weight", StringComparison.Ordinal);
            if (head && target == WeightFormat.Q4_K)
                return WeightFormat.Q8_0;
            return target;
        }
    }

    /// <summary>Builds the weights of <paramref name="c"/> from <paramref name="src"/>.</summary>
    public static ModelWeights Build(ModelConfig c, IWeightSource src, IDisposable? owner)
    {
        int H = c.HiddenSize, V = c.VocabSize;
        var layers = new LayerWeights[c.NumHiddenLayers];
        for (int l = 0; l < layers.Length; l++)
            layers[l] = BuildLayer(c, src, l, c.IsMoeLayer(l));
        WeightMatrix embed = src.Matrix(TensorNames.Embed, V, H);
        WeightMatrix head = c.TieWordEmbeddings ? embed : src.Matrix(TensorNames.LmHead, V, H);
        var mtp = new MtpWeights[c.NumNextnPredictLayers];
        for (int k = 0; k < mtp.Length; k++)
        {
            int l = c.NumHiddenLayers + k;
            mtp[k] = new MtpWeights
            {
                Embed = src.Has(TensorNames.MtpEmbed(l)) ? src.Matrix(TensorNames.MtpEmbed(l), V, H) : embed,
                ENorm = src.Vector(TensorNames.MtpENorm(l), H),
                HNorm = src.Vector(TensorNames.MtpHNorm(l), H),
                EhProj = src.Matrix(TensorNames.MtpEhProj(l), H, 2 * H),
                Layer = BuildLayer(c, src, l, moe: true),
                HeadNorm = src.Vector(TensorNames.MtpHeadNorm(l), H),
                Head = src.Has(TensorNames.MtpHead(l)) ? src.Matrix(TensorNames.MtpHead(l), V, H) : head,
            };
        }
        return new ModelWeights
        {
            Config = c,
            Embed = embed,
            Layers = layers,
            Norm = src.Vector(TensorNames.Norm, H),
            LmHead = head,
            Mtp = mtp,
            Owner = owner,
        };
    }

    private static LayerWeights BuildLayer(ModelConfig c, IWeightSource src, int l, bool moe)
    {
        int H = c.HiddenSize, Nh = c.NumAttentionHeads, Dqk = c.QkHeadDim, R = c.KvLoraRank;
        var attn = new AttentionWeights
        {
            Wq = c.QLoraRank == 0 ? src.Matrix(TensorNames.Wq(l), Nh * Dqk, H) : null,
            WqA = c.QLoraRank > 0 ? src.Matrix(TensorNames.WqA(l), c.QLoraRank, H) : null,
            QNorm = c.QLoraRank > 0 ? src.Vector(TensorNames.QNorm(l), c.QLoraRank) : null,
            WqB = c.QLoraRank > 0 ? src.Matrix(TensorNames.WqB(l), Nh * Dqk, c.QLoraRank) : null,
            WkvA = src.Matrix(TensorNames.WkvA(l), R + c.QkRopeHeadDim, H),
            KvNorm = src.Vector(TensorNames.KvNorm(l), R),
            WkvB = src.Matrix(TensorNames.WkvB(l), Nh * (c.QkNopeHeadDim + c.VHeadDim), R),
            Wo = src.Matrix(TensorNames.Wo(l), H, Nh * c.VHeadDim),
        };
        MlpWeights Mlp(string part, int width) => new()
        {
            W1 = src.Matrix(TensorNames.Mlp(l, part, TensorNames.Gate), width, H),
            W3 = src.Matrix(TensorNames.Mlp(l, part, TensorNames.Up), width, H),
            W2 = src.Matrix(TensorNames.Mlp(l, part, TensorNames.Down), H, width),
        };
        MoeWeights? moeW = null;
        MlpWeights? dense = null;
        if (moe)
        {
            int E = c.NRoutedExperts, Ie = c.MoeIntermediateSize;
            var experts = new MlpWeights[E];
            for (int e = 0; e < E; e++)
                experts[e] = Mlp(TensorNames.Expert(e), Ie);
            moeW = new MoeWeights
            {
                Gate = src.Matrix(TensorNames.Router(l), E, H),
                Bias = c.TopkMethod == TopKMethod.NoAuxTc ? src.Vector(TensorNames.RouterBias(l), E) : null,
                Experts = experts,
                Shared = c.NSharedExperts > 0 ? Mlp(TensorNames.Shared, Ie * c.NSharedExperts) : null,
            };
        }
        else
        {
            dense = Mlp(TensorNames.Dense, c.IntermediateSize);
        }
        return new LayerWeights
        {
            Index = l,
            AttnNorm = src.Vector(TensorNames.AttnNorm(l), H),
            Attn = attn,
            FfnNorm = src.Vector(TensorNames.FfnNorm(l), H),
            Dense = dense,
            Moe = moeW,
        };
    }

    /// <summary>A checkpoint as a weight source; records which tensors were used.</summary>
    private sealed class CheckpointSource(Checkpoint ckpt, ModelConfig config) : IWeightSource
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);

        public bool Has(string name) => ckpt.Contains(name);

        public WeightMatrix Matrix(string name, int rows, int cols)
        {
            _used.Add(name);
            string scale = name + TensorNames.ScaleSuffix;
            if (ckpt.Contains(scale))
                _used.Add(scale);
            int br = config.Quantization?.BlockRows ?? 128, bc = config.Quantization?.BlockCols ?? 128;
            return ckpt.Matrix(name, rows, cols, br, bc);
        }

        public float[] Vector(string name, int length)
        {
            _used.Add(name);
            return ckpt.ReadFloats(name, length);
        }

        /// <summary>Throws naming the first tensor of the checkpoint the model did not read.</summary>
        public void CheckAllUsed()
        {
            foreach (string name in ckpt.Names.Order(StringComparer.Ordinal))
            {
                if (!_used.Contains(name) && !name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal))
                {
                    string file = ckpt.Info(name).FilePath;
                    throw new InvalidDataException($"{file}: unexpected tensor '{name}' (not part of a {config.ModelType} model with this config.json)");
                }
            }
        }
    }
}
