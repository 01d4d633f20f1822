// Builds ModelWeights from a weight source (a safetensors checkpoint, a GGUF file, random init), checking every
// tensor's presence and shape, and that the checkpoint has no tensor the model does not use.
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model.Architecture;
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

    /// <summary>How a V3.2 indexer scores (null: the default, fp8 as DeepSeek's reference).</summary>
    public IndexerPrecision? IndexerPrecision { get; init; }

    /// <summary>The config with these options' runtime settings applied.</summary>
    public ModelConfig Apply(ModelConfig c) => IndexerPrecision is { } p ? c with { IndexerPrecision = p } : c;
}

/// <summary>Builds the weight structure of a config from a source.</summary>
public static class WeightLoader
{
    /// <summary>Opens a Hugging Face checkpoint directory (config.json + safetensors), or a .gguf file, and loads its weights.</summary>
    public static ModelWeights Load(string directory, ModelConfig? config = null, LoadOptions? options = null)
    {
        if (Gguf.GgufModel.IsGgufPath(directory))
            return Gguf.GgufModel.Load(directory, config, options);
        config = options?.Apply(config ?? ModelConfig.Load(directory)) ?? config ?? ModelConfig.Load(directory);
        Checkpoint ckpt = Checkpoint.Open(directory);
        var owners = new OwnerList { ckpt };
        try
        {
            var stored = new CheckpointSource(ckpt, config);
            IWeightSource src = options?.Dtype is WeightFormat f ? new ConvertingSource(stored, f, owners, config.GetArchitecture()) : stored;
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
    /// heads, each by its role's <see cref="LoadRule"/> in the architecture descriptor. The router keeps bf16 unless
    /// the target is fp32 or bf16; kv_b_proj (used band by band in absorbed attention) becomes Q8_0 for the Q8_0 and
    /// Q4_K targets, bf16 for FP8; the embedding is read one row per token and is converted only to fp32 or bf16.
    /// Q4_K output heads use Q8_0, as llama.cpp's Q4_K_M keeps its output head at higher precision.
    /// </summary>
    public sealed class ConvertingSource(IWeightSource inner, WeightFormat target, List<IDisposable> owners, ArchitectureDescriptor arch) : IWeightSource
    {
        /// <summary>Converts a source of DeepSeek checkpoint names (shared by the V2 and V3 families).</summary>
        public ConvertingSource(IWeightSource inner, WeightFormat target, List<IDisposable> owners)
            : this(inner, target, owners, ArchitectureDescriptor.DeepSeekV3)
        {
        }

        public bool Has(string name) => inner.Has(name);

        public float[] Vector(string name, int length) => inner.Vector(name, length);

        public WeightMatrix Matrix(string name, int rows, int cols)
        {
            WeightMatrix m = inner.Matrix(name, rows, cols);
            return WeightConversion.Convert(m, TargetFor(arch, name, target), owners);
        }

        /// <summary>The format a tensor of DeepSeek checkpoint name <paramref name="name"/> gets when the model is loaded as <paramref name="target"/>.</summary>
        public static WeightFormat TargetFor(string name, WeightFormat target) => TargetFor(ArchitectureDescriptor.DeepSeekV3, name, target);

        /// <summary>The format a tensor gets when the model is loaded as <paramref name="target"/> (names <paramref name="arch"/> does not know convert as linear layers).</summary>
        public static WeightFormat TargetFor(ArchitectureDescriptor arch, string name, WeightFormat target) =>
            TargetFor(arch.TryParseHf(name, out TensorRef t) ? t.Spec.Load : LoadRule.Linear, target);

        /// <summary>The format a matrix of rule <paramref name="rule"/> gets when the model is loaded as <paramref name="target"/>.</summary>
        public static WeightFormat TargetFor(LoadRule rule, WeightFormat target)
        {
            bool plain = target is WeightFormat.F32 or WeightFormat.BF16;
            return rule switch
            {
                LoadRule.KeepBf16 => plain ? target : WeightFormat.BF16,
                // W_UK and W_UV are read band by band on every decoded token: Q8_0 (as llama.cpp's attn_k_b / attn_v_b in
                // its quantized files) halves those bytes against bf16; FP8 keeps them bf16
                LoadRule.KvB => plain ? target : target is WeightFormat.Q8_0 or WeightFormat.Q4_K ? WeightFormat.Q8_0 : WeightFormat.BF16,
                LoadRule.OutputHead when target == WeightFormat.Q4_K => WeightFormat.Q8_0,
                _ => target,
            };
        }
    }

    /// <summary>Builds the weights of <paramref name="c"/> from <paramref name="src"/>.</summary>
    public static ModelWeights Build(ModelConfig c, IWeightSource src, IDisposable? owner)
    {
        ArchitectureDescriptor arch = c.GetArchitecture();
        var layers = new LayerWeights[c.NumHiddenLayers];
        for (int l = 0; l < layers.Length; l++)
            layers[l] = BuildLayer(c, arch, src, l);
        WeightMatrix embed = Matrix(c, arch, src, TensorRole.Embed);
        WeightMatrix head = arch.Exists(TensorRole.LmHead, c) ? Matrix(c, arch, src, TensorRole.LmHead) : embed;
        var mtp = new MtpWeights[c.NumNextnPredictLayers];
        for (int k = 0; k < mtp.Length; k++)
        {
            int l = c.NumHiddenLayers + k;
            mtp[k] = new MtpWeights
            {
                // released checkpoints hold copies of the embedding and head; files without them share the main ones
                Embed = src.Has(arch.HfName(TensorRole.MtpEmbed, l)) ? Matrix(c, arch, src, TensorRole.MtpEmbed, l) : embed,
                ENorm = Vector(c, arch, src, TensorRole.MtpENorm, l),
                HNorm = Vector(c, arch, src, TensorRole.MtpHNorm, l),
                EhProj = Matrix(c, arch, src, TensorRole.MtpEhProj, l),
                Layer = BuildLayer(c, arch, src, l),
                HeadNorm = Vector(c, arch, src, TensorRole.MtpHeadNorm, l),
                Head = src.Has(arch.HfName(TensorRole.MtpHead, l)) ? Matrix(c, arch, src, TensorRole.MtpHead, l) : head,
            };
        }
        return new ModelWeights
        {
            Config = c,
            Embed = embed,
            Layers = layers,
            Norm = Vector(c, arch, src, TensorRole.FinalNorm),
            LmHead = head,
            Mtp = mtp,
            Owner = owner,
        };
    }

    private static WeightMatrix Matrix(ModelConfig c, ArchitectureDescriptor arch, IWeightSource src, TensorRole role, int layer = -1, int expert = -1)
    {
        TensorSpec s = arch[role];
        long[] shape = s.Shape(c, layer);
        return src.Matrix(s.HfName(layer, expert), checked((int)shape[0]), checked((int)shape[1]));
    }

    private static float[] Vector(ModelConfig c, ArchitectureDescriptor arch, IWeightSource src, TensorRole role, int layer = -1)
    {
        TensorSpec s = arch[role];
        return src.Vector(s.HfName(layer), checked((int)s.Shape(c, layer)[0]));
    }

    private static LayerWeights BuildLayer(ModelConfig c, ArchitectureDescriptor arch, IWeightSource src, int l)
    {
        LayerInfo info = ArchitectureDescriptor.Layer(c, l);
        bool Has(TensorRole role) => arch[role].Exists(c, info);
        WeightMatrix? OptMatrix(TensorRole role) => Has(role) ? Matrix(c, arch, src, role, l) : null;
        var attn = new AttentionWeights
        {
            Wq = OptMatrix(TensorRole.Wq),
            WqA = OptMatrix(TensorRole.WqA),
            QNorm = Has(TensorRole.QNorm) ? Vector(c, arch, src, TensorRole.QNorm, l) : null,
            WqB = OptMatrix(TensorRole.WqB),
            WkvA = Matrix(c, arch, src, TensorRole.WkvA, l),
            KvNorm = Vector(c, arch, src, TensorRole.KvNorm, l),
            WkvB = Matrix(c, arch, src, TensorRole.WkvB, l),
            Wo = Matrix(c, arch, src, TensorRole.Wo, l),
            Extensions = Extensions(c, arch, src, l),
        };
        MlpWeights Mlp(TensorRole gate, TensorRole up, TensorRole down, int e = -1) => new()
        {
            W1 = Matrix(c, arch, src, gate, l, e),
            W3 = Matrix(c, arch, src, up, l, e),
            W2 = Matrix(c, arch, src, down, l, e),
        };
        MoeWeights? moeW = null;
        MlpWeights? dense = null;
        if (Has(TensorRole.Router))
        {
            var experts = new MlpWeights[c.NRoutedExperts];
            for (int e = 0; e < experts.Length; e++)
                experts[e] = Mlp(TensorRole.ExpertGate, TensorRole.ExpertUp, TensorRole.ExpertDown, e);
            moeW = new MoeWeights
            {
                Gate = Matrix(c, arch, src, TensorRole.Router, l),
                Bias = Has(TensorRole.RouterBias) ? Vector(c, arch, src, TensorRole.RouterBias, l) : null,
                Experts = experts,
                Shared = Has(TensorRole.SharedGate) ? Mlp(TensorRole.SharedGate, TensorRole.SharedUp, TensorRole.SharedDown) : null,
            };
        }
        else
        {
            dense = Mlp(TensorRole.DenseGate, TensorRole.DenseUp, TensorRole.DenseDown);
        }
        return new LayerWeights
        {
            Index = l,
            AttnNorm = Vector(c, arch, src, TensorRole.AttnNorm, l),
            Attn = attn,
            FfnNorm = Vector(c, arch, src, TensorRole.FfnNorm, l),
            Dense = dense,
            Moe = moeW,
        };
    }

    // the attention variant's tensors of layer l, by role (TensorSpec.Extension)
    private static ExtensionTensors Extensions(ModelConfig c, ArchitectureDescriptor arch, IWeightSource src, int l)
    {
        Dictionary<TensorRole, WeightMatrix>? matrices = null;
        Dictionary<TensorRole, float[]>? vectors = null;
        foreach (TensorRef t in arch.LayerTensors(c, l, perExpert: false))
        {
            if (!t.Spec.Extension)
                continue;
            if (t.Spec.IsVector)
                (vectors ??= [])[t.Role] = Vector(c, arch, src, t.Role, l);
            else
                (matrices ??= [])[t.Role] = Matrix(c, arch, src, t.Role, l);
        }
        return matrices is null && vectors is null ? ExtensionTensors.Empty : new ExtensionTensors(matrices ?? [], vectors ?? []);
    }

    /// <summary>A checkpoint as a weight source; records which tensors were used.</summary>
    private sealed class CheckpointSource(Checkpoint ckpt, ModelConfig config) : IWeightSource
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);
        private readonly ArchitectureDescriptor _arch = config.GetArchitecture();

        public bool Has(string name) => ckpt.Contains(name);

        public WeightMatrix Matrix(string name, int rows, int cols)
        {
            _used.Add(name);
            string scale = name + _arch.HfScaleSuffix;
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
                if (!_used.Contains(name) && !_arch.IsIgnoredHf(name))
                {
                    string file = ckpt.Info(name).FilePath;
                    throw new InvalidDataException($"{file}: unexpected tensor '{name}' (not part of a {config.ModelType} model with this config.json)");
                }
            }
        }
    }
}
