// Trainable fp32 master weights and their gradients, laid out as two ModelWeights of the same structure (so the
// model's layers and Transformer run on them directly), plus the flat list of trainable tensors the optimizer,
// clipping and checkpoints walk. Loaded from any checkpoint (bf16 and fp8 weights are widened to fp32) or drawn
// at random. The MTP module's embedding and output head are shared with the main model when the checkpoint's
// copies are identical to them (DeepSeek-V3's design, docs/deepseek-architecture.md §5), and saved back as copies.
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using SharpSeek.Formats;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model.Architecture;
using SharpSeek.Model;
using SharpSeek.Tensors;

namespace SharpSeek.Training;

/// <summary>One trainable tensor: values, gradient and checkpoint name.</summary>
public sealed class Parameter
{
    internal Parameter(string name, F32Matrix? matrix, float[]? vector, F32Matrix? gradMatrix, float[]? gradVector)
    {
        Name = name;
        Matrix = matrix;
        Vector = vector;
        GradMatrix = gradMatrix;
        GradVector = gradVector;
        Shape = matrix is not null ? [matrix.Rows, matrix.Cols] : [vector!.Length];
    }

    /// <summary>Checkpoint name (the main model's name for shared tensors).</summary>
    public string Name { get; }

    /// <summary>[rows, cols] or [length].</summary>
    public long[] Shape { get; }

    public F32Matrix? Matrix { get; }

    public float[]? Vector { get; }

    internal F32Matrix? GradMatrix { get; }

    internal float[]? GradVector { get; }

    /// <summary>Number of values.</summary>
    public int Length => Matrix is not null ? Matrix.Rows * Matrix.Cols : Vector!.Length;

    /// <summary>The fp32 master values (writable).</summary>
    public Span<float> Values => Matrix is not null ? Matrix.Data : Vector;

    /// <summary>The gradient, accumulated by backward passes.</summary>
    public Span<float> Grad => GradMatrix is not null ? GradMatrix.Data : GradVector;

    /// <summary>True for 1-D tensors (norm weights).</summary>
    public bool IsVector => Vector is not null;
}

/// <summary>Helpers shared by the layers.</summary>
public static class Params
{
    /// <summary>The fp32 master matrix behind a weight view; training needs fp32 masters.</summary>
    public static F32Matrix F32(WeightMatrix w) => SharpSeek.Model.Layers.Linear.F32(w);
}

/// <summary>fp32 master weights, gradients and the trainable tensor list of one model.</summary>
public sealed class ModelParameters
{
    private ModelParameters(ModelWeights weights, ModelWeights grads)
    {
        Config = weights.Config;
        Weights = weights;
        Grads = grads;
        var list = new List<Parameter>();
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        using IEnumerator<(string Name, WeightMatrix? Matrix, float[]? Vector)> g = grads.Enumerate().GetEnumerator();
        foreach ((string name, WeightMatrix? m, float[]? v) in weights.Enumerate())
        {
            if (!g.MoveNext() || g.Current.Name != name)
                throw new InvalidOperationException($"gradient structure differs from the weights at '{name}'");
            if (IsRouterBias(name))
                continue; // selection-only bias: no gradient, updated by the load-balancing rule
            if (!seen.Add((object?)m ?? v!))
                continue; // shared tensor (MTP embedding/head tied to the main model's)
            list.Add(new Parameter(name, m is null ? null : Params.F32(m), v,
                                   g.Current.Matrix is null ? null : Params.F32(g.Current.Matrix), g.Current.Vector));
        }
        Trainable = list;
        var biases = new List<float[]>();
        foreach (LayerWeights l in weights.Layers.Concat(weights.Mtp.Select(m => m.Layer)))
        {
            if (l.Moe?.Bias is { } b)
                biases.Add(b);
        }
        RouterBiases = biases;
    }

    public ModelConfig Config { get; }

    /// <summary>fp32 master weights (every matrix an owned <see cref="F32Matrix"/>).</summary>
    public ModelWeights Weights { get; }

    /// <summary>Gradients, same structure as <see cref="Weights"/>.</summary>
    public ModelWeights Grads { get; }

    /// <summary>Every trainable tensor once, in checkpoint order.</summary>
    public IReadOnlyList<Parameter> Trainable { get; }

    /// <summary>The trainable tensors of the main layers' attention variant (V3.2's indexer), in checkpoint order.</summary>
    public IReadOnlyList<Parameter> VariantParameters
    {
        get
        {
            var own = new HashSet<object>(Weights.Layers.SelectMany(l => l.Attn.Extensions.Tensors), ReferenceEqualityComparer.Instance);
            return Trainable.Where(p => own.Contains((object?)p.Matrix ?? p.Vector!)).ToArray();
        }
    }

    /// <summary>Router selection biases (noaux_tc), main layers then MTP layers.</summary>
    public IReadOnlyList<float[]> RouterBiases { get; }

    /// <summary>Number of trainable values.</summary>
    public long Count => Trainable.Sum(p => (long)p.Length);

    /// <summary>True for <c>mlp.gate.e_score_correction_bias</c> tensors.</summary>
    public static bool IsRouterBias(string name) => name.EndsWith(".mlp.gate.e_score_correction_bias", StringComparison.Ordinal);

    /// <summary>fp32 copies of <paramref name="source"/>'s weights (any storage format).</summary>
    public static ModelParameters FromWeights(ModelWeights source)
    {
        return WithGrads(Fp32Copy(source));
    }

    private static ModelWeights Fp32Copy(ModelWeights source) => WeightLoader.Build(source.Config, new CopySource(source), owner: null);

    /// <summary>Loads a Hugging Face checkpoint directory into fp32 masters.</summary>
    public static ModelParameters Load(string directory)
    {
        using ModelWeights src = WeightLoader.Load(directory);
        return FromWeights(src);
    }

    /// <summary>
    /// The element-wise mean of the weights of <paramref name="directories"/> (checkpoint averaging: points of one
    /// training run, or fine-tunes of one model), router biases included; every checkpoint must have the first one's
    /// tensors and shapes (the error names the directory and the tensor). Loads one checkpoint at a time beside the sum.
    /// </summary>
    public static ModelParameters Average(IReadOnlyList<string> directories)
    {
        if (directories.Count == 0)
            throw new ArgumentException("no checkpoint to average", nameof(directories));
        ModelParameters sum = Load(directories[0]);
        for (int k = 1; k < directories.Count; k++)
        {
            ModelParameters next = LoadReadOnly(directories[k]);
            if (next.Trainable.Count != sum.Trainable.Count || next.RouterBiases.Count != sum.RouterBiases.Count)
                throw new InvalidDataException($"{directories[k]}: {next.Trainable.Count} tensors and {next.RouterBiases.Count} router biases, {directories[0]} has {sum.Trainable.Count} and {sum.RouterBiases.Count}: not the same architecture");
            for (int i = 0; i < sum.Trainable.Count; i++)
            {
                Parameter into = sum.Trainable[i], add = next.Trainable[i];
                if (add.Name != into.Name || !add.Shape.AsSpan().SequenceEqual(into.Shape))
                    throw new InvalidDataException($"{directories[k]}: tensor '{add.Name}' [{string.Join(", ", add.Shape)}] where {directories[0]} has '{into.Name}' [{string.Join(", ", into.Shape)}]: not the same architecture");
                TensorPrimitives.Add(into.Values, add.Values, into.Values);
            }
            for (int i = 0; i < sum.RouterBiases.Count; i++)
                TensorPrimitives.Add(sum.RouterBiases[i], next.RouterBiases[i], sum.RouterBiases[i]); // lengths: the routers' tensors above
        }
        float scale = 1f / directories.Count;
        foreach (Parameter p in sum.Trainable)
            TensorPrimitives.Multiply(p.Values, scale, p.Values);
        foreach (float[] b in sum.RouterBiases)
            TensorPrimitives.Multiply(b, scale, b);
        return sum;
    }

    // A checkpoint only read (an addend of Average): its "gradients" are its own values, so it holds the fp32 weights
    // once instead of beside a zeroed gradient of the same size. Never trained.
    private static ModelParameters LoadReadOnly(string directory)
    {
        using ModelWeights src = WeightLoader.Load(directory);
        ModelWeights w = Fp32Copy(src);
        return new ModelParameters(w, w);
    }

    /// <summary>
    /// Random init: matrices ~ N(0, std²) (each from a stream seeded by seed and the tensor's name), norm weights 1,
    /// router biases 0; the MTP embedding and head are the main model's.
    /// </summary>
    public static ModelParameters Random(ModelConfig config, ulong seed, double std)
    {
        ModelWeights w = WeightLoader.Build(config, new InitSource(seed, std), owner: null);
        return WithGrads(w);
    }

    private static ModelParameters WithGrads(ModelWeights w)
    {
        var sharedNames = new HashSet<string>(StringComparer.Ordinal);
        ArchitectureDescriptor arch = w.Config.GetArchitecture();
        foreach (MtpWeights m in w.Mtp)
        {
            if (!ReferenceEquals(m.Embed, w.Embed)) sharedNames.Add(arch.HfName(TensorRole.MtpEmbed, m.Layer.Index));
            if (!ReferenceEquals(m.Head, w.LmHead)) sharedNames.Add(arch.HfName(TensorRole.MtpHead, m.Layer.Index));
        }
        ModelWeights g = WeightLoader.Build(w.Config, new ZeroSource(sharedNames), owner: null);
        return new ModelParameters(w, g);
    }

    /// <summary>Sets every gradient to zero (once per step).</summary>
    public void ZeroGrad()
    {
        foreach (Parameter p in Trainable)
            p.Grad.Clear();
    }

    /// <summary><see cref="ZeroGrad()"/> with the tensors spread over <paramref name="backend"/>'s workers.</summary>
    public void ZeroGrad(ComputeBackend backend)
    {
        _zero ??= i => Trainable[i].Grad.Clear();
        backend.For(Trainable.Count, _zero);
    }

    private Action<int>? _zero;

    /// <summary>Adds every weight (trainable ones, router biases, MTP copies) as F32 under its checkpoint name.</summary>
    public void AddTo(SafetensorsWriter writer, string prefix = "")
    {
        foreach ((string name, WeightMatrix? m, float[]? v) in Weights.Enumerate())
        {
            if (m is not null)
            {
                F32Matrix f = Params.F32(m);
                writer.Add(prefix + name, DType.F32, [f.Rows, f.Cols], s => s.Write(MemoryMarshal.AsBytes(f.Data)));
            }
            else
            {
                float[] vec = v!;
                writer.Add(prefix + name, DType.F32, [vec.Length], s => s.Write(MemoryMarshal.AsBytes(vec.AsSpan())));
            }
        }
    }

    /// <summary>Copies every weight from a checkpoint written by <see cref="AddTo"/> (exact fp32 values).</summary>
    public void ReadFrom(Checkpoint ckpt, string prefix = "")
    {
        foreach ((string name, WeightMatrix? m, float[]? v) in Weights.Enumerate())
        {
            if (m is not null)
            {
                F32Matrix f = Params.F32(m);
                ckpt.ReadFloats(prefix + name, f.Rows, f.Cols).CopyTo(f.Data);
            }
            else
            {
                ckpt.ReadFloats(prefix + name, v!.Length).CopyTo(v, 0);
            }
        }
    }

    /// <summary>Copies of the weights of a loaded model, tying MTP copies that equal the main tensors.</summary>
    private sealed class CopySource : IWeightSource
    {
        private readonly ModelWeights _src;
        private readonly Dictionary<string, (WeightMatrix? M, float[]? V)> _byName = new(StringComparer.Ordinal);

        public CopySource(ModelWeights src)
        {
            _src = src;
            foreach ((string name, WeightMatrix? m, float[]? v) in src.Enumerate())
                _byName[name] = (m, v);
        }

        public bool Has(string name)
        {
            if (!_byName.TryGetValue(name, out var t) || t.M is null)
                return _byName.ContainsKey(name);
            WeightMatrix main = name.EndsWith("embed_tokens.weight", StringComparison.Ordinal) ? _src.Embed : _src.LmHead;
            return !ReferenceEquals(t.M, main) && !SameValues(t.M, main);
        }

        public WeightMatrix Matrix(string name, int rows, int cols)
        {
            WeightMatrix m = _byName[name].M ?? throw new InvalidDataException($"'{name}' is not a matrix");
            if (m.Rows != rows || m.Cols != cols)
                throw new InvalidDataException($"'{name}' is [{m.Rows}, {m.Cols}], expected [{rows}, {cols}]");
            return new F32Matrix(rows, cols, m.ToFloatArray());
        }

        public float[] Vector(string name, int length)
        {
            float[] v = _byName[name].V ?? throw new InvalidDataException($"'{name}' is not a vector");
            if (v.Length != length)
                throw new InvalidDataException($"'{name}' has {v.Length} values, expected {length}");
            return (float[])v.Clone();
        }

        private static bool SameValues(WeightMatrix a, WeightMatrix b)
        {
            if (a.Rows != b.Rows || a.Cols != b.Cols)
                return false;
            var ra = new float[a.Cols];
            var rb = new float[b.Cols];
            for (int r = 0; r < a.Rows; r++)
            {
                a.ReadRow(r, ra);
                b.ReadRow(r, rb);
                if (!ra.AsSpan().SequenceEqual(rb))
                    return false;
            }
            return true;
        }
    }

    /// <summary>Zeroed gradient tensors; MTP embedding/head exist separately only where the weights have them.</summary>
    private sealed class ZeroSource(HashSet<string> separate) : IWeightSource
    {
        public bool Has(string name) => separate.Contains(name);

        public WeightMatrix Matrix(string name, int rows, int cols) => new F32Matrix(rows, cols);

        public float[] Vector(string name, int length) => new float[length];
    }

    /// <summary>Random initialization (deterministic per seed and tensor name).</summary>
    private sealed class InitSource(ulong seed, double std) : IWeightSource
    {
        public bool Has(string name) => false;

        public WeightMatrix Matrix(string name, int rows, int cols)
        {
            var m = new F32Matrix(rows, cols);
            new Rng(Rng.Mix(seed ^ Rng.Hash(name))).FillNormal(m.Data, std);
            return m;
        }

        public float[] Vector(string name, int length)
        {
            var v = new float[length];
            if (!IsRouterBias(name))
                v.AsSpan().Fill(1f); // norm weights start at 1
            return v;
        }
    }
}
