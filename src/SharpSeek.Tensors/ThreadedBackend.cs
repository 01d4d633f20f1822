// The multithreaded CPU backend: matrix products split by rows across a persistent WorkerPool, with the input
// quantized once per product for integer formats. Jobs are reusable objects holding raw pointers to the
// caller's spans for the duration of the (synchronous) call, so dispatch allocates nothing.
namespace SharpSeek.Tensors;

/// <summary>A CPU backend that runs matrix products and parallel loops on several threads.</summary>
public sealed unsafe class ThreadedBackend : ComputeBackend, IDisposable
{
    private readonly WorkerPool _pool;
    private readonly MatMulJob _matmul = new();
    private readonly ForJob _for = new();
    private readonly QuantizedInput _input = new();

    public ThreadedBackend(int threads)
    {
        _pool = new WorkerPool(threads);
    }

    /// <summary>A backend with one thread per core.</summary>
    public static ThreadedBackend ForAllCores() => new(Environment.ProcessorCount);

    public override int Workers => _pool.Threads;

    public override void MatMul(WeightMatrix w, ReadOnlySpan<float> x, int tokens, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        if (tokens <= 0 || rowCount <= 0)
            return;
        int threads = _pool.Threads;
        // ~4 chunks per thread balances uneven cores; rows per chunk a multiple of 16 keeps stores apart. A one-token
        // product of a quantized matrix (decode) takes 2 a thread: each chunk starts new memory streams (~0.5 us each on
        // a 512 x 1024 Q4_K matrix), and a small model's decode runs ~100 products a token (0.45B Q4_K_M: +3-12% tok/s,
        // 3 of 3 rounds). bf16 decode keeps 4 (the 1B bf16 model: 55 vs 57 tok/s with 2, four rounds each)
        long work = (long)rowCount * w.Cols * tokens;
        bool quantized = w.InputFormatFor(tokens) != ActivationFormat.F32;
        int perThread = tokens == 1 && quantized ? 2 : 4;
        int chunks = work < 32768 || WorkerPool.InJob ? 1 : Math.Min(threads * perThread, Math.Max(1, rowCount / 16));
        if (chunks == 1)
        {
            base.MatMul(w, x, tokens, y, ldy, rowStart, rowCount);
            return;
        }
        int rowsPer = (rowCount + chunks - 1) / chunks;
        rowsPer = (rowsPer + 15) & ~15;
        chunks = (rowCount + rowsPer - 1) / rowsPer;
        QuantizedInput? q = null;
        if (quantized)
        {
            _input.Quantize(w.InputFormat, x, tokens, w.Cols);
            q = _input;
        }
        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            _matmul.Set(w, xp, x.Length, q, tokens, yp, y.Length, ldy, rowStart, rowCount, rowsPer);
            _pool.Run(chunks, _matmul);
            _matmul.Clear();
        }
    }

    public override void For(int count, Action<int> body)
    {
        if (WorkerPool.InJob) // inside a job (a lane of batched generation): inline, without touching the shared job
        {
            base.For(count, body);
            return;
        }
        _for.Body = body;
        _pool.Run(count, _for);
        _for.Body = null;
    }

    public void Dispose() => _pool.Dispose();

    private sealed class MatMulJob : IChunkWork
    {
        private WeightMatrix? _w;
        private float* _x, _y;
        private int _xLen, _yLen, _tokens, _ldy, _rowStart, _rowCount, _rowsPer;
        private QuantizedInput? _q;

        public void Set(WeightMatrix w, float* x, int xLen, QuantizedInput? q, int tokens, float* y, int yLen, int ldy, int rowStart, int rowCount, int rowsPer)
        {
            _w = w;
            _x = x;
            _xLen = xLen;
            _q = q;
            _tokens = tokens;
            _y = y;
            _yLen = yLen;
            _ldy = ldy;
            _rowStart = rowStart;
            _rowCount = rowCount;
            _rowsPer = rowsPer;
        }

        public void Clear()
        {
            _w = null;
            _q = null;
        }

        public void Execute(int chunk)
        {
            int r0 = chunk * _rowsPer, n = Math.Min(_rowsPer, _rowCount - r0);
            if (n <= 0)
                return;
            var y = new Span<float>(_y + r0, _yLen - r0);
            if (_q is not null)
                _w!.MatMulQuantized(_q, y, _ldy, _rowStart + r0, n);
            else if (_tokens == 1)
                _w!.MatVec(new ReadOnlySpan<float>(_x, _xLen), y, _rowStart + r0, n);
            else
                _w!.MatMul(new ReadOnlySpan<float>(_x, _xLen), _tokens, y, _ldy, _rowStart + r0, n);
        }
    }

    private sealed class ForJob : IChunkWork
    {
        public Action<int>? Body;

        public void Execute(int chunk) => Body!(chunk);
    }
}
