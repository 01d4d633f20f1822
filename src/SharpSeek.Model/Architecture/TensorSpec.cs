// One tensor role of an architecture: its checkpoint and GGUF name templates ({l} = layer, {e} = expert), whether a
// config and layer have it, its shape from the config, and the rules that pick its stored and in-memory formats.
using SharpSeek.Model.Gguf;

namespace SharpSeek.Model.Architecture;

/// <summary>Everything SharpSeek knows about one tensor role of an architecture.</summary>
public sealed record TensorSpec
{
    /// <summary>What the tensor does.</summary>
    public required TensorRole Role { get; init; }

    /// <summary>How its names are indexed.</summary>
    public required TensorScope Scope { get; init; }

    private readonly string _hf = "";
    private readonly NameTemplate _hfTemplate = new("");

    /// <summary>Hugging Face checkpoint name template, e.g. <c>model.layers.{l}.self_attn.kv_b_proj.weight</c>.</summary>
    public required string Hf
    {
        get => _hf;
        init
        {
            _hf = value;
            _hfTemplate = new NameTemplate(value);
        }
    }

    /// <summary>How a GGUF file stores it; null for tensors GGUF files do not hold (MTP modules).</summary>
    public GgufForm? Gguf { get; init; }

    /// <summary>Whether a config has the tensor in a layer (<see cref="LayerInfo.None"/> for model-level tensors).</summary>
    public required Func<ModelConfig, LayerInfo, bool> Exists { get; init; }

    /// <summary>The shape from the config and layer: [rows, cols] for matrices, [n] for vectors (a layer's shape may
    /// depend on its kind, as V4's compressed-attention layers do).</summary>
    public required Func<ModelConfig, LayerInfo, long[]> ShapeOf { get; init; }

    /// <summary>The in-memory format rule when loaded converted (matrices).</summary>
    public LoadRule Load { get; init; } = LoadRule.Linear;

    /// <summary>Which of llama.cpp's type rules a GGUF export applies to the matrix; null keeps it F32 (router). Vectors are always F32.</summary>
    public GgufExport.TensorRole? GgufType { get; init; } = GgufExport.TensorRole.Other;

    /// <summary>False for buffers (the router bias): not counted as parameters.</summary>
    public bool Learnable { get; init; } = true;

    /// <summary>Stored in fp32 even in bf16 checkpoints (the router bias, which transformers keeps in fp32).</summary>
    public bool Fp32 { get; init; }

    /// <summary>A tensor of the family's attention variant, held in <see cref="AttentionWeights.Extensions"/> by role
    /// (loaded, exported and counted like any other; read by the variant's layer code).</summary>
    public bool Extension { get; init; }

    /// <summary>True for [n] tensors.</summary>
    public bool IsVector { get; init; }

    /// <summary>The checkpoint name of the tensor in <paramref name="layer"/> (and <paramref name="expert"/>).</summary>
    public string HfName(int layer = -1, int expert = -1) => _hfTemplate.Format(layer, expert);

    /// <summary>The GGUF name of the tensor in <paramref name="layer"/> (the K half for a split kv_b_proj).</summary>
    /// <exception cref="NotSupportedException">GGUF files do not hold this role.</exception>
    public string GgufName(int layer = -1) =>
        (Gguf ?? throw new NotSupportedException($"GGUF files hold no {Role} tensor")).NameOf(layer);

    /// <summary>The shape in layer <paramref name="layer"/> (-1 for model-level tensors) of <paramref name="c"/>.</summary>
    public long[] Shape(ModelConfig c, int layer = -1) =>
        ShapeOf(c, layer < 0 ? LayerInfo.None : ArchitectureDescriptor.Layer(c, layer));

    /// <summary>Number of elements per tensor (per expert for expert tensors) in a layer.</summary>
    public long Elements(ModelConfig c, int layer = -1)
    {
        long n = 1;
        foreach (long d in Shape(c, layer))
            n *= d;
        return n;
    }

    public override string ToString() => $"{Role} ({Hf})";
}

/// <summary>One tensor of a model: a role in a layer (and expert); -1 where not indexed.</summary>
public readonly record struct TensorRef(TensorSpec Spec, int Layer, int Expert)
{
    public TensorRole Role => Spec.Role;

    /// <summary>The checkpoint name.</summary>
    public string HfName => Spec.HfName(Layer, Expert);

    /// <summary>The shape from <paramref name="c"/>.</summary>
    public long[] Shape(ModelConfig c) => Spec.Shape(c, Layer);
}

/// <summary>A name template split at its {l} (layer) and {e} (expert) placeholders, which come in that order.</summary>
internal readonly struct NameTemplate
{
    private readonly string _template, _head, _mid, _tail;
    private readonly int _slots; // 0: no placeholder, 1: {l}, 2: {l} and {e}

    public NameTemplate(string template)
    {
        _template = template;
        _head = _mid = _tail = "";
        int l = template.IndexOf("{l}", StringComparison.Ordinal), e = template.IndexOf("{e}", StringComparison.Ordinal);
        if (l < 0 && e < 0)
            return;
        if (l < 0 || (e >= 0 && e < l))
            throw new ArgumentException($"name template '{template}': {{e}} needs a {{l}} before it");
        _head = template[..l];
        if (e < 0)
        {
            _slots = 1;
            _tail = template[(l + 3)..];
            return;
        }
        _slots = 2;
        _mid = template[(l + 3)..e];
        _tail = template[(e + 3)..];
    }

    public string Format(int layer, int expert)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        return _slots switch
        {
            1 when layer >= 0 => string.Create(inv, $"{_head}{layer}{_tail}"),
            2 when layer >= 0 && expert >= 0 => string.Create(inv, $"{_head}{layer}{_mid}{expert}{_tail}"),
            2 when layer >= 0 => string.Create(inv, $"{_head}{layer}{_mid}{{e}}{_tail}"),
            _ => _template,
        };
    }
}
