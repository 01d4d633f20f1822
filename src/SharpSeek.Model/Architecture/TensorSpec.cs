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

    /// <summary>Hugging Face checkpoint name template, e.g. <c>model.layers.{l}.self_attn.kv_b_proj.weight</c>.</summary>
    public required string Hf { get; init; }

    /// <summary>How a GGUF file stores it; null for tensors GGUF files do not hold (MTP modules).</summary>
    public GgufForm? Gguf { get; init; }

    /// <summary>Whether a config has the tensor in a layer (<see cref="LayerInfo.None"/> for model-level tensors).</summary>
    public required Func<ModelConfig, LayerInfo, bool> Exists { get; init; }

    /// <summary>The shape from the config: [rows, cols] for matrices, [n] for vectors.</summary>
    public required Func<ModelConfig, long[]> Shape { get; init; }

    /// <summary>The in-memory format rule when loaded converted (matrices).</summary>
    public LoadRule Load { get; init; } = LoadRule.Linear;

    /// <summary>Which of llama.cpp's type rules a GGUF export applies to the matrix; null keeps it F32 (router). Vectors are always F32.</summary>
    public GgufExport.TensorRole? GgufType { get; init; } = GgufExport.TensorRole.Other;

    /// <summary>False for buffers (the router bias): not counted as parameters.</summary>
    public bool Learnable { get; init; } = true;

    /// <summary>Stored in fp32 even in bf16 checkpoints (the router bias, which transformers keeps in fp32).</summary>
    public bool Fp32 { get; init; }

    /// <summary>True for [n] tensors.</summary>
    public bool IsVector { get; init; }

    /// <summary>The checkpoint name of the tensor in <paramref name="layer"/> (and <paramref name="expert"/>).</summary>
    public string HfName(int layer = -1, int expert = -1) => Format(Hf, layer, expert);

    /// <summary>The GGUF name of the tensor in <paramref name="layer"/> (the K half for a split kv_b_proj).</summary>
    /// <exception cref="NotSupportedException">GGUF files do not hold this role.</exception>
    public string GgufName(int layer = -1) =>
        Format((Gguf ?? throw new NotSupportedException($"GGUF files hold no {Role} tensor")).Name, layer, -1);

    /// <summary>Number of elements per tensor (per expert for expert tensors).</summary>
    public long Elements(ModelConfig c)
    {
        long n = 1;
        foreach (long d in Shape(c))
            n *= d;
        return n;
    }

    /// <summary>Fills the {l} and {e} placeholders of a name template.</summary>
    public static string Format(string template, int layer, int expert)
    {
        string s = template;
        if (layer >= 0)
            s = s.Replace("{l}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        if (expert >= 0)
            s = s.Replace("{e}", expert.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        return s;
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
    public long[] Shape(ModelConfig c) => Spec.Shape(c);
}
