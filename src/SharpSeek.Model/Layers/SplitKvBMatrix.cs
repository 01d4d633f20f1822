// kv_b_proj of a GGUF file whose split halves are quantized: attn_k_b holds W_UK transposed per head ([R, Dn]: R
// rows of Dn), attn_v_b holds W_UV per head ([Dv, R]). The absorbed decode multiplies exactly those per-head blocks
// (q̃^h = W_UK^hᵀ q_nope^h is attn_k_b's rows of head h times q_nope^h; o^h = W_UV^h ō^h is attn_v_b's), so it reads
// them as stored, with quantized activations as every other product of such a file (as llama.cpp does), instead of a
// bf16 copy of the whole kv_b: 1.1 MB instead of 2 MB a layer on a 0.45B Q8_0 file. Everything else (prefill's
// decompression of the latents, export, row reads) uses the dense matrix rebuilt from the halves.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>A kv_b_proj matrix whose absorbed per-head products have their own stored form (<see cref="Mla"/>'s decode).</summary>
public interface IAbsorbedKvB
{
    /// <summary>q̃ [R] = W_UK^hᵀ q_nope [Dn] for head <paramref name="head"/>.</summary>
    void AbsorbQuery(int head, ReadOnlySpan<float> qNope, Span<float> qt);

    /// <summary>o [Dv] = W_UV^h ō [R] for head <paramref name="head"/>.</summary>
    void ApplyValue(int head, ReadOnlySpan<float> latent, Span<float> o);
}

/// <summary>
/// kv_b_proj [Nh·(Dn+Dv), R] as a dense matrix (<paramref name="dense"/>, rebuilt from the halves) plus the halves
/// themselves for the absorbed products: <paramref name="kb"/> [Nh·R, Dn] (head h's W_UKᵀ at rows h·R ..) and
/// <paramref name="vb"/> [Nh·Dv, R]. <see cref="ByteSize"/> is what a decoded token reads: the halves.
/// </summary>
public sealed class SplitKvBMatrix(WeightMatrix dense, WeightMatrix kb, WeightMatrix vb, int heads) : WeightMatrix(dense.Rows, dense.Cols), IAbsorbedKvB
{
    private readonly int _r = dense.Cols, _dn = kb.Cols, _dv = vb.Rows / heads;

    /// <summary>The dense kv_b_proj (prefill, row reads).</summary>
    public WeightMatrix Dense => dense;

    /// <summary>attn_k_b as stored: [Nh·R, Dn], head h's W_UKᵀ at rows h·R ...</summary>
    public WeightMatrix KeyHalf => kb;

    /// <summary>attn_v_b as stored: [Nh·Dv, R], head h's W_UV at rows h·Dv ...</summary>
    public WeightMatrix ValueHalf => vb;

    public override WeightFormat Format => dense.Format;
    public override long ByteSize => kb.ByteSize + vb.ByteSize;
    public override ActivationFormat InputFormat => dense.InputFormat;
    public override void ReadRow(int row, Span<float> dst) => dense.ReadRow(row, dst);
    public override float DotRow(int row, ReadOnlySpan<float> x) => dense.DotRow(row, x);
    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount) => dense.MatVec(x, y, rowStart, rowCount);
    public override void MatVecTransposedAdd(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount) => dense.MatVecTransposedAdd(x, y, rowStart, rowCount);
    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount) => dense.MatMulQuantized(x, y, ldy, rowStart, rowCount);
    protected override void MatMulUnpacked(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount) =>
        dense.MatMul(x, tokens, y, ldy, rowStart, rowCount);

    public void AbsorbQuery(int head, ReadOnlySpan<float> qNope, Span<float> qt) => kb.MatVec(qNope.Slice(0, _dn), qt.Slice(0, _r), head * _r, _r);

    public void ApplyValue(int head, ReadOnlySpan<float> latent, Span<float> o) => vb.MatVec(latent.Slice(0, _r), o.Slice(0, _dv), head * _dv, _dv);
}
