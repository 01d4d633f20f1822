// An architecture descriptor: the tensor roles of one model family with their checkpoint and GGUF names, shapes,
// presence per config and layer, and format rules. The loader, the HF and GGUF writers, the GGUF weight source, the
// synthetic-checkpoint writer and the parameter counts read it, so a new family (DeepSeek-V3.2's indexer, V4) is one
// more descriptor, not edits in each of them. DeepSeek.cs defines the V2 and V3 families.
using SharpSeek.Model.Gguf;

namespace SharpSeek.Model.Architecture;

/// <summary>The tensors of a model family and how files name and store them.</summary>
public sealed class ArchitectureDescriptor
{
    private readonly TensorSpec?[] _byRole;
    private readonly Dictionary<string, TensorSpec> _byHf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TensorSpec>.AlternateLookup<ReadOnlySpan<char>> _byHfSpan;
    private readonly int _firstLayerSpec, _endLayerSpec;
    private readonly NameTemplate _layerPrefix;

    /// <param name="name">The family's name.</param>
    /// <param name="modelTypes">config.json model_type values of the family.</param>
    /// <param name="ggufArchitecture">general.architecture of its GGUF files.</param>
    /// <param name="hfLayerPrefix">Checkpoint prefix of layer {l}'s tensors.</param>
    /// <param name="hfScaleSuffix">Suffix of an FP8 weight's block-scale sibling.</param>
    /// <param name="hfIgnoredSuffixes">Checkpoint tensors that are derived, not weights (ignored when loading).</param>
    /// <param name="tensors">Roles in checkpoint order: model-level tensors before the layers, one contiguous run of
    /// layer and expert tensors (expert tensors consecutive, iterated expert by expert), model-level tensors after.</param>
    public ArchitectureDescriptor(string name, string[] modelTypes, string ggufArchitecture, string hfLayerPrefix, string hfScaleSuffix,
                                  string[] hfIgnoredSuffixes, TensorSpec[] tensors)
    {
        Name = name;
        ModelTypes = modelTypes;
        GgufArchitecture = ggufArchitecture;
        HfLayerPrefixTemplate = hfLayerPrefix;
        _layerPrefix = new NameTemplate(hfLayerPrefix);
        HfScaleSuffix = hfScaleSuffix;
        HfIgnoredSuffixes = hfIgnoredSuffixes;
        Tensors = tensors;
        _byRole = new TensorSpec?[Enum.GetValues<TensorRole>().Length];
        _firstLayerSpec = Array.FindIndex(tensors, t => t.Scope != TensorScope.Model);
        _endLayerSpec = Array.FindLastIndex(tensors, t => t.Scope != TensorScope.Model) + 1;
        for (int i = 0; i < tensors.Length; i++)
        {
            TensorSpec t = tensors[i];
            if (_byRole[(int)t.Role] is not null)
                throw new ArgumentException($"{name}: role {t.Role} is listed twice");
            if ((t.Scope == TensorScope.Model) != (i < _firstLayerSpec || i >= _endLayerSpec))
                throw new ArgumentException($"{name}: {t.Role} is out of order (layer tensors must be one contiguous run)");
            _byRole[(int)t.Role] = t;
            _byHf.Add(t.Hf, t);
        }
        _byHfSpan = _byHf.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (TensorSpec t in tensors)
        {
            // names parse back by their all-digit segments: a template must not have a literal one
            if (!TryParseHf(t.HfName(3, 5), out TensorRef back) || back.Spec != t)
                throw new ArgumentException($"{name}: checkpoint name template '{t.Hf}' does not parse back to {t.Role}");
        }
    }

    /// <summary>The family's name.</summary>
    public string Name { get; }

    /// <summary>config.json <c>architectures</c> entry (the transformers model class).</summary>
    public string HfArchitecture { get; init; } = "DeepseekV3ForCausalLM";

    /// <summary>The family's own GGUF metadata keys of a config (after the "{arch}." prefix), as llama.cpp's converter writes them (uint32).</summary>
    public Func<ModelConfig, IEnumerable<(string Key, uint Value)>>? GgufKeys { get; init; }

    /// <summary>Reads the family's own GGUF keys into a config read from the common ones; the function it is given
    /// returns a required key's value (after the "{arch}." prefix) or throws naming the file and key.</summary>
    public Func<ModelConfig, Func<string, int>, ModelConfig>? ReadGgufKeys { get; init; }

    /// <summary>The family's addition to MLA for a config (V3.2's indexer: <see cref="Layers.IAttentionVariant"/>), or null for plain MLA.</summary>
    public Func<ModelConfig, Layers.IAttentionVariant?>? Attention { get; init; }

    /// <summary>config.json model_type values of the family.</summary>
    public IReadOnlyList<string> ModelTypes { get; }

    /// <summary>general.architecture of the family's GGUF files.</summary>
    public string GgufArchitecture { get; }

    /// <summary>Checkpoint prefix template of a layer's tensors ({l} = layer).</summary>
    public string HfLayerPrefixTemplate { get; }

    /// <summary>Suffix of an FP8 weight's block-scale sibling (<c>X.weight</c> + suffix).</summary>
    public string HfScaleSuffix { get; }

    /// <summary>Suffixes of checkpoint tensors that are not weights (derived buffers some checkpoints carry).</summary>
    public IReadOnlyList<string> HfIgnoredSuffixes { get; }

    /// <summary>Every role in checkpoint order.</summary>
    public IReadOnlyList<TensorSpec> Tensors { get; }

    /// <summary>The spec of a role.</summary>
    /// <exception cref="NotSupportedException">The family has no such role.</exception>
    public TensorSpec this[TensorRole role] =>
        _byRole[(int)role] ?? throw new NotSupportedException($"{Name} has no {role} tensor");

    /// <summary>True if the family has the role.</summary>
    public bool Has(TensorRole role) => _byRole[(int)role] is not null;

    /// <summary>Checkpoint name of a role in a layer (and expert).</summary>
    public string HfName(TensorRole role, int layer = -1, int expert = -1) => this[role].HfName(layer, expert);

    /// <summary>GGUF name of a role in a layer.</summary>
    public string GgufName(TensorRole role, int layer = -1) => this[role].GgufName(layer);

    /// <summary>Checkpoint prefix of layer <paramref name="layer"/>'s tensors.</summary>
    public string HfLayerPrefix(int layer) => _layerPrefix.Format(layer, -1);

    /// <summary>True for a checkpoint tensor that is not a weight and is ignored when loading.</summary>
    public bool IsIgnoredHf(string name)
    {
        foreach (string s in HfIgnoredSuffixes)
        {
            if (name.EndsWith(s, StringComparison.Ordinal))
                return true;
        }
        return false;
    }

    /// <summary>Decoder layers plus MTP modules.</summary>
    public static int LayerCount(ModelConfig c) => c.NumHiddenLayers + c.NumNextnPredictLayers;

    /// <summary>Where layer <paramref name="layer"/> stands: MTP modules (layers L..) are MoE blocks.</summary>
    public static LayerInfo Layer(ModelConfig c, int layer)
    {
        bool mtp = layer >= c.NumHiddenLayers;
        return new LayerInfo(layer, mtp || c.IsMoeLayer(layer), mtp);
    }

    /// <summary>Whether a config has a role in a layer (-1 for model-level roles).</summary>
    public bool Exists(TensorRole role, ModelConfig c, int layer = -1) =>
        _byRole[(int)role] is TensorSpec s && s.Exists(c, layer < 0 ? LayerInfo.None : Layer(c, layer));

    /// <summary>Model-level tensors listed before the layers (the embedding), as the config has them.</summary>
    public IEnumerable<TensorRef> Leading(ModelConfig c) => ModelRange(c, 0, _firstLayerSpec);

    /// <summary>Model-level tensors listed after the layers (final norm, output head), as the config has them.</summary>
    public IEnumerable<TensorRef> Trailing(ModelConfig c) => ModelRange(c, _endLayerSpec, Tensors.Count);

    private IEnumerable<TensorRef> ModelRange(ModelConfig c, int start, int end)
    {
        for (int i = start; i < end; i++)
        {
            if (Tensors[i].Exists(c, LayerInfo.None))
                yield return new TensorRef(Tensors[i], -1, -1);
        }
    }

    /// <summary>
    /// The tensors of layer <paramref name="layer"/> in checkpoint order; with <paramref name="perExpert"/> false each
    /// expert role comes once with expert -1 (a stacked GGUF tensor), else once per routed expert, expert by expert.
    /// </summary>
    public IEnumerable<TensorRef> LayerTensors(ModelConfig c, int layer, bool perExpert = true)
    {
        LayerInfo info = Layer(c, layer);
        for (int i = _firstLayerSpec; i < _endLayerSpec; i++)
        {
            TensorSpec s = Tensors[i];
            if (s.Scope == TensorScope.Expert && perExpert)
            {
                int j = i;
                while (j < _endLayerSpec && Tensors[j].Scope == TensorScope.Expert)
                    j++;
                for (int e = 0; e < c.NRoutedExperts; e++)
                {
                    for (int k = i; k < j; k++)
                    {
                        if (Tensors[k].Exists(c, info))
                            yield return new TensorRef(Tensors[k], layer, e);
                    }
                }
                i = j - 1;
                continue;
            }
            if (s.Exists(c, info))
                yield return new TensorRef(s, layer, -1);
        }
    }

    /// <summary>Every tensor of a config in checkpoint order (MTP modules as layers L.. before the final norm).</summary>
    public IEnumerable<TensorRef> CheckpointTensors(ModelConfig c)
    {
        foreach (TensorRef t in Leading(c))
            yield return t;
        for (int l = 0; l < LayerCount(c); l++)
        {
            foreach (TensorRef t in LayerTensors(c, l))
                yield return t;
        }
        foreach (TensorRef t in Trailing(c))
            yield return t;
    }

    /// <summary>The role, layer and expert of a checkpoint name; false for a name the family does not have.</summary>
    public bool TryParseHf(string name, out TensorRef tensor)
    {
        tensor = default;
        // the template is at most 3 characters per digit longer than the name ("7" -> "{e}")
        Span<char> buffer = name.Length <= 200 ? stackalloc char[3 * name.Length] : new char[3 * name.Length];
        if (!Normalize(name, buffer, out int length, out int layer, out int expert)
            || !_byHfSpan.TryGetValue(buffer[..length], out TensorSpec? s))
            return false;
        tensor = new TensorRef(s, layer, expert);
        return true;
    }

    /// <summary>The GGUF location of a checkpoint tensor, or null for a name GGUF files do not hold (MTP layers, unknown names).</summary>
    public GgufLocation? Locate(string hfName)
    {
        if (!TryParseHf(hfName, out TensorRef t) || t.Spec.Gguf is not GgufForm g)
            return null;
        return new GgufLocation(g.Kind, g.NameOf(t.Layer), t.Layer, t.Expert);
    }

    // "model.layers.12.mlp.experts.7.up_proj.weight" -> "model.layers.{l}.mlp.experts.{e}.up_proj.weight", 12, 7:
    // the first all-digit segment is the layer, the second the expert
    private static bool Normalize(string name, Span<char> template, out int length, out int layer, out int expert)
    {
        layer = expert = -1;
        length = 0;
        int start = 0;
        while (true)
        {
            int dot = name.IndexOf('.', start);
            int end = dot < 0 ? name.Length : dot;
            ReadOnlySpan<char> seg = name.AsSpan(start, end - start);
            if (seg.Length > 0 && !seg.ContainsAnyExceptInRange('0', '9'))
            {
                if (!int.TryParse(seg, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v) || expert >= 0)
                    return false;
                if (layer < 0)
                    layer = v;
                else
                    expert = v;
                seg = expert < 0 ? "{l}" : "{e}";
            }
            seg.CopyTo(template[length..]);
            length += seg.Length;
            if (dot < 0)
                return true;
            template[length++] = '.';
            start = dot + 1;
        }
    }

    /// <summary>DeepSeek-V2, V2.5, V2-Lite (softmax routing).</summary>
    public static ArchitectureDescriptor DeepSeekV2 { get; } = DeepSeek.V2();

    /// <summary>DeepSeek-V3, R1, V3.1 and Kimi K2 (sigmoid routing with a correction bias, MTP modules).</summary>
    public static ArchitectureDescriptor DeepSeekV3 { get; } = DeepSeek.V3();

    /// <summary>The registered families (DeepSeek.cs lists them, oldest first).</summary>
    public static IReadOnlyList<ArchitectureDescriptor> All { get; } = DeepSeek.Families(DeepSeekV2, DeepSeekV3);

    /// <summary>The family of a config (by model_type; DeepSeek-V3's for unknown types, which validation rejects elsewhere).</summary>
    public static ArchitectureDescriptor For(ModelConfig c) => For(c.ModelType);

    /// <summary>The family of a model_type.</summary>
    public static ArchitectureDescriptor For(string modelType)
    {
        foreach (ArchitectureDescriptor a in All)
        {
            if (a.ModelTypes.Contains(modelType))
                return a;
        }
        return DeepSeekV3;
    }

    /// <summary>The family that reads a GGUF general.architecture (the latest that does), or null.</summary>
    public static ArchitectureDescriptor? ForGguf(string ggufArchitecture)
    {
        for (int i = All.Count - 1; i >= 0; i--)
        {
            if (All[i].GgufArchitecture == ggufArchitecture)
                return All[i];
        }
        return null;
    }

    public override string ToString() => Name;
}
