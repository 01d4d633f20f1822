// The DeepSeek decoder (docs/deepseek-architecture.md §3.1): h = embed(ids); per layer h += MLA(RMSNorm(h)); h += FFN(RMSNorm(h));
// logits = lm_head(RMSNorm(h)). Runs a batch of token slots against per-sequence latent caches, plus the
// multi-token-prediction modules (docs/deepseek-architecture.md §5, postnorm convention).
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;

namespace SharpSeek.Model;

/// <summary>Called with the residual stream [T, H] after each decoder layer (tests, analysis).</summary>
public delegate void LayerObserver(int layer, ReadOnlySpan<float> hidden);

/// <summary>Options of one forward call.</summary>
public sealed record ForwardOptions
{
    public AttentionMode Attention { get; init; } = AttentionMode.Auto;
    public LayerObserver? Observer { get; init; }
}

/// <summary>
/// Runs a loaded model. One instance holds scratch buffers for its forward passes, so it is not safe to call
/// from several threads at once; create one per thread (they can share the same <see cref="ModelWeights"/>).
/// </summary>
public sealed class Transformer
{
    private readonly Mla _mla;
    private readonly Moe _moe;
    private readonly RotaryEmbedding _rope;
    private float[] _x = [], _xn = [], _y = [], _cos = [], _sin = [], _gate = [], _up = [], _sel = [], _u = [];

    public Transformer(ModelWeights weights, ComputeBackend? backend = null)
    {
        Weights = weights;
        Config = weights.Config;
        Backend = backend ?? ComputeBackend.Cpu;
        _mla = new Mla(Config);
        _moe = new Moe(Config);
        _rope = new RotaryEmbedding(Config);
    }

    public ModelWeights Weights { get; }

    public ModelConfig Config { get; }

    public ComputeBackend Backend { get; }

    /// <summary>The RoPE/YaRN tables in use.</summary>
    public RotaryEmbedding Rope => _rope;

    /// <summary>A new empty cache for one sequence.</summary>
    public KvCache CreateCache(CacheType type = CacheType.F32) => new(Config, type);

    /// <summary>
    /// Runs the main model over <paramref name="slots"/>. Each slot's latent is written into
    /// caches[slot.Sequence] at slot.Position (which must not leave a gap). Logits [logitSlots.Length, V] are
    /// computed for the slots listed in <paramref name="logitSlots"/>; <paramref name="finalHidden"/>, when not
    /// empty, receives the post-norm hidden state [T, H] of every slot (the input of lm_head and of MTP).
    /// </summary>
    public void Forward(ReadOnlySpan<TokenSlot> slots, IReadOnlyList<KvCache> caches, ReadOnlySpan<int> logitSlots,
                        Span<float> logits, Span<float> finalHidden = default, ForwardOptions? options = null)
    {
        ModelConfig c = Config;
        int T = slots.Length, H = c.HiddenSize, V = c.VocabSize;
        Validate(slots, caches);
        if (logits.Length < (long)logitSlots.Length * V)
            throw new ArgumentException($"logits needs {logitSlots.Length} x {V} floats, has {logits.Length}");
        if (!finalHidden.IsEmpty && finalHidden.Length < (long)T * H)
            throw new ArgumentException($"finalHidden needs {T} x {H} floats, has {finalHidden.Length}");
        options ??= Default;
        Prepare(slots);
        Span<float> x = _x.AsSpan(0, T * H);
        for (int t = 0; t < T; t++)
            Weights.Embed.ReadRow(slots[t].Token, x.Slice(t * H, H));
        options.Observer?.Invoke(-1, x);

        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            DecoderLayer(Weights.Layers[l], l, slots, caches, x, options.Attention);
            options.Observer?.Invoke(l, x);
        }

        Span<float> xn = _xn.AsSpan(0, T * H);
        Ops.RmsNormRows(x, Weights.Norm, (float)c.RmsNormEps, xn, T);
        if (!finalHidden.IsEmpty)
            xn.CopyTo(finalHidden);
        Head(Weights.LmHead, xn, logitSlots, T, logits);
    }

    /// <summary>Uncached forward of one sequence: logits [ids.Length, V] for every position (a fresh cache each call).</summary>
    public float[] Logits(ReadOnlySpan<int> ids, ForwardOptions? options = null, float[]? finalHidden = null)
    {
        var slots = new TokenSlot[ids.Length];
        var rows = new int[ids.Length];
        for (int t = 0; t < ids.Length; t++)
        {
            slots[t] = new TokenSlot(0, t, ids[t]);
            rows[t] = t;
        }
        var logits = new float[(long)ids.Length * Config.VocabSize];
        Forward(slots, [CreateCache()], rows, logits, finalHidden, options);
        return logits;
    }

    /// <summary>
    /// Runs MTP module <paramref name="module"/> (0-based). Slot t carries the next token t[i+1] and the
    /// position i of the main-model hidden state it pairs with; <paramref name="hidden"/> [T, H] holds those
    /// post-norm main-model states (or, for later draft steps, the module's own output). Logits [T, V] predict
    /// token i+2; <paramref name="moduleHidden"/> receives the module's post-shared_head.norm state [T, H].
    /// The module keeps its own latent cache in caches[seq].Layers[L + module].
    /// </summary>
    public void ForwardMtp(int module, ReadOnlySpan<TokenSlot> slots, IReadOnlyList<KvCache> caches, ReadOnlySpan<float> hidden,
                           Span<float> logits, Span<float> moduleHidden = default, ForwardOptions? options = null) =>
        ForwardMtp(module, slots, caches, hidden, logits, allRows: true, default, moduleHidden, options);

    /// <summary>
    /// As <see cref="ForwardMtp(int, ReadOnlySpan{TokenSlot}, IReadOnlyList{KvCache}, ReadOnlySpan{float}, Span{float}, Span{float}, ForwardOptions?)"/>,
    /// with logits [logitRows.Length, V] for the slots <paramref name="logitRows"/> only (none when empty): the
    /// module's output head is as large as the model's, so filling the module's cache for a prompt, or drafting from
    /// the last of several pending rows, needs no head product for the other rows.
    /// </summary>
    public void ForwardMtp(int module, ReadOnlySpan<TokenSlot> slots, IReadOnlyList<KvCache> caches, ReadOnlySpan<float> hidden,
                           ReadOnlySpan<int> logitRows, Span<float> logits, Span<float> moduleHidden = default, ForwardOptions? options = null) =>
        ForwardMtp(module, slots, caches, hidden, logits, allRows: false, logitRows, moduleHidden, options);

    private void ForwardMtp(int module, ReadOnlySpan<TokenSlot> slots, IReadOnlyList<KvCache> caches, ReadOnlySpan<float> hidden,
                            Span<float> logits, bool allRows, ReadOnlySpan<int> logitRows, Span<float> moduleHidden, ForwardOptions? options)
    {
        ModelConfig c = Config;
        if ((uint)module >= (uint)Weights.Mtp.Length)
            throw new ArgumentOutOfRangeException(nameof(module), $"the model has {Weights.Mtp.Length} MTP modules");
        MtpWeights m = Weights.Mtp[module];
        int T = slots.Length, H = c.HiddenSize, V = c.VocabSize;
        Validate(slots, caches);
        if (hidden.Length < (long)T * H || logits.Length < (long)(allRows ? T : logitRows.Length) * V)
            throw new ArgumentException("ForwardMtp: hidden or logits buffer too small");
        options ??= Default;
        Prepare(slots);
        Grow(ref _u, T * 2 * H);
        Span<float> u = _u.AsSpan(0, T * 2 * H), x = _x.AsSpan(0, T * H), xn = _xn.AsSpan(0, T * H);
        float eps = (float)c.RmsNormEps;
        for (int t = 0; t < T; t++)
            m.Embed.ReadRow(slots[t].Token, xn.Slice(t * H, H));
        Mtp.Input(new InferenceOps(Backend), m, eps, xn, hidden, T, default, default, u, x);
        DecoderLayer(m.Layer, c.NumHiddenLayers + module, slots, caches, x, options.Attention);
        Ops.RmsNormRows(x, m.HeadNorm, eps, xn, T);
        if (!moduleHidden.IsEmpty)
            xn.CopyTo(moduleHidden);
        if (allRows)
            Backend.MatMul(m.Head, xn, T, logits);
        else if (!logitRows.IsEmpty)
            Head(m.Head, xn, logitRows, T, logits);
    }

    private static readonly ForwardOptions Default = new();

    /// <summary>Pre-norm residual block in place (DecoderBlock.Run): x += MLA(norm(x)); x += FFN(norm(x)). Layer index
    /// selects the cache.</summary>
    private void DecoderLayer(LayerWeights w, int cacheLayer, ReadOnlySpan<TokenSlot> slots, IReadOnlyList<KvCache> caches,
                              Span<float> x, AttentionMode mode)
    {
        int T = slots.Length, H = Config.HiddenSize;
        Span<float> xn = _xn.AsSpan(0, T * H);
        DecoderBlock.Run(new InferenceOps(Backend), new Sublayers(this, w, cacheLayer, slots, caches, mode), w, (float)Config.RmsNormEps,
                         x, xn, default, _y.AsSpan(0, T * H), x, xn, default, x, T);
    }

    /// <summary>The inference sublayers: MLA over the latent caches, MoE or the dense MLP.</summary>
    private readonly ref struct Sublayers : IBlockSublayers
    {
        private readonly Transformer _m;
        private readonly LayerWeights _w;
        private readonly int _cacheLayer;
        private readonly ReadOnlySpan<TokenSlot> _slots;
        private readonly IReadOnlyList<KvCache> _caches;
        private readonly AttentionMode _mode;

        public Sublayers(Transformer m, LayerWeights w, int cacheLayer, ReadOnlySpan<TokenSlot> slots, IReadOnlyList<KvCache> caches,
                         AttentionMode mode)
        {
            _m = m;
            _w = w;
            _cacheLayer = cacheLayer;
            _slots = slots;
            _caches = caches;
            _mode = mode;
        }

        public void Attention(ReadOnlySpan<float> xn, Span<float> y)
        {
            int T = _slots.Length, half = _m.Config.QkRopeHeadDim / 2;
            _m._mla.Forward(_m.Backend, _w.Attn, _cacheLayer, _slots, _caches, xn, _m._cos.AsSpan(0, T * half), _m._sin.AsSpan(0, T * half), y, _mode);
        }

        public void Ffn(ReadOnlySpan<float> xn, Span<float> y)
        {
            int T = _slots.Length, I = _m.Config.IntermediateSize;
            if (_w.Moe is { } moe)
                _m._moe.Forward(_m.Backend, moe, xn, T, y);
            else
                Mlp.Forward(_m.Backend, _w.Dense!, xn, T, y, Grown(ref _m._gate, T * I), Grown(ref _m._up, T * I));
        }
    }

    /// <summary>Expert-load counts of the last MoE layer run (per expert).</summary>
    public ReadOnlySpan<int> LastExpertCounts => _moe.LastCounts;

    private void Head(WeightMatrix head, ReadOnlySpan<float> xn, ReadOnlySpan<int> rows, int T, Span<float> logits)
    {
        int H = Config.HiddenSize, V = Config.VocabSize;
        Grow(ref _sel, rows.Length * H);
        Span<float> sel = _sel.AsSpan(0, rows.Length * H);
        for (int i = 0; i < rows.Length; i++)
        {
            if ((uint)rows[i] >= (uint)T)
                throw new ArgumentOutOfRangeException(nameof(rows), $"logit row {rows[i]} outside the batch of {T}");
            xn.Slice(rows[i] * H, H).CopyTo(sel.Slice(i * H, H));
        }
        Backend.MatMul(head, sel, rows.Length, logits.Slice(0, rows.Length * V));
    }

    private void Prepare(ReadOnlySpan<TokenSlot> slots)
    {
        int T = slots.Length, H = Config.HiddenSize, half = Config.QkRopeHeadDim / 2;
        Grow(ref _x, T * H);
        Grow(ref _xn, T * H);
        Grow(ref _y, T * H);
        Grow(ref _cos, T * half);
        Grow(ref _sin, T * half);
        for (int t = 0; t < T; t++)
            _rope.CosSin(slots[t].Position, _cos.AsSpan(t * half, half), _sin.AsSpan(t * half, half));
    }

    private void Validate(ReadOnlySpan<TokenSlot> slots, IReadOnlyList<KvCache> caches)
    {
        foreach (TokenSlot s in slots)
        {
            if ((uint)s.Token >= (uint)Config.VocabSize)
                throw new ArgumentException($"token id {s.Token} outside the vocabulary of {Config.VocabSize}");
            if ((uint)s.Sequence >= (uint)caches.Count)
                throw new ArgumentException($"sequence {s.Sequence} has no cache ({caches.Count} given)");
            if (s.Position < 0)
                throw new ArgumentException($"negative position {s.Position}");
        }
    }

    private static void Grow(ref float[] a, int n)
    {
        if (a.Length < n)
            a = new float[n];
    }

    private static Span<float> Grown(ref float[] a, int n)
    {
        Grow(ref a, n);
        return a.AsSpan(0, n);
    }
}
