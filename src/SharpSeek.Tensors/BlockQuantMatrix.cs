// The shared base of the quantized weight formats (Q8_0, Q4_K, Q6_K, Q4_0 and the interleaved Q4_K): float entry
// points through quantized activations, block geometry, per-thread input scratch.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>
/// Weights whose products take quantized activations (<see cref="WeightMatrix.InputFormat"/>): the float entry points
/// quantize their input into a per-thread buffer and run <see cref="WeightMatrix.MatMulQuantized"/>; a single row's
/// dot product goes through the dequantized row.
/// </summary>
public abstract class QuantizedProductMatrix : WeightMatrix
{
    protected QuantizedProductMatrix(int rows, int cols) : base(rows, cols)
    {
    }

    public override float DotRow(int row, ReadOnlySpan<float> x)
    {
        Span<float> tmp = RowScratch(Cols).AsSpan(0, Cols);
        ReadRow(row, tmp);
        return System.Numerics.Tensors.TensorPrimitives.Dot(tmp, x.Slice(0, Cols));
    }

    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowCount) => MatMul(x, 1, y, rowCount, rowStart, rowCount);

    /// <summary>Throws unless the rows are this matrix's, <paramref name="x"/> holds <paramref name="format"/>
    /// activations of its width and <paramref name="yLength"/> values hold x.Tokens outputs at stride <paramref name="ldy"/>
    /// (<see cref="WeightMatrix.MatMulQuantized"/>'s arguments).</summary>
    protected void CheckQuantizedProduct(QuantizedInput x, ActivationFormat format, int yLength, int ldy, int rowStart, int rowCount, string name)
    {
        CheckRows(rowStart, rowCount);
        if (x.Format != format || x.Cols != Cols)
            throw new ArgumentException($"{name} product needs {format} activations of the same width");
        if (x.Tokens > 0 && yLength < (long)(x.Tokens - 1) * ldy + rowCount)
            throw new ArgumentException("MatMulQuantized: y too small");
    }

    /// <summary>The dot product of row <c>row</c> of matrix <c>m</c> with one token's Q8 activations (int16 values, a scale per 32).</summary>
    public unsafe interface IQ8RowDot
    {
        static abstract float Dot(QuantizedProductMatrix m, int row, short* xq, float* xs, int blocks);
    }

    /// <summary>Y[t, i] = row (rowStart + i) · token t for Q8 activations, through <typeparamref name="TDot"/> (Q4_0, MXFP4 in both layouts).</summary>
    protected unsafe void MatMulQ8<TDot>(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount, string format)
        where TDot : IQ8RowDot
    {
        CheckQuantizedProduct(x, ActivationFormat.Q8, y.Length, ldy, rowStart, rowCount, format);
        int blocks = Cols / 32, T = x.Tokens;
        fixed (short* xq = x.Q16Array)
        fixed (float* xs = x.ScaleArray)
        fixed (float* yp = y)
        {
            for (int i = 0; i < rowCount; i++)
            {
                for (int t = 0; t < T; t++)
                    yp[(long)t * ldy + i] = TDot.Dot(this, rowStart + i, xq + (long)t * Cols, xs + (long)t * blocks, blocks);
            }
        }
    }

    /// <summary>The dot product of row <c>row</c> of matrix <c>m</c> with one token's Q8K activations (Q5_K, Q2_K, Q3_K).</summary>
    internal unsafe interface IQ8KRowDot
    {
        static abstract float Dot(QuantizedProductMatrix m, int row, in Q8KToken x, int blocks);
    }

    /// <summary>Y[t, i] = row (rowStart + i) · token t for Q8K activations (blocks of 256), through <typeparamref name="TDot"/>.</summary>
    private protected unsafe void MatMulQ8K<TDot>(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount, string format)
        where TDot : IQ8KRowDot
    {
        CheckQuantizedProduct(x, ActivationFormat.Q8K, y.Length, ldy, rowStart, rowCount, format);
        int blocks = Cols / 256, T = x.Tokens;
        fixed (sbyte* xq = x.Q8Array)
        fixed (float* xd = x.ScaleArray)
        fixed (int* sums = x.SumArray)
        fixed (short* sums16 = x.Sum16Array)
        fixed (short* groups = x.GroupSumArray)
        fixed (float* yp = y)
        {
            for (int i = 0; i < rowCount; i++)
            {
                for (int t = 0; t < T; t++)
                {
                    var token = new Q8KToken(xq + (long)t * Cols, xd + (long)t * blocks, sums + (long)t * blocks * 8, sums16 + (long)t * blocks * 8, groups + (long)t * blocks * 16);
                    yp[(long)t * ldy + i] = TDot.Dot(this, rowStart + i, in token, blocks);
                }
            }
        }
    }


    /// <summary>Quantizes the input into a per-thread buffer, then runs the integer product.</summary>
    protected override void MatMulUnpacked(ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        QuantizedInput q = InputScratch.Input;
        q.Quantize(InputFormat, x, tokens, Cols);
        MatMulQuantized(q, y, ldy, rowStart, rowCount);
    }
}

/// <summary>
/// Common part of the llama.cpp block formats: rows of fixed-size blocks over a <c>byte*</c> (a memory-mapped
/// GGUF tensor or a native buffer kept alive by the owner), products through quantized activations.
/// </summary>
public abstract unsafe class BlockQuantMatrix : QuantizedProductMatrix
{
    private readonly byte* _data;
    private readonly object? _owner;

    protected BlockQuantMatrix(byte* data, int rows, int cols, int blockValues, int blockBytes, string formatName, object? owner)
        : base(rows, cols)
    {
        if (cols % blockValues != 0)
            throw new ArgumentException($"{formatName} needs a multiple of {blockValues} columns, got {cols}");
        _data = data;
        _owner = owner;
        BytesPerRow = (long)cols / blockValues * blockBytes;
    }

    /// <summary>Bytes of one row of blocks.</summary>
    public long BytesPerRow { get; }

    public override long ByteSize => BytesPerRow * Rows;

    internal object? Owner => _owner;

    /// <summary>Pointer to row r's blocks.</summary>
    public byte* RowPointer(int r) => _data + r * BytesPerRow;

    /// <summary>Rows [first, rowCount) of a product's range (from rowStart), each against the T tokens in tiles of up
    /// to four: <paramref name="kernel"/> is compiled once per tile size.</summary>
    private protected void RowTiles<TK>(in TK kernel, int rowStart, int first, int rowCount, int T) where TK : struct, IRowTile
    {
        for (int i = first; i < rowCount; i++)
        {
            byte* w = RowPointer(rowStart + i);
            for (int t = 0; t < T; t += 4)
            {
                switch (Math.Min(4, T - t))
                {
                    case 4: kernel.Run<Tokens4>(w, t, i); break;
                    case 3: kernel.Run<Tokens3>(w, t, i); break;
                    case 2: kernel.Run<Tokens2>(w, t, i); break;
                    default: kernel.Run<Tokens1>(w, t, i); break;
                }
            }
        }
    }

    /// <summary>One token (decode): rows [first, first + 2·half) of a product's range (from rowStart), half = (rowCount −
    /// first) / 2, taken from the two halves in turn, so that a kernel of two rows reads two memory streams, the start of
    /// each requested before the loop. Returns the first row left (at most one).</summary>
    private protected int RowPairs<TP>(in TP kernel, int rowStart, int first, int rowCount) where TP : struct, IRowPair
    {
        int half = (rowCount - first) / 2;
        int a = rowStart + first, b = a + half;
        StreamPrefetch.Start(RowPointer(a), half * BytesPerRow);
        StreamPrefetch.Start(RowPointer(b), half * BytesPerRow);
        for (int k = 0; k < half; k++)
            kernel.Run(RowPointer(a + k), RowPointer(b + k), first + k, first + half + k);
        return first + 2 * half;
    }

    /// <summary>Writes one row of blocks from fp32 values.</summary>
    public delegate void RowQuantizer(ReadOnlySpan<float> values, byte* destination);

    /// <summary>A native buffer holding <paramref name="src"/> quantized row by row.</summary>
    protected static NativeBuffer QuantizeRows(WeightMatrix src, long rowBytes, RowQuantizer quantizeRow, List<IDisposable> owners)
    {
        var buf = new NativeBuffer(rowBytes * src.Rows);
        owners.Add(buf);
        var row = new float[src.Cols];
        for (int r = 0; r < src.Rows; r++)
        {
            src.ReadRow(r, row);
            quantizeRow(row, buf.Pointer + r * rowBytes);
        }
        return buf;
    }
}

/// <summary>A row kernel against a tile of N ≤ 4 tokens (<see cref="BlockQuantMatrix.RowTiles"/>): row blocks
/// <c>w</c>, the tile's first token <c>t</c>, the row's place <c>i</c> in the output.</summary>
internal unsafe interface IRowTile
{
    void Run<TN>(byte* w, int t, int i) where TN : struct, ITokenCount;
}

/// <summary>A kernel of two rows against one token (<see cref="BlockQuantMatrix.RowPairs"/>): row blocks <c>w0</c>,
/// <c>w1</c>, their places <c>i0</c>, <c>i1</c> in the output.</summary>
internal unsafe interface IRowPair
{
    void Run(byte* w0, byte* w1, int i0, int i1);
}

/// <summary>A kernel of rows against a tile of N ≤ 4 tokens' Q8K activations (<see cref="Q8KTiles{TK}"/>): values xq
/// (cols apart per token), block scales xd and per-block sums (<see cref="SumsPerBlock"/> of them: Sum16Array's 8 or
/// GroupSumArray's 16), y[u·ldy] for token u.</summary>
internal unsafe interface IQ8KTileKernel
{
    static abstract int SumsPerBlock { get; }

    static abstract void Run<TN>(byte* w, sbyte* xq, int cols, float* xd, short* sums, int blocks, float* y, int ldy) where TN : struct, ITokenCount;
}

/// <summary>A Q8K product's operands for <see cref="BlockQuantMatrix.RowTiles"/>: tile t of row i through <typeparamref name="TK"/>.</summary>
internal readonly unsafe struct Q8KTiles<TK> : IRowTile where TK : IQ8KTileKernel
{
    private readonly sbyte* _xq;
    private readonly float* _xd, _y;
    private readonly short* _sums;
    private readonly int _cols, _blocks, _ldy;

    public Q8KTiles(sbyte* xq, float* xd, short* sums, int cols, float* y, int ldy)
    {
        _xq = xq;
        _xd = xd;
        _sums = sums;
        _cols = cols;
        _blocks = cols / 256;
        _y = y;
        _ldy = ldy;
    }

    public void Run<TN>(byte* w, int t, int i) where TN : struct, ITokenCount =>
        TK.Run<TN>(w, _xq + (long)t * _cols, _cols, _xd + (long)t * _blocks, _sums + (long)t * _blocks * TK.SumsPerBlock, _blocks, _y + (long)t * _ldy + i, _ldy);
}

/// <summary>A kernel of rows against a tile of N ≤ 4 tokens' Q8 activations (<see cref="Q8Tiles{TK}"/>): int16 values
/// (cols apart per token), scales per 32 values (cols / 32 apart), y[u·ldy] for token u.</summary>
internal unsafe interface IQ8TileKernel
{
    static abstract void Run<TN>(byte* w, short* xq, int cols, float* xs, float* y, int ldy) where TN : struct, ITokenCount;
}

/// <summary>A Q8 product's operands for <see cref="BlockQuantMatrix.RowTiles"/>: tile t of row i through <typeparamref name="TK"/>.</summary>
internal readonly unsafe struct Q8Tiles<TK> : IRowTile where TK : IQ8TileKernel
{
    private readonly short* _xq;
    private readonly float* _xs, _y;
    private readonly int _cols, _ldy;

    public Q8Tiles(short* xq, float* xs, int cols, float* y, int ldy)
    {
        _xq = xq;
        _xs = xs;
        _cols = cols;
        _y = y;
        _ldy = ldy;
    }

    public void Run<TN>(byte* w, int t, int i) where TN : struct, ITokenCount =>
        TK.Run<TN>(w, _xq + (long)t * _cols, _cols, _xs + (long)t * (_cols / 32), _y + (long)t * _ldy + i, _ldy);
}

/// <summary>One token's Q8K activations as the k-quant kernels read them: values, block scales, 32-value sums (int32 and
/// int16) and 16-value sums.</summary>
internal readonly unsafe struct Q8KToken(sbyte* q, float* scales, int* sums, short* sums16, short* groupSums)
{
    public readonly sbyte* Q = q;
    public readonly float* Scales = scales;
    public readonly int* Sums = sums;
    public readonly short* Sums16 = sums16;
    public readonly short* GroupSums = groupSums;
}

/// <summary>Per-thread scratch for kernels that quantize their input themselves.</summary>
internal static class InputScratch
{
    [ThreadStatic] private static QuantizedInput? t_input;

    public static QuantizedInput Input => t_input ??= new QuantizedInput();
}
