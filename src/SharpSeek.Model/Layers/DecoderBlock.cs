// Pre-norm decoder block (docs/deepseek-architecture.md §3.1): x_mid = x + MLA(RMSNorm_in(x)); x_out = x_mid + FFN(RMSNorm_post(x_mid)),
// FFN = dense SwiGLU MLP or DeepSeekMoE. Used for the main layers and for the MTP module's block. The assembly is
// written once (DecoderBlock.Run) for the inference forward (Transformer) and the training forward (below), which
// pass their own ops and sublayers; the training backward follows.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>The two sublayers of a decoder block, as one forward path runs them.</summary>
public interface IBlockSublayers
{
    /// <summary>xn [T, H] (normalized) → y [T, H] = MLA(xn).</summary>
    void Attention(ReadOnlySpan<float> xn, Span<float> y);

    /// <summary>xn [T, H] (normalized) → y [T, H] = MoE(xn) or the dense MLP.</summary>
    void Ffn(ReadOnlySpan<float> xn, Span<float> y);
}

/// <summary>Saved activations of one decoder block for a [B, S] batch.</summary>
public sealed class BlockActivations
{
    public BlockActivations(ModelConfig c, int B, int S, bool moe)
    {
        int N = B * S, H = c.HiddenSize;
        Xn1 = new float[N * H];
        Rstd1 = new float[N];
        Attn = new MlaActivations(c, B, S);
        XMid = new float[N * H];
        Xn2 = new float[N * H];
        Rstd2 = new float[N];
        if (moe)
        {
            Moe = new MoeActivations(c, B, S);
        }
        else
        {
            G = new float[N * c.IntermediateSize];
            U = new float[N * c.IntermediateSize];
            Hd = new float[N * c.IntermediateSize];
        }
    }

    public float[] Xn1 { get; }
    public float[] Rstd1 { get; }
    public MlaActivations Attn { get; }
    public float[] XMid { get; }
    public float[] Xn2 { get; }
    public float[] Rstd2 { get; }
    /// <summary>MoE activations (MoE blocks).</summary>
    public MoeActivations? Moe { get; }
    /// <summary>Dense MLP gate, up, activation [N, I] (dense blocks).</summary>
    public float[] G { get; } = [];
    public float[] U { get; } = [];
    public float[] Hd { get; } = [];
}

/// <summary>Forward and backward of decoder blocks of one batch shape; holds the scratch they share.</summary>
public sealed class DecoderBlock
{
    private readonly ModelConfig _c;
    private readonly int _n;
    private readonly MlaTraining _attn;
    private readonly MoeTraining? _moe;
    private readonly float[] _y, _dXn, _dh, _dg, _du;

    /// <param name="variant">Training settings of the config's attention variant (V3.2's indexer); null: plain MLA.</param>
    public DecoderBlock(ModelConfig c, int B, int S, bool anyMoe, bool anyDense, VariantTrainingOptions? variant = null)
    {
        _c = c;
        _n = B * S;
        int N = _n, H = c.HiddenSize, I = anyDense ? c.IntermediateSize : 0;
        _attn = new MlaTraining(c, B, S, variant);
        _moe = anyMoe ? new MoeTraining(c, B, S) : null;
        _y = new float[N * H];
        _dXn = new float[N * H];
        _dh = new float[N * I];
        _dg = new float[N * I];
        _du = new float[N * I];
    }

    /// <summary>
    /// The pre-norm residual block over T rows, shared by inference and training: xn1 = RMSNorm_in(xIn) (rstd1),
    /// y = attention(xn1), xMid = xIn + y, xn2 = RMSNorm_post(xMid) (rstd2), y = FFN(xn2), xOut = xMid + y.
    /// Inference runs it in place (xIn, xMid and xOut the same rows, xn1 and xn2 too); training keeps every buffer.
    /// </summary>
    public static void Run<TOps, TSublayers>(TOps ops, TSublayers sublayers, LayerWeights w, float eps, ReadOnlySpan<float> xIn,
                                             Span<float> xn1, Span<float> rstd1, Span<float> y, Span<float> xMid, Span<float> xn2,
                                             Span<float> rstd2, Span<float> xOut, int T)
        where TOps : ILayerOps
        where TSublayers : IBlockSublayers, allows ref struct
    {
        ops.RmsNorm(xIn, w.AttnNorm, eps, rstd1, xn1, T);
        sublayers.Attention(xn1, y);
        ops.AddRmsNorm(xIn, y, xMid, w.FfnNorm, eps, rstd2, xn2, T);
        sublayers.Ffn(xn2, y);
        ops.Add(xMid, y, xOut);
    }

    /// <summary>The block's attention (its variant's training half is <see cref="MlaTraining.Variant"/>).</summary>
    public MlaTraining Attention => _attn;

    /// <summary>
    /// xIn [N, H] → xOut [N, H] (may not alias xIn). alpha: balance-loss coefficient for MoE blocks. With a trained
    /// attention variant, its gradient goes into dw (when given) during this forward.
    /// </summary>
    public void Forward(ComputeBackend be, LayerWeights w, ReadOnlySpan<float> xIn, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin,
                        BlockActivations a, Span<float> xOut, float alpha, LayerWeights? dw = null)
    {
        int N = _n, H = _c.HiddenSize;
        Run(new TrainingOps(be), new TrainingSublayers(this, be, w, dw, cos, sin, a, alpha), w, (float)_c.RmsNormEps, xIn,
            a.Xn1, a.Rstd1, _y.AsSpan(0, N * H), a.XMid, a.Xn2, a.Rstd2, xOut.Slice(0, N * H), N);
    }

    /// <summary>The training sublayers: naive MLA and MoE / MLP with their activations saved.</summary>
    private readonly ref struct TrainingSublayers : IBlockSublayers
    {
        private readonly DecoderBlock _b;
        private readonly ComputeBackend _be;
        private readonly LayerWeights _w;
        private readonly LayerWeights? _dw;
        private readonly ReadOnlySpan<float> _cos, _sin;
        private readonly BlockActivations _a;
        private readonly float _alpha;

        public TrainingSublayers(DecoderBlock b, ComputeBackend be, LayerWeights w, LayerWeights? dw, ReadOnlySpan<float> cos,
                                 ReadOnlySpan<float> sin, BlockActivations a, float alpha)
        {
            _b = b;
            _be = be;
            _w = w;
            _dw = dw;
            _cos = cos;
            _sin = sin;
            _a = a;
            _alpha = alpha;
        }

        public void Attention(ReadOnlySpan<float> xn, Span<float> y) => _b._attn.Forward(_be, _w.Attn, xn, _cos, _sin, _a.Attn, y, _dw?.Attn);

        public void Ffn(ReadOnlySpan<float> xn, Span<float> y)
        {
            if (_w.Moe is { } moe)
                _b._moe!.Forward(_be, moe, xn, _a.Moe!, y, _alpha);
            else
                Mlp.Forward(_be, _w.Dense!, xn, _b._n, _a.G, _a.U, _a.Hd, y);
        }
    }

    /// <summary>
    /// dxOut [N, H] → dxIn [N, H] (overwritten) and weight gradients (+=) into <paramref name="dw"/>. dxOut is used as
    /// scratch (it holds d(x_mid) on return).
    /// </summary>
    public void Backward(ComputeBackend be, LayerWeights w, LayerWeights dw, ReadOnlySpan<float> xIn, ReadOnlySpan<float> cos,
                         ReadOnlySpan<float> sin, BlockActivations a, Span<float> dxOut, Span<float> dxIn, float alpha)
    {
        int N = _n, H = _c.HiddenSize;
        Span<float> dXn = _dXn.AsSpan(0, N * H), dMid = dxOut.Slice(0, N * H);

        ParallelOps.Clear(be, dXn);
        if (w.Moe is { } moe)
            _moe!.Backward(be, moe, dw.Moe!, a.Xn2, a.Moe!, dMid, dXn, alpha);
        else
            Mlp.Backward(be, w.Dense!, dw.Dense!, dMid, a.Xn2, N, a.G, a.U, a.Hd, dXn, _dh, _dg, _du);
        RmsNorm.Backward(be, dXn, a.XMid, w.FfnNorm, a.Rstd2, dMid, dw.FfnNorm, N);

        ParallelOps.Clear(be, dXn);
        _attn.Backward(be, w.Attn, dw.Attn, a.Xn1, cos, sin, a.Attn, dMid, dXn);
        ParallelOps.Copy(be, dMid, dxIn.Slice(0, N * H));
        RmsNorm.Backward(be, dXn, xIn, w.AttnNorm, a.Rstd1, dxIn, dw.AttnNorm, N);
    }
}
