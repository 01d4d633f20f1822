// The MLA latent cache (docs/deepseek-architecture.md §3.3, docs/design.md seam 3): per sequence and layer, (R + Dr) values per token:
// the kv_a_layernorm'd latent c and the RoPE'd shared key k_pe. Stored in fixed-size blocks, so growth never
// copies what is cached, in fp32, bf16 or int8 (one scale for c and one for k_pe per token).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpSeek.Tensors;

namespace SharpSeek.Model;

/// <summary>Element type of the latent cache.</summary>
public enum CacheType
{
    F32,
    BF16,
    /// <summary>int8 with one fp32 scale for the latent c and one for k_pe per token.</summary>
    Int8,
}

/// <summary>One layer's latent cache for one sequence.</summary>
public sealed class LatentCache
{
    /// <summary>Tokens per block.</summary>
    public const int BlockTokens = 256;

    private readonly List<float[]> _f32 = [];
    private readonly List<NativeBuffer> _bf16 = []; // native, so that blocks of 256 KiB and more get huge pages (NativeBuffer)
    private readonly List<sbyte[]> _i8 = [];
    private readonly List<float[]> _i8Scales = [];
    private readonly int _split;

    /// <param name="width">Values per token (R + Dr).</param>
    /// <param name="type">Element type.</param>
    /// <param name="split">Where k_pe starts (R): int8 rows keep one scale for each part.</param>
    public LatentCache(int width, CacheType type, int split = 0)
    {
        Width = width;
        Type = type;
        _split = split > 0 && split < width ? split : width;
    }

    private int ElementBytes => Type switch { CacheType.F32 => 4, CacheType.BF16 => 2, _ => 1 };

    /// <summary>Bytes per cached token: Width · element size (+ 8 bytes of scales for int8).</summary>
    public int BytesPerToken => Width * ElementBytes + (Type == CacheType.Int8 ? 8 : 0);

    /// <summary>Values per token (R + Dr).</summary>
    public int Width { get; }

    public CacheType Type { get; }

    /// <summary>Tokens cached (positions 0..Length-1).</summary>
    public int Length { get; private set; }

    /// <summary>Bytes held for the cached tokens: Length · Width · element size.</summary>
    public long Bytes => (long)Length * BytesPerToken;

    /// <summary>Bytes allocated (whole blocks).</summary>
    public long AllocatedBytes => (long)(_f32.Count + _bf16.Count + _i8.Count) * BlockTokens * BytesPerToken;

    /// <summary>Stores the latent of <paramref name="position"/>; position ≤ Length (append, or overwrite an existing one).</summary>
    public void Write(int position, ReadOnlySpan<float> latent)
    {
        if ((uint)position > (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(position), $"position {position} leaves a gap after {Length} cached tokens");
        int block = position / BlockTokens, offset = position % BlockTokens * Width;
        if (Type == CacheType.F32)
        {
            // pinned (the pinned object heap): a batch's blocks are tens of MB that the GC would otherwise copy from
            // generation to generation; uninitialized, as no position is read before it is written
            while (_f32.Count <= block)
                _f32.Add(GC.AllocateUninitializedArray<float>(BlockTokens * Width, pinned: true));
            latent.Slice(0, Width).CopyTo(_f32[block].AsSpan(offset, Width));
        }
        else if (Type == CacheType.BF16)
        {
            while (_bf16.Count <= block)
                _bf16.Add(new NativeBuffer((long)BlockTokens * Width * sizeof(ushort)));
            Bf16.FromFloat(latent.Slice(0, Width), Bf16Block(block).Slice(offset, Width));
        }
        else
        {
            while (_i8.Count <= block)
            {
                _i8.Add(new sbyte[BlockTokens * Width]);
                _i8Scales.Add(new float[BlockTokens * 2]);
            }
            int row = position % BlockTokens;
            Span<sbyte> q = _i8[block].AsSpan(offset, Width);
            _i8Scales[block][2 * row] = QuantizeInt8(latent.Slice(0, _split), q.Slice(0, _split));
            _i8Scales[block][2 * row + 1] = QuantizeInt8(latent.Slice(_split, Width - _split), q.Slice(_split));
        }
        if (position == Length)
            Length++;
    }

    /// <summary>Copies a position's values to fp32.</summary>
    public void Read(int position, Span<float> dst)
    {
        if ((uint)position >= (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(position));
        ReadOnlySpan<float> row = Row(position, dst);
        if (Type == CacheType.F32)
            row.CopyTo(dst);
    }

    /// <summary>
    /// The fp32 values of a position: the stored row itself for F32 caches, else converted into <paramref name="scratch"/>.
    /// No bounds check against Length (hot loop; callers iterate cached positions).
    /// </summary>
    public ReadOnlySpan<float> Row(int position, Span<float> scratch)
    {
        int block = position / BlockTokens, offset = position % BlockTokens * Width;
        switch (Type)
        {
            case CacheType.F32:
                return _f32[block].AsSpan(offset, Width);
            case CacheType.BF16:
                Bf16.ToFloat(Bf16Block(block).Slice(offset, Width), scratch);
                return scratch.Slice(0, Width);
            default:
                ReadOnlySpan<sbyte> q = _i8[block].AsSpan(offset, Width);
                int row = position % BlockTokens;
                float s0 = _i8Scales[block][2 * row], s1 = _i8Scales[block][2 * row + 1];
                Ops.DequantizeInt8(q.Slice(0, _split), s0, scratch);
                Ops.DequantizeInt8(q.Slice(_split), s1, scratch.Slice(_split));
                return scratch.Slice(0, Width);
        }
    }

    /// <summary>
    /// The fp32 values of <paramref name="count"/> consecutive positions, row after row (stride Width): the stored rows
    /// themselves for an F32 cache when they lie in one block, else converted into <paramref name="scratch"/> (count·Width).
    /// No bounds check against Length where the rows lie in one F32 or BF16 block (the hot case).
    /// </summary>
    public ReadOnlySpan<float> Rows(int position, int count, Span<float> scratch)
    {
        int block = position / BlockTokens, first = position % BlockTokens;
        if (first + count <= BlockTokens)
        {
            if (Type == CacheType.F32)
                return _f32[block].AsSpan(first * Width, count * Width);
            if (Type == CacheType.BF16)
            {
                Bf16.ToFloat(Bf16Block(block).Slice(first * Width, count * Width), scratch);
                return scratch.Slice(0, count * Width);
            }
        }
        for (int j = 0; j < count; j++)
            Read(position + j, scratch.Slice(j * Width, Width));
        return scratch.Slice(0, count * Width);
    }

    /// <summary>
    /// The bf16 values of <paramref name="count"/> consecutive positions of a BF16 cache, row after row (stride Width): the
    /// stored rows themselves when they lie in one block, else copied into <paramref name="scratch"/> (count·Width).
    /// No bounds check against Length where the rows lie in one block (the hot case).
    /// </summary>
    public ReadOnlySpan<ushort> Bf16Rows(int position, int count, Span<ushort> scratch)
    {
        if (Type != CacheType.BF16)
            throw new InvalidOperationException($"Bf16Rows needs a bf16 cache; this one holds {Type}");
        int block = position / BlockTokens, first = position % BlockTokens;
        if (first + count <= BlockTokens)
            return Bf16Block(block).Slice(first * Width, count * Width);
        if ((uint)(position + count) > (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(count), $"positions [{position}, {position + count}) run past the {Length} cached");
        for (int j = 0; j < count; j++)
        {
            int p = position + j;
            Bf16Block(p / BlockTokens).Slice(p % BlockTokens * Width, Width).CopyTo(scratch.Slice(j * Width, Width));
        }
        return scratch.Slice(0, count * Width);
    }

    private unsafe Span<ushort> Bf16Block(int block) => new(_bf16[block].Pointer, BlockTokens * Width);

    /// <summary>
    /// Asks the CPU to bring the rows of positions [position, position + count) towards L1 (fp32 and bf16 caches, the
    /// part in position's block): attention issues it one tile ahead, so that a batched step's many caches, which do
    /// not fit in the caches of the CPU, stream while the current tile is computed.
    /// </summary>
    public unsafe void Prefetch(int position, int count)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported || count <= 0 || (uint)position >= (uint)Length)
            return;
        int block = position / BlockTokens, first = position % BlockTokens;
        count = Math.Min(Math.Min(count, BlockTokens - first), Length - position);
        byte* p;
        long bytes;
        if (Type == CacheType.F32 && block < _f32.Count)
        {
            p = (byte*)Unsafe.AsPointer(ref _f32[block][first * Width]);
            bytes = (long)count * Width * sizeof(float);
        }
        else if (Type == CacheType.BF16 && block < _bf16.Count)
        {
            p = _bf16[block].Pointer + (long)first * Width * sizeof(ushort);
            bytes = (long)count * Width * sizeof(ushort);
        }
        else
            return;
        for (long b = 0; b < bytes; b += 64)
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + b);
    }

    private static float QuantizeInt8(ReadOnlySpan<float> x, Span<sbyte> q)
    {
        float amax = 0;
        foreach (float v in x)
            amax = Math.Max(amax, MathF.Abs(v));
        float d = amax / 127f, id = amax > 0 ? 127f / amax : 0f;
        for (int i = 0; i < x.Length; i++)
            q[i] = (sbyte)MathF.Round(x[i] * id);
        return d;
    }

    /// <summary>Forgets positions ≥ <paramref name="length"/> (speculative decoding rollback).</summary>
    public void Truncate(int length)
    {
        if ((uint)length > (uint)Length)
            throw new ArgumentOutOfRangeException(nameof(length));
        Length = length;
    }
}

/// <summary>
/// The caches of one sequence: one latent cache per main layer, then one per MTP module; beside each, the state of the
/// family's attention variant when it has one (<see cref="Layers.IAttentionVariant"/>: V3.2's indexer keys).
/// </summary>
public sealed class KvCache
{
    public KvCache(ModelConfig c, CacheType type = CacheType.F32)
    {
        Type = type;
        int n = c.NumHiddenLayers + c.NumNextnPredictLayers;
        Layers = new LatentCache[n];
        Extensions = new Layers.IVariantCache?[n];
        Layers.IAttentionVariant? variant = c.GetAttentionVariant();
        for (int l = 0; l < n; l++)
        {
            Layers[l] = new LatentCache(c.LatentDim, type, c.KvLoraRank);
            Extensions[l] = variant?.CreateCache(l, type);
        }
        MainLayers = c.NumHiddenLayers;
    }

    private KvCache(CacheType type, LatentCache[] layers, Layers.IVariantCache?[] extensions, int mainLayers)
    {
        Type = type;
        Layers = layers;
        Extensions = extensions;
        MainLayers = mainLayers;
    }

    public CacheType Type { get; }

    /// <summary>Layer caches: main layers 0..L-1, then MTP modules.</summary>
    public LatentCache[] Layers { get; }

    /// <summary>The attention variant's state per layer (null where the family has none).</summary>
    public Layers.IVariantCache?[] Extensions { get; }

    public int MainLayers { get; }

    /// <summary>Tokens cached by the main model.</summary>
    public int Length => Layers[0].Length;

    /// <summary>Bytes held by the main model's cache (latents and variant state).</summary>
    public long Bytes
    {
        get
        {
            long b = 0;
            for (int l = 0; l < MainLayers; l++)
                b += Layers[l].Bytes + (Extensions[l]?.Bytes ?? 0);
            return b;
        }
    }

    /// <summary>Forgets main-model positions ≥ length.</summary>
    public void Truncate(int length)
    {
        for (int l = 0; l < MainLayers; l++)
            TruncateLayer(l, length);
    }

    /// <summary>Forgets positions ≥ length of one layer (MTP modules are layers L..).</summary>
    public void TruncateLayer(int layer, int length)
    {
        Layers[layer].Truncate(Math.Min(length, Layers[layer].Length));
        if (Extensions[layer] is Layers.IVariantCache e)
            e.Truncate(Math.Min(length, e.Length));
    }

    /// <summary>Empties every layer.</summary>
    public void Clear()
    {
        for (int l = 0; l < Layers.Length; l++)
            TruncateLayer(l, 0);
    }
}
