// Rows left where they are (a memory-mapped GGUF tensor) whose products run, where a subclass says so, on a copy
// in another layout made the first time one is asked for: only the matrices a run multiplies (the experts actually
// routed to) are repacked, so resident memory grows with use, not with the file. Reads, and GGUF export, use the rows.
namespace SharpSeek.Tensors;

/// <summary>Row-layout weights with a lazily made product layout (Q4KRepackingMatrix, Q6KRepackingMatrix).</summary>
public abstract class RepackingMatrix<TRows, TPacked> : QuantizedProductMatrix
    where TRows : BlockQuantMatrix
    where TPacked : class
{
    private readonly object _gate = new();
    private readonly Func<TRows, TPacked> _pack;
    private TPacked? _packed;

    /// <summary>Rows of at least <paramref name="minRows"/>; <paramref name="pack"/> makes the copy (once).</summary>
    protected RepackingMatrix(TRows rows, int minRows, Func<TRows, TPacked> pack) : base(rows.Rows, rows.Cols)
    {
        if (rows.Rows < minRows)
            throw new ArgumentException($"{GetType().Name} needs at least {minRows} rows, got {rows.Rows}", nameof(rows));
        RowLayout = rows;
        _pack = pack;
    }

    /// <summary>The rows as stored (llama.cpp's block layout).</summary>
    public TRows RowLayout { get; }

    /// <summary>Whether the copy exists (a product that uses it has run).</summary>
    public bool IsRepacked => Volatile.Read(ref _packed) is not null;

    /// <summary>The copy, if made.</summary>
    protected TPacked? PackedIfMade => Volatile.Read(ref _packed);

    public override WeightFormat Format => RowLayout.Format;
    public override ActivationFormat InputFormat => RowLayout.InputFormat;

    public override void ReadRow(int row, Span<float> dst) => RowLayout.ReadRow(row, dst);

    /// <summary>The copy, made by the first caller (the row-parallel chunks of a first product arrive together).</summary>
    protected TPacked Packed()
    {
        TPacked? p = Volatile.Read(ref _packed);
        if (p is not null)
            return p;
        lock (_gate)
        {
            _packed ??= _pack(RowLayout);
            return _packed;
        }
    }
}
