// The MLA latent cache (spec §3.3, docs/design.md seam 3): per sequence and layer, (R + Dr) values per token:
// the kv_a_layernorm'd latent c and the RoPE'd shared key k_pe. Stored in fixed-size blocks, so growth never
// copies what is cached, in fp32 or bf16.
using System.Runtime.InteropServices;
using SharpSeek.Tensors;

namespace SharpSeek.Model;

/// <summary>Element type of the latent cache.</summary>
public enum CacheType
{
    F32,
    BF16,
}

/// <summary>One layer's latent cache for one sequence.</summary>
public sealed class LatentCache
{
    /// <summary>Tokens per block.</summary>
    public const int BlockTokens = 256;

    private readonly List<float[]> _f32 = [];
    private readonly List<ushort[]> _bf16 = [];

    public LatentCache(int width, CacheType type)
    {
        Width = width;
        Type = type;
    }

    /// <summary>Values per token (R + Dr).</summary>
    public int Width { get; }

    public CacheType Type { get; }

    /// <summary>Tokens cached (positions 0..Length-1).</summary>
    public int Length { get; private set; }

    /// <summary>Bytes held for the cached tokens: Length · Width · element size.</summary>
    public long Bytes => (long)Length * Width * (Type == CacheType.F32 ? 4 : 2);

    /// <summary>Bytes allocated (whole blocks).</summary>
    public long AllocatedBytes => (long)(_f32.Count + _bf16.Count) * BlockTokens * Width * (Type == CacheType.F32 ? 4 : 2);

    /// <summary>Stores the latent of <paramref name="position"/>; position ≤ Length (append, or overwrite an existing one).</summary>
    public void Write(int position, ReadOnlySpan<float> latent)
    {
        if ((uint)position > (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(position), $"position {position} leaves a gap after {Length} cached tokens");
        int block = position / BlockTokens, offset = position % BlockTokens * Width;
        if (Type == CacheType.F32)
        {
            while (_f32.Count <= block)
                _f32.Add(new float[BlockTokens * Width]);
            latent.Slice(0, Width).CopyTo(_f32[block].AsSpan(offset, Width));
        }
        else
        {
            while (_bf16.Count <= block)
                _bf16.Add(new ushort[BlockTokens * Width]);
            Bf16.FromFloat(latent.Slice(0, Width), _bf16[block].AsSpan(offset, Width));
        }
        if (position == Length)
            Length++;
    }

    /// <summary>The fp32 row of a position (F32 caches only).</summary>
    public ReadOnlySpan<float> RowF32(int position) => _f32[position / BlockTokens].AsSpan(position % BlockTokens * Width, Width);

    /// <summary>The bf16 row of a position (BF16 caches only).</summary>
    public ReadOnlySpan<ushort> RowBf16(int position) => _bf16[position / BlockTokens].AsSpan(position % BlockTokens * Width, Width);

    /// <summary>Copies a position's values to fp32.</summary>
    public void Read(int position, Span<float> dst)
    {
        if ((uint)position >= (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(position));
        if (Type == CacheType.F32)
            RowF32(position).CopyTo(dst);
        else
            Bf16.ToFloat(RowBf16(position), dst);
    }

    /// <summary>Σ_j a[j]·row[offset + j] for j &lt; a.Length.</summary>
    public float Dot(int position, int offset, ReadOnlySpan<float> a) => Type == CacheType.F32
        ? System.Numerics.Tensors.TensorPrimitives.Dot(RowF32(position).Slice(offset, a.Length), a)
        : Tensors.Dot.Bf16(RowBf16(position).Slice(offset, a.Length), a);

    /// <summary>acc[j] += p · row[offset + j] for j &lt; acc.Length.</summary>
    public void AddScaled(int position, int offset, float p, Span<float> acc)
    {
        if (Type == CacheType.F32)
        {
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(RowF32(position).Slice(offset, acc.Length), p, acc, acc);
            return;
        }
        ReadOnlySpan<ushort> row = RowBf16(position).Slice(offset, acc.Length);
        for (int j = 0; j < acc.Length; j++)
            acc[j] += p * Bf16.ToFloat(row[j]);
    }

    /// <summary>Forgets positions ≥ <paramref name="length"/> (speculative decoding rollback).</summary>
    public void Truncate(int length)
    {
        if ((uint)length > (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(length));
        Length = length;
    }
}

/// <summary>The caches of one sequence: one latent cache per main layer, then one per MTP module.</summary>
public sealed class KvCache
{
    public KvCache(ModelConfig c, CacheType type = CacheType.F32)
    {
        Type = type;
        Layers = new LatentCache[c.NumHiddenLayers + c.NumNextnPredictLayers];
        for (int l = 0; l < Layers.Length; l++)
            Layers[l] = new LatentCache(c.LatentDim, type);
        MainLayers = c.NumHiddenLayers;
    }

    public CacheType Type { get; }

    /// <summary>Layer caches: main layers 0..L-1, then MTP modules.</summary>
    public LatentCache[] Layers { get; }

    public int MainLayers { get; }

    /// <summary>Tokens cached by the main model.</summary>
    public int Length => Layers[0].Length;

    /// <summary>Bytes held by the main model's cache.</summary>
    public long Bytes => Layers.Take(MainLayers).Sum(l => l.Bytes);

    /// <summary>Forgets main-model positions ≥ length.</summary>
    public void Truncate(int length)
    {
        for (int l = 0; l < MainLayers; l++)
            Layers[l].Truncate(Math.Min(length, Layers[l].Length));
    }

    /// <summary>Empties every layer.</summary>
    public void Clear()
    {
        foreach (LatentCache l in Layers)
            l.Truncate(0);
    }
}
