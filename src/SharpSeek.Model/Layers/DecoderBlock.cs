// Pre-norm decoder block (spec §3.1): x_mid = x + MLA(RMSNorm_in(x)); x_out = x_mid + FFN(RMSNorm_post(x_mid)),
// FFN = dense SwiGLU MLP or DeepSeekMoE. Used for the main layers and for the MTP module's block.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

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

    public DecoderBlock(ModelConfig c, int B, int S, bool anyMoe, bool anyDense)
    {
        _c = c;
        _n = B * S;
        int N = _n, H = c.HiddenSize, I = anyDense ? c.IntermediateSize : 0;
        _attn = new MlaTraining(c, B, S);
        _moe = anyMoe ? new MoeTraining(c, B, S) : null;
        _y = new float[N * H];
        _dXn = new float[N * H];
        _dh = new float[N * I];
        _dg = new float[N * I];
        _du = new float[N * I];
    }

    /// <summary>xIn [N, H] → xOut [N, H] (may not alias xIn). alpha: balance-loss coefficient for MoE blocks.</summary>
    public void Forward(ComputeBackend be, LayerWeights w, ReadOnlySpan<float> xIn, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin,
                        BlockActivations a, Span<float> xOut, float alpha)
    {
        int N = _n, H = _c.HiddenSize;
        float eps = (float)_c.RmsNormEps;
        Span<float> y = _y.AsSpan(0, N * H);
        RmsNorm.Forward(be, xIn, w.AttnNorm, eps, a.Rstd1, a.Xn1, N);
        _attn.Forward(be, w.Attn, a.Xn1, cos, sin, a.Attn, y);
        RmsNorm.AddForward(be, xIn, y, a.XMid, w.FfnNorm, eps, a.Rstd2, a.Xn2, N);
        if (w.Moe is { } moe)
            _moe!.Forward(be, moe, a.Xn2, a.Moe!, y, alpha);
        else
            Mlp.Forward(be, w.Dense!, a.Xn2, N, a.G, a.U, a.Hd, y);
        ParallelOps.Add(be, a.XMid, y, xOut.Slice(0, N * H));
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
