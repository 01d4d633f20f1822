// Weight views: a linear layer's matrix W [Rows = out features, Cols = in features] in its stored format,
// able to multiply without being expanded to fp32 as a whole (docs/design.md, seam 1: weights are views).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Storage format of a weight matrix.</summary>
public enum WeightFormat
{
    /// <summary>IEEE fp32.</summary>
    F32,
    /// <summary>IEEE fp16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>FP8 E4M3 values with one fp32 scale per block (DeepSeek-V3's 128x128 blocks).</summary>
    Fp8Block,
    /// <summary>llama.cpp Q8_0: blocks of 32 int8 with one fp16 scale.</summary>
    Q8_0,
    /// <summary>llama.cpp Q4_K: super-blocks of 256 4-bit values with 6-bit sub-block scales and mins.</summary>
    Q4_K,
    /// <summary>llama.cpp Q6_K: super-blocks of 256 6-bit values with 8-bit sub-block scales.</summary>
    Q6_K,
    /// <summary>llama.cpp Q4_0: blocks of 32 4-bit values with one fp16 scale.</summary>
    Q4_0,
    /// <summary>MXFP4: blocks of 32 E2M1 values with one E8M0 scale (DeepSeek-V4's routed experts).</summary>
    Mxfp4,
    /// <summary>llama.cpp Q4_1: blocks of 32 4-bit values with an fp16 scale and an fp16 offset.</summary>
    Q4_1,
    /// <summary>llama.cpp Q5_0: blocks of 32 5-bit values with one fp16 scale.</summary>
    Q5_0,
    /// <summary>llama.cpp Q5_1: blocks of 32 5-bit values with an fp16 scale and an fp16 offset.</summary>
    Q5_1,
    /// <summary>llama.cpp Q5_K: super-blocks of 256 5-bit values with 6-bit sub-block scales and mins.</summary>
    Q5_K,
    /// <summary>llama.cpp Q2_K: super-blocks of 256 2-bit values with 4-bit group scales and mins.</summary>
    Q2_K,
    /// <summary>llama.cpp Q3_K: super-blocks of 256 3-bit values with 6-bit group scales.</summary>
    Q3_K,
    /// <summary>llama.cpp IQ4_NL: blocks of 32 4-bit indices into 16 non-linear levels, one fp16 scale.</summary>
    IQ4_NL,
    /// <summary>llama.cpp IQ4_XS: super-blocks of 256 IQ4_NL-level indices with 6-bit scales per 32.</summary>
    IQ4_XS,
}

/// <summary>
/// A matrix W [Rows, Cols] (PyTorch layout: row r holds the weights of output feature r) that multiplies fp32
/// activations in its own storage format. Products accumulate in fp32.
/// </summary>
public abstract class WeightMatrix
{
    protected WeightMatrix(int rows, int cols)
    {
        if (rows < 0 || cols < 0)
            throw new ArgumentOutOfRangeException(nameof(rows), $"bad matrix shape [{rows}, {cols}]");
        Rows = rows;
        Cols = cols;
    }

    /// <summary>Output features.</summary>
    public int Rows { get; }

    /// <summary>Input features.</summary>
    public int Cols { get; }

    /// <summary>The storage format.</summary>
    public abstract WeightFormat Format { get; }

    /// <summary>Bytes a full pass over the matrix reads (values and scales).</summary>
    public abstract long ByteSize { get; }

    /// <summary>Writes fp32 values of row <paramref name="row"/> into <paramref name="dst"/> [Cols].</summary>
    public abstract void ReadRow(int row, Span<float> dst);

    /// <summary>Returns W[row, :] · x.</summary>
    public abstract float DotRow(int row, ReadOnlySpan<float> x);

    /// <summary>y[i] = W[rowStart + i, :] · x for i in [0, rowCount).</summary>
    public virtual void MatVec(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount)
    {
        CheckMatVec(x, y, rowStart, rowCount);
        for (int i = 0; i < rowCount; i++)
            y[i] = DotRow(rowStart + i, x);
    }

    /// <summary>y = W x for the whole matrix.</summary>
    public void MatVec(ReadOnlySpan<float> x, Span<float> y) => MatVec(x, y, 0, Rows);

    /// <summary>
    /// Y[t, i] = W[rowStart + i, :] · X[t, :] for <paramref name="tokens"/> rows of X [tokens, Cols]; Y is
    /// [tokens, ldy] with the results at columns [0, rowCount). From <see cref="PackedMinTokens"/> tokens every format
    /// runs <see cref="MatMulPacked"/>, below it its own <see cref="MatMulUnpacked"/>.
    /// </summary>
    public void MatMul(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        if (x.Length < (long)tokens * Cols || (tokens > 0 && y.Length < (long)(tokens - 1) * ldy + rowCount))
            throw new ArgumentException("MatMul: buffer too small");
        if (tokens >= PackedMinTokens)
            MatMulPacked(x, tokens, y, ldy, rowStart, rowCount);
        else
            MatMulUnpacked(x, tokens, y, ldy, rowStart, rowCount);
    }

    /// <summary>
    /// The product below <see cref="PackedMinTokens"/> tokens, arguments already checked by
    /// <see cref="MatMul(ReadOnlySpan{float}, int, Span{float}, int, int, int)"/>: here 4 rows dequantized into an fp32
    /// panel at a time; formats with a faster kernel of their own override it.
    /// </summary>
    protected virtual void MatMulUnpacked(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        // dequantize 4 rows into an fp32 panel once, then run the register-blocked kernel over all tokens
        float[] panel = RowScratch(4 * Cols);
        int i = 0;
        unsafe
        {
            fixed (float* pp = panel)
            fixed (float* xp = x)
            fixed (float* yp = y)
            {
                for (; i + 4 <= rowCount; i += 4)
                {
                    for (int r = 0; r < 4; r++)
                        ReadRow(rowStart + i + r, panel.AsSpan(r * Cols, Cols));
                    PanelKernels.Rows4(pp, Cols, xp, Cols, tokens, yp + i, ldy);
                }
            }
        }
        for (; i < rowCount; i++)
        {
            ReadRow(rowStart + i, panel.AsSpan(0, Cols));
            ReadOnlySpan<float> w = panel.AsSpan(0, Cols);
            for (int t = 0; t < tokens; t++)
                y[t * ldy + i] = TensorPrimitives.Dot(w, x.Slice(t * Cols, Cols));
        }
    }

    /// <summary>Y [tokens, Rows] = X [tokens, Cols] Wᵀ.</summary>
    public void MatMul(ReadOnlySpan<float> x, int tokens, Span<float> y) => MatMul(x, tokens, y, Rows, 0, Rows);

    /// <summary>
    /// Tokens from which <see cref="MatMul(ReadOnlySpan{float}, int, Span{float}, int, int, int)"/> of every format runs
    /// <see cref="MatMulPacked"/>: its rows dequantized once into fp32 panels serve this many tokens or more, so the
    /// fp32 GEMM's rate (about 85% of the FMA peak in its micro-kernel) is the product's rate. Below it the per-format
    /// kernels (integer dot products for quantized formats, 4 x 3 fp32 tiles for the others) are as fast or faster
    /// (measured on one thread at 768 x 1024: even at 32 tokens, the packed path ahead from 48).
    /// </summary>
    public const int PackedMinTokens = 48;

    /// <summary>The activation encoding a product over <paramref name="tokens"/> tokens takes: fp32 where
    /// <see cref="MatMulPacked"/> runs, else <see cref="InputFormat"/>.</summary>
    public ActivationFormat InputFormatFor(int tokens) => tokens >= PackedMinTokens ? ActivationFormat.F32 : InputFormat;

    /// <summary>Rows per band of <see cref="MatMulPacked"/>, in whole panels of 32 rows: as many as 4 MiB of packed fp32
    /// holds, because the activations are read once per band (the GEMM keeps a 512 x 256 block of them in L2 for every
    /// panel of the band, and each panel's 256-step chunk, 32 KiB, in L1).</summary>
    private int PackedBandRows => Math.Max(32, (4 << 20) / (Math.Max(Cols, 1) * 4) / 32 * 32);

    /// <summary>
    /// The product as a prefill runs it: band by band, the rows are dequantized (<see cref="ReadRow"/>) and packed into
    /// the GEMM's 32-row panels, then <see cref="Gemm"/>'s register-tiled micro-kernels multiply every token against the
    /// band. Each weight is dequantized once per call; activations stay fp32 (no input quantization).
    /// </summary>
    protected unsafe void MatMulPacked(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        if (tokens <= 0 || rowCount <= 0)
            return;
        // one operand is transposed into the GEMM's 32-wide panels: the weight rows (rowCount x K), or else the
        // activations (tokens x K) plus the output, which then comes out transposed (rowCount x tokens). Fewer tokens
        // than rows (a routed expert's share of a prompt) make the second cheaper: at 96 tokens x 768 rows x 1024
        // columns it moves 0.17 M floats instead of 0.79 M (the transposition was 9% of a Q8_0 prefill). Measured in
        // alternating rounds, Q8_0 and Q4_K: 4-9% faster at 768 x 1024 and 96 tokens, 17-20% at 48 tokens, 4-10% at
        // 1536 x 1024 and 512 tokens; where the model picks the weights (192 or 384 rows x 1024 at 512 tokens) they
        // were 5-13% faster, at 96 x 1024 and 96 tokens the two are even.
        if ((long)tokens * (Cols + rowCount) < (long)rowCount * Cols)
        {
            MatMulPackedTransposed(x, tokens, y, ldy, rowStart, rowCount);
            return;
        }
        int K = Cols, band = Math.Min(PackedBandRows, rowCount);
        float* pb = Scratch.Get(ScratchSlot.PackB, Gemm.PackedLength(band, K));
        float* rows = Scratch.Get(ScratchSlot.PackA, (long)Gemm.NR * K); // PackA: not used by an NT product
        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            for (int b0 = 0; b0 < rowCount; b0 += band)
            {
                int nb = Math.Min(band, rowCount - b0);
                for (int p = 0; p < nb; p += Gemm.NR)
                {
                    int n = Math.Min(Gemm.NR, nb - p);
                    for (int r = 0; r < n; r++)
                        ReadRow(rowStart + b0 + p + r, new Span<float>(rows + (long)r * K, K));
                    Gemm.Pack(true, n, K, rows, K, pb + (long)(p / Gemm.NR) * K * Gemm.NR, 0, 1);
                }
                Gemm.RunPacked(GemmKind.NT, tokens, nb, K, xp, K, pb, K, yp + b0, ldy, false, 0, tokens, 0, nb);
            }
        }
    }

    /// <summary>Rows per band of <see cref="MatMulPackedTransposed"/>: 2 MiB of dequantized fp32 rows, a multiple of 48.</summary>
    private int TransposedBandRows => Math.Max(48, (2 << 20) / (Math.Max(Cols, 1) * 4) / 48 * 48);

    /// <summary>
    /// <see cref="MatMulPacked"/> with the operands' roles swapped: the activations are packed once as the GEMM's
    /// panels, the dequantized weight rows are its row-major left operand, and each band's output [rows, tokens] is
    /// transposed into y.
    /// </summary>
    private unsafe void MatMulPackedTransposed(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        int K = Cols, band = Math.Min(TransposedBandRows, rowCount);
        float* px = Scratch.Get(ScratchSlot.PackB, Gemm.PackedLength(tokens, K));
        float* rows = Scratch.Get(ScratchSlot.PackA, (long)band * K); // PackA: not used by an NN product
        float* ct = Scratch.Get(ScratchSlot.Output, (long)band * tokens);
        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            Gemm.Pack(true, tokens, K, xp, K, px, 0, Gemm.Panels(tokens));
            for (int b0 = 0; b0 < rowCount; b0 += band)
            {
                int nb = Math.Min(band, rowCount - b0);
                for (int r = 0; r < nb; r++)
                    ReadRow(rowStart + b0 + r, new Span<float>(rows + (long)r * K, K));
                Gemm.RunPacked(GemmKind.NN, nb, tokens, K, rows, K, px, K, ct, tokens, false, 0, nb, 0, tokens);
                for (int t = 0; t < tokens; t++)
                {
                    float* yt = yp + (long)t * ldy + b0, ctt = ct + t;
                    for (int r = 0; r < nb; r++)
                        yt[r] = ctt[(long)r * tokens];
                }
            }
        }
    }

    /// <summary>y[c] += Σ_i W[rowStart + i, c] · x[i]: the transposed product over a band of rows.</summary>
    public virtual void MatVecTransposedAdd(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        if (x.Length < rowCount || y.Length < Cols)
            throw new ArgumentException("MatVecTransposedAdd: buffer too small");
        float[] row = RowScratch(Cols);
        for (int i = 0; i < rowCount; i++)
        {
            ReadRow(rowStart + i, row);
            TensorPrimitives.MultiplyAdd(row.AsSpan(0, Cols), x[i], y.Slice(0, Cols), y.Slice(0, Cols));
        }
    }

    /// <summary>The activation encoding this format's fast product takes (F32: plain activations).</summary>
    public virtual ActivationFormat InputFormat => ActivationFormat.F32;

    /// <summary>
    /// Y[t, i] = W[rowStart + i, :] · X[t, :] with X already quantized to <see cref="InputFormat"/>
    /// (formats with an integer product override this).
    /// </summary>
    public virtual void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount) =>
        throw new NotSupportedException($"{Format} takes fp32 activations");

    /// <summary>Copies the whole matrix to fp32 [Rows, Cols] (tests, conversion, training).</summary>
    public float[] ToFloatArray()
    {
        var all = new float[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++)
            ReadRow(r, all.AsSpan(r * Cols, Cols));
        return all;
    }

    /// <summary>The argument checks of every MatVec: the row band, x of at least Cols, y of at least rowCount.</summary>
    protected void CheckMatVec(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        if (x.Length < Cols || y.Length < rowCount)
            throw new ArgumentException($"MatVec: x has {x.Length} (need {Cols}), y has {y.Length} (need {rowCount})");
    }

    /// <summary>Throws unless <paramref name="row"/> is a row and <paramref name="dst"/> holds one (ReadRow's arguments).</summary>
    protected void CheckReadRow(int row, Span<float> dst)
    {
        if ((uint)row >= (uint)Rows)
            throw new ArgumentOutOfRangeException(nameof(row), $"row {row} of {Rows}");
        if (dst.Length < Cols)
            throw new ArgumentException($"ReadRow: destination has {dst.Length} values, the row {Cols}", nameof(dst));
    }

    protected void CheckRows(int rowStart, int rowCount)
    {
        if ((uint)rowStart > (uint)Rows || (uint)rowCount > (uint)(Rows - rowStart))
            throw new ArgumentOutOfRangeException(nameof(rowStart), $"rows [{rowStart}, {rowStart + rowCount}) outside [0, {Rows})");
    }

    [ThreadStatic] private static float[]? t_rowScratch;

    /// <summary>A per-thread buffer of at least n floats for one dequantized row.</summary>
    protected static float[] RowScratch(int n)
    {
        float[]? s = t_rowScratch;
        if (s is null || s.Length < n)
            t_rowScratch = s = new float[Math.Max(n, 256)];
        return s;
    }
}

/// <summary>fp32 weights, over memory the caller keeps alive (a mapped file) or an owned array (training, synthetic).</summary>
public sealed unsafe class F32Matrix : WeightMatrix
{
    private readonly float* _data;
    private readonly float[]? _owned;
    private readonly object? _owner;

    /// <summary>Wraps mapped memory; <paramref name="owner"/> is kept alive with the view.</summary>
    public F32Matrix(float* data, int rows, int cols, object? owner) : base(rows, cols)
    {
        _data = data;
        _owner = owner;
    }

    /// <summary>Owns a pinned fp32 array of rows x cols (zeroed, or a copy of <paramref name="values"/>).</summary>
    public F32Matrix(int rows, int cols, ReadOnlySpan<float> values = default) : base(rows, cols)
    {
        _owned = GC.AllocateArray<float>(checked(rows * cols), pinned: true);
        if (!values.IsEmpty)
        {
            if (values.Length != _owned.Length)
                throw new ArgumentException($"values has {values.Length} elements, matrix needs {_owned.Length}");
            values.CopyTo(_owned);
        }
        _data = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_owned));
    }

    public override WeightFormat Format => WeightFormat.F32;

    public override long ByteSize => (long)Rows * Cols * 4;

    /// <summary>The values [Rows * Cols], writable (training updates weights in place).</summary>
    public Span<float> Data => new(_data, Rows * Cols);

    public ReadOnlySpan<float> Row(int r) => new(_data + (long)r * Cols, Cols);

    public override void ReadRow(int row, Span<float> dst) => Row(row).CopyTo(dst);

    public override float DotRow(int row, ReadOnlySpan<float> x) => TensorPrimitives.Dot(Row(row), x.Slice(0, Cols));

    /// <summary>
    /// y[i] = W[rowStart + i, :] · x: the kernel of <see cref="MatMulUnpacked"/> with one token (PanelKernels.Rows4), so
    /// a row's sum does not depend on how many tokens share the call.
    /// </summary>
    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount)
    {
        CheckMatVec(x, y, rowStart, rowCount);
        MatMulUnpacked(x, 1, y, rowCount, rowStart, rowCount);
    }

    protected override void MatMulUnpacked(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        int i = 0;
        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            for (; i + 4 <= rowCount; i += 4)
                PanelKernels.Rows4(_data + (long)(rowStart + i) * Cols, Cols, xp, Cols, tokens, yp + i, ldy, streamed: true);
        }
        for (; i < rowCount; i++)
        {
            ReadOnlySpan<float> w = Row(rowStart + i);
            for (int t = 0; t < tokens; t++)
                y[t * ldy + i] = TensorPrimitives.Dot(w, x.Slice(t * Cols, Cols));
        }
    }

    public override void MatVecTransposedAdd(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        for (int i = 0; i < rowCount; i++)
            TensorPrimitives.MultiplyAdd(Row(rowStart + i), x[i], y.Slice(0, Cols), y.Slice(0, Cols));
    }

    internal object? Owner => _owner ?? _owned;
}

/// <summary>bfloat16 weights (widened to fp32 inside the dot product).</summary>
public sealed unsafe class Bf16Matrix : WeightMatrix
{
    private readonly ushort* _data;
    private readonly object? _owner;

    public Bf16Matrix(ushort* data, int rows, int cols, object? owner) : base(rows, cols)
    {
        _data = data;
        _owner = owner;
    }

    public override WeightFormat Format => WeightFormat.BF16;

    public override long ByteSize => (long)Rows * Cols * 2;

    public ReadOnlySpan<ushort> Row(int r) => new(_data + (long)r * Cols, Cols);

    public override void ReadRow(int row, Span<float> dst) => Bf16.ToFloat(Row(row), dst);

    public override float DotRow(int row, ReadOnlySpan<float> x) => Dot.Bf16(Row(row), x.Slice(0, Cols));

    /// <summary>
    /// y[i] = W[rowStart + i, :] · x four rows at a time, the rows read as bf16 in the products (<see cref="Bf16.Even"/>,
    /// <see cref="Bf16.Odd"/>: two ALU operations per 32 values instead of two widenings and two shifts) against x
    /// permuted once per call (decode of a bf16 model, and W_UV of absorbed attention on every token). The same kernel
    /// as <see cref="MatMulUnpacked"/> with one token, so a row's sum does not depend on how many tokens share the call.
    /// </summary>
    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount)
    {
        CheckMatVec(x, y, rowStart, rowCount);
        if (!RowsInProducts)
        {
            base.MatVec(x, y, rowStart, rowCount);
            return;
        }
        MatMulRowsInProducts(x, 1, y, rowCount, rowStart, rowCount);
    }

    /// <summary>Whether the products read the bf16 rows in the products themselves (<see cref="MatMulRowsInProducts"/>): AVX-512
    /// and whole groups of 32 columns (even/odd lanes), or else AVX2 + FMA and whole groups of 16 (<see cref="Bf16Avx2"/>,
    /// even/odd lanes of 256 bits).</summary>
    private bool RowsInProducts => Wide || (Bf16Avx2.IsSupported && Cols % 16 == 0);

    /// <summary>Whether those products run 512 bits wide (else <see cref="Bf16Avx2"/>'s 256-bit kernels).</summary>
    private bool Wide => Avx512F.IsSupported && Cols % 32 == 0;

    /// <summary>
    /// Below <see cref="WeightMatrix.PackedMinTokens"/> tokens (a routed expert's share of a batched decode step): the
    /// bf16 rows read in the products themselves, four rows against four tokens at a time, with no fp32 copy of the
    /// rows. Each row's sum for each token is formed exactly as <see cref="MatVec(ReadOnlySpan{float}, Span{float}, int, int)"/>
    /// forms it for that token alone: batched decoding gives the same logits as decoding one sequence.
    /// </summary>
    protected override void MatMulUnpacked(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        if (!RowsInProducts)
        {
            base.MatMulUnpacked(x, tokens, y, ldy, rowStart, rowCount);
            return;
        }
        MatMulRowsInProducts(x, tokens, y, ldy, rowStart, rowCount);
    }

    private void MatMulRowsInProducts(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        float[] perm = RowScratch(tokens * Cols);
        if (!Wide)
        {
            // without AVX-512 (or with a width that is no multiple of 32): the 256-bit kernels, on x permuted the same way
            fixed (float* xp = x, pp = perm, yp = y)
            {
                for (int t = 0; t < tokens; t++)
                    Bf16Avx2.EvenOdd(xp + (long)t * Cols, pp + (long)t * Cols, Cols);
                Bf16Avx2.Product(_data + (long)rowStart * Cols, Cols, pp, tokens, yp, ldy, rowCount);
            }
            return;
        }
        fixed (float* xp = x, pp = perm, yp = y)
        {
            for (int t = 0; t < tokens; t++)
                Bf16.EvenOdd(xp + (long)t * Cols, pp + (long)t * Cols, Cols);
            int i = 0;
            if (tokens == 1 && rowCount >= 8)
            {
                // one token (decode): pairs of rows from the two halves of the range in turn, two memory streams (as
                // the Q8_0 and Q4_K decode kernels), each requested ahead before the loop
                int half = rowCount / 4 * 2;
                ushort* a = _data + (long)rowStart * Cols, b = a + (long)half * Cols;
                StreamPrefetch.Start((byte*)a, (long)half * Cols * 2);
                StreamPrefetch.Start((byte*)b, (long)half * Cols * 2);
                for (int k = 0; k < half; k += 2)
                    TwoStreams(a + (long)k * Cols, b + (long)k * Cols, Cols, pp, yp + k, yp + half + k);
                i = 2 * half;
            }
            // groups of four rows, in blocks of one group or, from BlockMinTokens tokens, of BlockRows rows: each pass of
            // up to 4 tokens runs over the block's groups before the next pass. The first pass over a group reads it
            // from memory and requests the rows two groups ahead; the ones after it read it from L1 (or L2)
            int whole = rowCount / 4 * 4, block = tokens >= BlockMinTokens ? BlockRows : 4;
            for (int b0 = i; b0 < whole; b0 += block)
            {
                int end = Math.Min(b0 + block, whole);
                for (int t = 0; t < tokens; t += 4)
                {
                    float* xt = pp + (long)t * Cols;
                    bool first = t == 0;
                    for (int g = b0; g < end; g += 4)
                    {
                        ushort* r0 = _data + (long)(rowStart + g) * Cols;
                        float* yt = yp + (long)t * ldy + g;
                        switch (Math.Min(tokens - t, 4))
                        {
                            case 4: Rows4<Tokens4>(r0, Cols, xt, yt, ldy, first); break;
                            case 3: Rows4<Tokens3>(r0, Cols, xt, yt, ldy, first); break;
                            case 2: Rows4<Tokens2>(r0, Cols, xt, yt, ldy, first); break;
                            default: Rows4<Tokens1>(r0, Cols, xt, yt, ldy, first); break;
                        }
                    }
                }
            }
            for (i = whole; i < rowCount; i++)
            {
                ushort* r = _data + (long)(rowStart + i) * Cols;
                for (int t = 0; t < tokens; t++)
                    yp[(long)t * ldy + i] = Row1(r, Cols, pp + (long)t * Cols);
            }
        }
    }

    /// <summary>
    /// y[t·ldy + r] = row r · x_t for the 4 rows from r0 (stride <paramref name="cols"/>) and the N tokens of xp (each
    /// permuted by <see cref="Bf16.EvenOdd"/>, stride cols): per 32 columns the rows are split into even and odd lanes
    /// once and feed 2·N FMAs each. acc = fma(odd, x_odd, fma(even, x_even, acc)), then one horizontal sum: the order
    /// <see cref="Row1"/> uses.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4<TN>(ushort* r0, int cols, float* xp, float* y, int ldy, bool prefetch) where TN : struct, ITokenCount
    {
        ushort* r1 = r0 + cols, r2 = r1 + cols, r3 = r2 + cols;
        float* x1 = xp + cols, x2 = x1 + cols, x3 = x2 + cols;
        Vector512<float> a00 = default, a10 = default, a20 = default, a30 = default;
        Vector512<float> a01 = default, a11 = default, a21 = default, a31 = default;
        Vector512<float> a02 = default, a12 = default, a22 = default, a32 = default;
        Vector512<float> a03 = default, a13 = default, a23 = default, a33 = default;
        for (int c = 0; c < cols; c += 32)
        {
            if (prefetch)
            {
                // the same columns two groups of rows ahead (one 4 KB ahead, as for a single row, fell inside this group
                // for 2 KB rows and left the stream 10% slower than the per-row dot product from memory), into L2: on a
                // Zen 4 (one thread, 256 x 1024 matrices from memory) requests into L1 streamed 10-12 GB/s, into L2 16-18
                Sse.Prefetch1(r0 + c + 8 * cols);
                Sse.Prefetch1(r1 + c + 8 * cols);
                Sse.Prefetch1(r2 + c + 8 * cols);
                Sse.Prefetch1(r3 + c + 8 * cols);
            }
            Vector512<uint> w = Vector512.Load((uint*)(r0 + c));
            Vector512<float> e0 = Bf16.Even(w), o0 = Bf16.Odd(w);
            w = Vector512.Load((uint*)(r1 + c));
            Vector512<float> e1 = Bf16.Even(w), o1 = Bf16.Odd(w);
            w = Vector512.Load((uint*)(r2 + c));
            Vector512<float> e2 = Bf16.Even(w), o2 = Bf16.Odd(w);
            w = Vector512.Load((uint*)(r3 + c));
            Vector512<float> e3 = Bf16.Even(w), o3 = Bf16.Odd(w);
            Vector512<float> xe = Vector512.Load(xp + c), xo = Vector512.Load(xp + c + 16);
            a00 = Vector512.FusedMultiplyAdd(o0, xo, Vector512.FusedMultiplyAdd(e0, xe, a00));
            a10 = Vector512.FusedMultiplyAdd(o1, xo, Vector512.FusedMultiplyAdd(e1, xe, a10));
            a20 = Vector512.FusedMultiplyAdd(o2, xo, Vector512.FusedMultiplyAdd(e2, xe, a20));
            a30 = Vector512.FusedMultiplyAdd(o3, xo, Vector512.FusedMultiplyAdd(e3, xe, a30));
            if (TN.N > 1)
            {
                xe = Vector512.Load(x1 + c);
                xo = Vector512.Load(x1 + c + 16);
                a01 = Vector512.FusedMultiplyAdd(o0, xo, Vector512.FusedMultiplyAdd(e0, xe, a01));
                a11 = Vector512.FusedMultiplyAdd(o1, xo, Vector512.FusedMultiplyAdd(e1, xe, a11));
                a21 = Vector512.FusedMultiplyAdd(o2, xo, Vector512.FusedMultiplyAdd(e2, xe, a21));
                a31 = Vector512.FusedMultiplyAdd(o3, xo, Vector512.FusedMultiplyAdd(e3, xe, a31));
            }
            if (TN.N > 2)
            {
                xe = Vector512.Load(x2 + c);
                xo = Vector512.Load(x2 + c + 16);
                a02 = Vector512.FusedMultiplyAdd(o0, xo, Vector512.FusedMultiplyAdd(e0, xe, a02));
                a12 = Vector512.FusedMultiplyAdd(o1, xo, Vector512.FusedMultiplyAdd(e1, xe, a12));
                a22 = Vector512.FusedMultiplyAdd(o2, xo, Vector512.FusedMultiplyAdd(e2, xe, a22));
                a32 = Vector512.FusedMultiplyAdd(o3, xo, Vector512.FusedMultiplyAdd(e3, xe, a32));
            }
            if (TN.N > 3)
            {
                xe = Vector512.Load(x3 + c);
                xo = Vector512.Load(x3 + c + 16);
                a03 = Vector512.FusedMultiplyAdd(o0, xo, Vector512.FusedMultiplyAdd(e0, xe, a03));
                a13 = Vector512.FusedMultiplyAdd(o1, xo, Vector512.FusedMultiplyAdd(e1, xe, a13));
                a23 = Vector512.FusedMultiplyAdd(o2, xo, Vector512.FusedMultiplyAdd(e2, xe, a23));
                a33 = Vector512.FusedMultiplyAdd(o3, xo, Vector512.FusedMultiplyAdd(e3, xe, a33));
            }
        }
        // the lane sums reduced together, each in Vector512.Sum's order (Row1 and TwoStreams give the same bits)
        HorizontalSums.StoreRows4(y, ldy, TN.N, a00, a10, a20, a30, a01, a11, a21, a31, a02, a12, a22, a32, a03, a13, a23, a33);
    }

    /// <summary>
    /// From this many tokens (two or more passes of 4 over each group of rows) the products run over blocks of
    /// <see cref="BlockRows"/> rows, the 4-token passes outside the groups of the block: a pass's 4 permuted tokens
    /// (16 KB at 1024 columns) stay in L1 over the block's groups and the block's rows (64 KB) come from L2, instead of
    /// each group's passes fetching every token from L2 again (16 tokens: 64 KB a group, more than L1). Each (row,
    /// token) sum is formed as before. 768 x 1024 from memory, one thread, Zen 5 (`bench/KernelRates`, alternating):
    /// 8 tokens 9.6-10.7 -> 15.8-16.2 GB/s, 16 tokens 7.0-7.4 -> 9.3-9.7; 5-7 tokens (one extra pass) within noise, so
    /// left as they were. In the 1B bench model at 32 sequences: 186-204 -> 197-218 tok/s (three alternations).
    /// </summary>
    private const int BlockMinTokens = 8;

    /// <summary>Rows of a block (<see cref="BlockMinTokens"/>): 32 x 2 KB of bf16 at 1024 columns, well inside L2.</summary>
    private const int BlockRows = 32;

    /// <summary>
    /// ya[0..2) and yb[0..2) for two rows from a and two from b (stride cols) against one token (xp as Rows4 takes it),
    /// each row's sum formed as <see cref="Row1"/> and <see cref="Rows4"/> form it; the next pair of each stream is
    /// requested into L2 as these are read (on a Zen 4, one thread, 256 x 1024 matrices from memory: 19.5-20 GB/s, against
    /// 10-12 for the same requests into L1 and 16-18 for <see cref="Rows4"/> with requests into L2).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TwoStreams(ushort* a, ushort* b, int cols, float* xp, float* ya, float* yb)
    {
        ushort* a1 = a + cols, b1 = b + cols;
        long ahead = 2L * cols;
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int c = 0; c < cols; c += 32)
        {
            Sse.Prefetch1(a + c + ahead);
            Sse.Prefetch1(b + c + ahead);
            Sse.Prefetch1(a1 + c + ahead);
            Sse.Prefetch1(b1 + c + ahead);
            Vector512<float> xe = Vector512.Load(xp + c), xo = Vector512.Load(xp + c + 16);
            Vector512<uint> w = Vector512.Load((uint*)(a + c));
            s0 = Vector512.FusedMultiplyAdd(Bf16.Odd(w), xo, Vector512.FusedMultiplyAdd(Bf16.Even(w), xe, s0));
            w = Vector512.Load((uint*)(a1 + c));
            s1 = Vector512.FusedMultiplyAdd(Bf16.Odd(w), xo, Vector512.FusedMultiplyAdd(Bf16.Even(w), xe, s1));
            w = Vector512.Load((uint*)(b + c));
            s2 = Vector512.FusedMultiplyAdd(Bf16.Odd(w), xo, Vector512.FusedMultiplyAdd(Bf16.Even(w), xe, s2));
            w = Vector512.Load((uint*)(b1 + c));
            s3 = Vector512.FusedMultiplyAdd(Bf16.Odd(w), xo, Vector512.FusedMultiplyAdd(Bf16.Even(w), xe, s3));
        }
        Vector128<float> sums = HorizontalSums.Sum4(s0, s1, s2, s3);
        ya[0] = sums.GetElement(0);
        ya[1] = sums.GetElement(1);
        yb[0] = sums.GetElement(2);
        yb[1] = sums.GetElement(3);
    }

    /// <summary>One row against one permuted token, in <see cref="Rows4"/>'s order.</summary>
    private static float Row1(ushort* r, int cols, float* xp)
    {
        Vector512<float> a = default;
        for (int c = 0; c < cols; c += 32)
        {
            Vector512<uint> w = Vector512.Load((uint*)(r + c));
            a = Vector512.FusedMultiplyAdd(Bf16.Odd(w), Vector512.Load(xp + c + 16), Vector512.FusedMultiplyAdd(Bf16.Even(w), Vector512.Load(xp + c), a));
        }
        return Vector512.Sum(a);
    }

    /// <summary>
    /// y += Σ_i x[i]·W[rowStart + i, :] four rows at a time: each 32 columns of y are loaded and stored once per four
    /// rows, and the rows are read as even/odd lanes against y permuted for the call (widened in registers where the
    /// width is no multiple of 32). Decode runs this for W_UK of absorbed attention on every token: 1.3-1.4x the widening
    /// version in cache, 1.1x over 12 layers' W_UK from memory; the same sums in the same order.
    /// </summary>
    public override void MatVecTransposedAdd(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        if (x.Length < rowCount || y.Length < Cols)
            throw new ArgumentException("MatVecTransposedAdd: buffer too small");
        int i = 0;
        if (!Wide && Bf16Avx2.IsSupported && Cols % 16 == 0 && rowCount >= 4)
        {
            float[] perm = RowScratch(Cols);
            fixed (float* yp = y, pp = perm, xp = x)
            {
                Bf16Avx2.EvenOdd(yp, pp, Cols);
                i = rowCount / 4 * 4;
                Bf16Avx2.TransposedAdd(_data + (long)rowStart * Cols, Cols, xp, i, pp);
                Bf16Avx2.Interleave(pp, Cols);
                new ReadOnlySpan<float>(pp, Cols).CopyTo(y);
            }
        }
        else if (Avx512F.IsSupported && Cols % 32 == 0 && rowCount >= 4)
        {
            // the rows read as even/odd lanes (two ALU operations per 32 values instead of two widenings and two
            // shifts) into y permuted the same way for the call, put back in order at the end
            float[] perm = RowScratch(Cols);
            fixed (float* yp = y, pp = perm)
            {
                Bf16.EvenOdd(yp, pp, Cols);
                for (; i + 4 <= rowCount; i += 4)
                {
                    ushort* r0 = _data + (long)(rowStart + i) * Cols, r1 = r0 + Cols, r2 = r1 + Cols, r3 = r2 + Cols;
                    Vector512<float> x0 = Vector512.Create(x[i]), x1 = Vector512.Create(x[i + 1]), x2 = Vector512.Create(x[i + 2]), x3 = Vector512.Create(x[i + 3]);
                    for (int c = 0; c < Cols; c += 32)
                    {
                        Vector512<uint> w0 = Vector512.Load((uint*)(r0 + c)), w1 = Vector512.Load((uint*)(r1 + c));
                        Vector512<uint> w2 = Vector512.Load((uint*)(r2 + c)), w3 = Vector512.Load((uint*)(r3 + c));
                        Vector512<float> e = Vector512.FusedMultiplyAdd(Bf16.Even(w0), x0, Vector512.Load(pp + c));
                        Vector512<float> o = Vector512.FusedMultiplyAdd(Bf16.Odd(w0), x0, Vector512.Load(pp + c + 16));
                        e = Vector512.FusedMultiplyAdd(Bf16.Even(w1), x1, e);
                        o = Vector512.FusedMultiplyAdd(Bf16.Odd(w1), x1, o);
                        e = Vector512.FusedMultiplyAdd(Bf16.Even(w2), x2, e);
                        o = Vector512.FusedMultiplyAdd(Bf16.Odd(w2), x2, o);
                        Vector512.FusedMultiplyAdd(Bf16.Even(w3), x3, e).Store(pp + c);
                        Vector512.FusedMultiplyAdd(Bf16.Odd(w3), x3, o).Store(pp + c + 16);
                    }
                }
                Bf16.Interleave(pp, Cols);
                new ReadOnlySpan<float>(pp, Cols).CopyTo(y);
            }
        }
        else if (Vector512.IsHardwareAccelerated)
        {
            fixed (float* yp = y)
            {
                for (; i + 4 <= rowCount; i += 4)
                {
                    ushort* r0 = _data + (long)(rowStart + i) * Cols, r1 = r0 + Cols, r2 = r1 + Cols, r3 = r2 + Cols;
                    float s0 = x[i], s1 = x[i + 1], s2 = x[i + 2], s3 = x[i + 3];
                    Vector512<float> x0 = Vector512.Create(s0), x1 = Vector512.Create(s1), x2 = Vector512.Create(s2), x3 = Vector512.Create(s3);
                    int c = 0;
                    for (; c + 16 <= Cols; c += 16)
                    {
                        Vector512<float> acc = Vector512.FusedMultiplyAdd(Bf16.Widen16(ref r0[c]), x0, Vector512.Load(yp + c));
                        acc = Vector512.FusedMultiplyAdd(Bf16.Widen16(ref r1[c]), x1, acc);
                        acc = Vector512.FusedMultiplyAdd(Bf16.Widen16(ref r2[c]), x2, acc);
                        Vector512.FusedMultiplyAdd(Bf16.Widen16(ref r3[c]), x3, acc).Store(yp + c);
                    }
                    for (; c < Cols; c++)
                    {
                        float acc = MathF.FusedMultiplyAdd(Bf16.ToFloat(r0[c]), s0, yp[c]);
                        acc = MathF.FusedMultiplyAdd(Bf16.ToFloat(r1[c]), s1, acc);
                        acc = MathF.FusedMultiplyAdd(Bf16.ToFloat(r2[c]), s2, acc);
                        yp[c] = MathF.FusedMultiplyAdd(Bf16.ToFloat(r3[c]), s3, acc);
                    }
                }
            }
        }
        if (i < rowCount)
            base.MatVecTransposedAdd(x.Slice(i), y, rowStart + i, rowCount - i);
    }

    internal object? Owner => _owner;
}

/// <summary>IEEE fp16 weights.</summary>
public sealed unsafe class F16Matrix : WeightMatrix
{
    private readonly Half* _data;
    private readonly object? _owner;

    public F16Matrix(Half* data, int rows, int cols, object? owner) : base(rows, cols)
    {
        _data = data;
        _owner = owner;
    }

    public override WeightFormat Format => WeightFormat.F16;

    public override long ByteSize => (long)Rows * Cols * 2;

    public ReadOnlySpan<Half> Row(int r) => new(_data + (long)r * Cols, Cols);

    public override void ReadRow(int row, Span<float> dst) => TensorPrimitives.ConvertToSingle(Row(row), dst.Slice(0, Cols));

    public override float DotRow(int row, ReadOnlySpan<float> x)
    {
        Span<float> tmp = RowScratch(Cols).AsSpan(0, Cols);
        ReadRow(row, tmp);
        return TensorPrimitives.Dot(tmp, x.Slice(0, Cols));
    }

    internal object? Owner => _owner;
}

/// <summary>
/// FP8 E4M3 weights with fp32 block scales: W[r, c] = e4m3(q[r, c]) · scale[r / BlockRows, c / BlockCols]
/// (DeepSeek-V3 <c>weight_scale_inv</c>, despite its name a multiplier). Edge blocks may be partial.
/// The product is computed block by block from the bytes; the matrix is never expanded as a whole.
/// </summary>
public sealed unsafe class Fp8BlockMatrix : WeightMatrix
{
    private readonly byte* _data;
    private readonly float* _scales;
    private readonly object? _owner;

    public Fp8BlockMatrix(byte* data, float* scales, int rows, int cols, int blockRows, int blockCols, object? owner)
        : base(rows, cols)
    {
        if (blockRows <= 0 || blockCols <= 0)
            throw new ArgumentOutOfRangeException(nameof(blockRows), "block size must be positive");
        _data = data;
        _scales = scales;
        BlockRows = blockRows;
        BlockCols = blockCols;
        ScaleCols = (cols + blockCols - 1) / blockCols;
        _owner = owner;
    }

    public int BlockRows { get; }

    public int BlockCols { get; }

    /// <summary>Columns of the scale grid, ceil(Cols / BlockCols).</summary>
    public int ScaleCols { get; }

    public override WeightFormat Format => WeightFormat.Fp8Block;

    public override long ByteSize => (long)Rows * Cols + 4L * ((Rows + BlockRows - 1) / BlockRows) * ScaleCols;

    public ReadOnlySpan<byte> Row(int r) => new(_data + (long)r * Cols, Cols);

    public float Scale(int blockRow, int blockCol) => _scales[(long)blockRow * ScaleCols + blockCol];

    public override void ReadRow(int row, Span<float> dst)
    {
        ReadOnlySpan<byte> q = Row(row);
        ReadOnlySpan<float> lut = Fp8E4M3.Table;
        float* s = _scales + (long)(row / BlockRows) * ScaleCols;
        for (int c = 0; c < Cols; c++)
            dst[c] = lut[q[c]] * s[c / BlockCols];
    }

    public override float DotRow(int row, ReadOnlySpan<float> x)
    {
        ReadOnlySpan<byte> q = Row(row);
        ReadOnlySpan<float> lut = Fp8E4M3.Table;
        float* s = _scales + (long)(row / BlockRows) * ScaleCols;
        Span<float> tmp = stackalloc float[BlockCols <= 256 ? BlockCols : 0];
        float total = 0f;
        for (int b = 0, c0 = 0; c0 < Cols; b++, c0 += BlockCols)
        {
            int n = Math.Min(BlockCols, Cols - c0);
            if (tmp.Length >= n)
            {
                for (int j = 0; j < n; j++)
                    tmp[j] = lut[q[c0 + j]];
                total += s[b] * TensorPrimitives.Dot(tmp.Slice(0, n), x.Slice(c0, n));
            }
            else
            {
                float acc = 0f;
                for (int j = 0; j < n; j++)
                    acc += lut[q[c0 + j]] * x[c0 + j];
                total += s[b] * acc;
            }
        }
        return total;
    }

    internal object? Owner => _owner;
}
