// fp32 GEMMs of the training engine and of prefill over dequantized weight panels (WeightMatrix.MatMul)
// (llm.c matmul_forward / matmul_backward, BLIS-style micro-kernels):
//   NT: C[M,N] (+)= A[M,K] · B[N,K]ᵀ   forward of a linear layer, Y = X Wᵀ
//   NN: C[M,N] (+)= A[M,K] · B[K,N]    input gradient,           dX = dY W
//   TN: C[M,N] (+)= A[K,M]ᵀ · B[K,N]   weight gradient,          dW = dYᵀ X
// B is packed once per product into zero-padded panels of 32 columns (K rows of 32 floats each; a last panel of at
// most 16 columns is packed 16 wide), shared by every worker; A is read in place (row pointers for NT/NN, one
// strided row of A(·, p) for TN). A 6 x 32 register tile of C (6 x 16 on a narrow panel) accumulates FMAs over a
// chunk of at most KC reduction steps and is added to C once per chunk. Every element of C is computed the same way
// (same chunks, same order) whatever the tiling, the edge handling or the number of threads, so results do not depend
// on the thread count. The micro-kernels keep their accumulators in registers: nothing after the loop is a call while
// they are live (edge tiles go through a stack tile), which keeps the JIT from spilling them inside the loop.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Operand layout of a GEMM.</summary>
public enum GemmKind
{
    /// <summary>C = A · Bᵀ with A [M, K], B [N, K].</summary>
    NT,
    /// <summary>C = A · B with A [M, K], B [K, N].</summary>
    NN,
    /// <summary>C = Aᵀ · B with A [K, M], B [K, N].</summary>
    TN,
}

/// <summary>Row-major fp32 matrix products with leading dimensions, serial or split over a backend's workers.</summary>
public static unsafe class Gemm
{
    private const int MR = 6;       // rows of the register tile
    private const int KC = 256;     // reduction steps per chunk
    private const int MaxTileRows = 16; // register tiles (of MR rows) per parallel task at most
    private const int RB = 512;     // rows per cache block (A block of RB x KC in L2)
    private const int PW = 32;      // columns of a packed panel

    /// <summary>Columns of a packed panel (32).</summary>
    public static int NR => PW;

    /// <summary>Panels of a packed B with <paramref name="N"/> columns.</summary>
    public static int Panels(int N) => (N + PW - 1) / PW;

    /// <summary>Floats of a packed B [K, N].</summary>
    public static long PackedLength(int N, int K) => (long)Panels(N) * K * PW;

    /// <summary>C (+)= op(A) · op(B) on the calling thread. Pointers address element [0, 0]; ld* are row strides in floats.</summary>
    public static void Run(GemmKind kind, int M, int N, int K, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        if (M <= 0 || N <= 0)
            return;
        if (K <= 0)
        {
            if (!accumulate)
                Clear(c, M, N, ldc);
            return;
        }
        if (kind == GemmKind.TN)
        {
            RunTN(null, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        float* pb = Scratch.Get(ScratchSlot.PackB, PackedLength(N, K));
        Pack(kind == GemmKind.NT, N, K, b, ldb, pb, 0, Panels(N));
        RunPacked(kind, M, N, K, a, lda, pb, c, ldc, accumulate, 0, M, 0, N);
    }

    /// <summary>As <see cref="Run"/>, with row and column blocks spread over <paramref name="backend"/>'s workers.</summary>
    public static void Run(ComputeBackend backend, GemmKind kind, int M, int N, int K, float* a, int lda, float* b, int ldb,
                           float* c, int ldc, bool accumulate)
    {
        if (kind == GemmKind.TN && M > 0 && N > 0 && K > 0)
        {
            RunTN(backend, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        if (!Parallel(backend, M, N, K))
        {
            Run(kind, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        float* pb = Scratch.Get(ScratchSlot.SharedB, PackedLength(N, K));
        Pack(backend, kind == GemmKind.NT, N, K, b, ldb, pb);
        RunPackedParallel(backend, kind, M, N, K, a, lda, pb, K, c, ldc, accumulate);
    }

    /// <summary><see cref="Pack(bool, int, int, float*, int, float*, int, int)"/> of every panel, panels spread over the workers when large.</summary>
    public static void Pack(ComputeBackend backend, bool transposed, int N, int K, float* b, int ldb, float* dst)
    {
        int panels = Panels(N);
        if (backend.Workers > 1 && !WorkerPool.InJob && (long)N * K >= 1 << 16 && panels > 1)
        {
            Job job = t_job ??= new Job();
            job.SetPack(transposed, N, K, b, ldb, dst);
            backend.For(panels, job.PackBody);
        }
        else
        {
            Pack(transposed, N, K, b, ldb, dst, 0, panels);
        }
    }

    /// <summary>
    /// C (+)= op(A) · B with B packed by <see cref="Pack(ComputeBackend, bool, int, int, float*, int, float*)"/> for
    /// <paramref name="packedK"/> ≥ K rows, row and column blocks spread over the workers.
    /// </summary>
    public static void RunPacked(ComputeBackend backend, GemmKind kind, int M, int N, int K, float* a, int lda, float* pb, int packedK,
                                 float* c, int ldc, bool accumulate)
    {
        if (M <= 0 || N <= 0)
            return;
        if (!Parallel(backend, M, N, K))
            RunPacked(kind, M, N, K, a, lda, pb, packedK, c, ldc, accumulate, 0, M, 0, N);
        else
            RunPackedParallel(backend, kind, M, N, K, a, lda, pb, packedK, c, ldc, accumulate);
    }

    private static bool Parallel(ComputeBackend backend, int M, int N, int K) =>
        backend.Workers > 1 && !WorkerPool.InJob && (M > MR || N > PW) && K > 0 && (long)M * N * K >= 1 << 18;

    /// <summary>
    /// Task shape for <paramref name="workers"/>: tasks take whole rows of C (every column panel, so a TN task packs its
    /// A rows once) in the largest blocks of register tiles (at most 16) that keep the workers at least 90% busy; only
    /// when the rows cannot do that are the columns split too.
    /// </summary>
    internal static (int Rows, int Cols) Partition(int M, int N, int workers)
    {
        int tiles = (M + MR - 1) / MR, panels = Panels(N);
        for (int per = Math.Min(MaxTileRows, tiles); per >= 1; per--)
        {
            int tasks = (tiles + per - 1) / per;
            int rounds = (tasks + workers - 1) / workers;
            if (tiles >= 0.9 * rounds * workers * per)
                return (per * MR, panels * PW);
        }
        // few rows: one tile row per task and the columns split until there are enough tasks
        for (int perCols = panels; perCols >= 1; perCols--)
        {
            int tasks = tiles * ((panels + perCols - 1) / perCols);
            int rounds = (tasks + workers - 1) / workers;
            if (tiles * panels >= 0.9 * rounds * workers * perCols)
                return (MR, perCols * PW);
        }
        return (MR, PW);
    }

    private static void RunPackedParallel(ComputeBackend backend, GemmKind kind, int M, int N, int K, float* a, int lda, float* pb, int packedK,
                                          float* c, int ldc, bool accumulate)
    {
        (int rows, int cols) = Partition(M, N, backend.Workers);
        int rowBlocks = (M + rows - 1) / rows, colBlocks = (N + cols - 1) / cols;
        Job job = t_job ??= new Job();
        job.Set(kind, M, N, K, a, lda, pb, packedK, c, ldc, accumulate, colBlocks, rows, cols);
        backend.For(rowBlocks * colBlocks, job.Body);
    }

    /// <summary>Span overloads of <see cref="Run(ComputeBackend, GemmKind, int, int, int, float*, int, float*, int, float*, int, bool)"/> for dense operands.</summary>
    public static void Run(ComputeBackend? backend, GemmKind kind, int M, int N, int K, ReadOnlySpan<float> a, ReadOnlySpan<float> b,
                           Span<float> c, bool accumulate)
    {
        (long aLen, long bLen) = kind switch
        {
            GemmKind.NT => ((long)M * K, (long)N * K),
            GemmKind.NN => ((long)M * K, (long)K * N),
            _ => ((long)K * M, (long)K * N),
        };
        if (a.Length < aLen || b.Length < bLen || c.Length < (long)M * N)
            throw new ArgumentException($"Gemm {kind} [{M}x{N}x{K}]: operands too small ({a.Length}, {b.Length}, {c.Length})");
        int lda = kind == GemmKind.TN ? M : K, ldb = kind == GemmKind.NT ? K : N;
        fixed (float* pa = a, pb = b, pc = c)
        {
            if (backend is null)
                Run(kind, M, N, K, pa, lda, pb, ldb, pc, N, accumulate);
            else
                Run(backend, kind, M, N, K, pa, lda, pb, ldb, pc, N, accumulate);
        }
    }

    /// <summary>Scalar reference: C[i,j] (+)= Σ_p A(i,p)·B(p,j), accumulated in fp64 (tests).</summary>
    public static void Reference(GemmKind kind, int M, int N, int K, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, bool accumulate)
    {
        for (int i = 0; i < M; i++)
        {
            for (int j = 0; j < N; j++)
            {
                double s = accumulate ? c[i * N + j] : 0;
                for (int p = 0; p < K; p++)
                {
                    float av = kind == GemmKind.TN ? a[p * M + i] : a[i * K + p];
                    float bv = kind == GemmKind.NT ? b[j * K + p] : b[p * N + j];
                    s += (double)av * bv;
                }
                c[i * N + j] = (float)s;
            }
        }
    }

    private sealed class Job
    {
        private GemmKind _kind;
        private bool _transposed;
        private int _M, _N, _K, _lda, _ldb, _packedK, _ldc, _colBlocks, _rows, _cols;
        private float* _a, _b, _pb, _c;
        private bool _acc;
        public readonly Action<int> Body, PackBody;

        public Job()
        {
            Body = RunTask;
            PackBody = PackTask;
        }

        public void Set(GemmKind kind, int M, int N, int K, float* a, int lda, float* pb, int packedK, float* c, int ldc, bool acc, int colBlocks,
                        int rows, int cols)
        {
            (_kind, _M, _N, _K, _lda, _packedK, _ldc, _acc, _colBlocks, _rows, _cols) = (kind, M, N, K, lda, packedK, ldc, acc, colBlocks, rows, cols);
            _a = a;
            _pb = pb;
            _c = c;
        }

        public void SetPack(bool transposed, int N, int K, float* b, int ldb, float* dst)
        {
            (_transposed, _N, _K, _ldb) = (transposed, N, K, ldb);
            _b = b;
            _pb = dst;
        }

        private void PackTask(int panel) => Pack(_transposed, _N, _K, _b, _ldb, _pb, panel, panel + 1);

        private void RunTask(int task)
        {
            int i0 = task / _colBlocks * _rows, j0 = task % _colBlocks * _cols;
            RunPacked(_kind, _M, _N, _K, _a, _lda, _pb, _packedK, _c, _ldc, _acc, i0, Math.Min(_M, i0 + _rows), j0, Math.Min(_N, j0 + _cols));
        }
    }

    [ThreadStatic] private static Job? t_job;

    /// <summary>
    /// Packs panels [q0, q1) of B [K, N] into <paramref name="dst"/> (<see cref="PackedLength"/> floats): panel q at
    /// q·K·32 holds rows p of B(p, 32q .. 32q+31), zero past N; a last panel of at most 16 columns is 16 floats per row.
    /// transposed: B(p, j) = b[j·ldb + p] (NT); else B(p, j) = b[p·ldb + j].
    /// </summary>
    public static void Pack(bool transposed, int N, int K, float* b, int ldb, float* dst, int q0, int q1)
    {
        for (int q = q0; q < q1; q++)
        {
            int j = q * PW, w = Math.Min(PW, N - j), stride = w <= 16 ? 16 : PW;
            float* panel = dst + (long)q * K * PW;
            if (transposed)
                PackTransposed(b + (long)j * ldb, ldb, K, w, stride, panel);
            else
                PackRows(b + j, ldb, K, w, stride, panel);
        }
    }

    // panel[p·stride + jj] = src[p·ld + jj]
    private static void PackRows(float* src, int ld, int K, int w, int stride, float* panel)
    {
        if (w == 32 && Vector512.IsHardwareAccelerated)
        {
            for (int p = 0; p < K; p++)
            {
                Vector512.Store(Vector512.Load(src + (long)p * ld), panel + p * 32);
                Vector512.Store(Vector512.Load(src + (long)p * ld + 16), panel + p * 32 + 16);
            }
            return;
        }
        if (w == 16 && Vector512.IsHardwareAccelerated)
        {
            for (int p = 0; p < K; p++)
                Vector512.Store(Vector512.Load(src + (long)p * ld), panel + p * 16);
            return;
        }
        for (int p = 0; p < K; p++)
        {
            float* s = src + (long)p * ld, d = panel + p * stride;
            int jj = 0;
            for (; jj < w; jj++)
                d[jj] = s[jj];
            for (; jj < stride; jj++)
                d[jj] = 0f;
        }
    }

    // panel[p·stride + jj] = src[jj·ld + p]: 8 x 8 blocks transposed in registers, scalar edges
    private static void PackTransposed(float* src, int ld, int K, int w, int stride, float* panel)
    {
        int w8 = Avx.IsSupported ? w & ~7 : 0, k8 = Avx.IsSupported ? K & ~7 : 0;
        for (int jj = 0; jj < w8; jj += 8)
        {
            float* s = src + (long)jj * ld;
            for (int p = 0; p < k8; p += 8)
                Transpose8x8(s + p, ld, panel + p * stride + jj, stride);
            for (int r = 0; r < 8; r++)
            {
                for (int p = k8; p < K; p++)
                    panel[p * stride + jj + r] = s[(long)r * ld + p];
            }
        }
        for (int jj = w8; jj < w; jj++)
        {
            float* s = src + (long)jj * ld;
            for (int p = 0; p < K; p++)
                panel[p * stride + jj] = s[p];
        }
        if (w < stride)
        {
            for (int p = 0; p < K; p++)
                new Span<float>(panel + p * stride + w, stride - w).Clear();
        }
    }

    // d[k·ldd + r] = s[r·lds + k] for r, k < 8
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* s, int lds, float* d, int ldd)
    {
        Vector256<float> r0 = Avx.LoadVector256(s), r1 = Avx.LoadVector256(s + lds), r2 = Avx.LoadVector256(s + 2 * lds), r3 = Avx.LoadVector256(s + 3 * lds);
        Vector256<float> r4 = Avx.LoadVector256(s + 4 * lds), r5 = Avx.LoadVector256(s + 5 * lds), r6 = Avx.LoadVector256(s + 6 * lds), r7 = Avx.LoadVector256(s + 7 * lds);
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(d + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(d + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(d + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(d + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(d + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(d + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(d + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// C[i0:i1, j0:j1] (+)= op(A) · B for the full reduction, with B packed by <see cref="Pack"/> (j0 a multiple of 32).
    /// A(i, p) = a[i·lda + p] (NT, NN) or a[p·lda + i] (TN).
    /// </summary>
    public static void RunPacked(GemmKind kind, int M, int N, int K, float* a, int lda, float* pb, float* c, int ldc, bool accumulate,
                                 int i0, int i1, int j0, int j1) =>
        RunPacked(kind, M, N, K, a, lda, pb, K, c, ldc, accumulate, i0, i1, j0, j1);

    /// <summary>
    /// As <see cref="RunPacked(GemmKind, int, int, int, float*, int, float*, float*, int, bool, int, int, int, int)"/>, with B
    /// packed for <paramref name="packedK"/> ≥ K rows of which the first K are used.
    /// </summary>
    public static void RunPacked(GemmKind kind, int M, int N, int K, float* a, int lda, float* pb, int packedK, float* c, int ldc, bool accumulate,
                                 int i0, int i1, int j0, int j1)
    {
        if (K <= 0)
        {
            if (!accumulate)
            {
                for (int i = i0; i < i1; i++)
                    new Span<float>(c + (long)i * ldc + j0, j1 - j0).Clear();
            }
            return;
        }
        // A(i, p) = a[i·ars + p·acs]; TN blocks are packed into tiles of MR rows (p-major, MR floats per step)
        nint ars = kind == GemmKind.TN ? 1 : lda, acs = kind == GemmKind.TN ? lda : 1;
        bool packA = kind == GemmKind.TN;
        for (int ib = i0; ib < i1; ib += RB)
        {
            int ie = Math.Min(i1, ib + RB);
            for (int p0 = 0; p0 < K; p0 += KC)
            {
                int kc = Math.Min(KC, K - p0);
                bool add = accumulate || p0 > 0;
                float* pa = null;
                int tileStride = kc * MR + 8;
                if (packA)
                {
                    pa = Scratch.Get(ScratchSlot.PackA, (long)((ie - ib + MR - 1) / MR) * tileStride);
                    PackA(a + ib + (long)p0 * lda, lda, ie - ib, kc, M - ib, pa, tileStride);
                }
                for (int j = j0; j < j1; j += PW)
                {
                    int nr = Math.Min(PW, j1 - j), w = Math.Min(PW, N - j);
                    bool narrow = w <= 16;
                    float* bp = pb + (long)(j / PW) * packedK * PW + p0 * (narrow ? 16 : PW);
                    for (int i = ib; i < ie; i += MR)
                    {
                        int mr = Math.Min(MR, ie - i);
                        float* ap;
                        nint r, s;
                        if (packA)
                        {
                            ap = pa + (long)((i - ib) / MR) * tileStride;
                            r = 1;
                            s = MR;
                        }
                        else
                        {
                            ap = a + i * ars + p0 * acs;
                            r = ars;
                            s = acs;
                        }
                        Micro(ap, r, s, bp, narrow, kc, c + (long)i * ldc + j, ldc, add, mr, nr);
                    }
                }
            }
        }
    }

    // one register tile: C[mr, nr] (+)= A-tile · B panel chunk (narrow: 16-wide panel)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Micro(float* ap, nint r, nint s, float* bp, bool narrow, int kc, float* cp, int ldc, bool add, int mr, int nr)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            if (narrow)
                Kernel16(ap, r, s, bp, kc, cp, ldc, add, mr, nr);
            else
                Kernel32(ap, r, s, bp, kc, cp, ldc, add, mr, nr);
        }
        else if (Vector256.IsHardwareAccelerated && Fma.IsSupported)
        {
            int stride = narrow ? 16 : PW;
            Kernel256(ap, r, s, bp, stride, kc, cp, ldc, add, mr, Math.Min(16, nr));
            if (nr > 16)
                Kernel256(ap, r, s, bp + 16, stride, kc, cp + 16, ldc, add, mr, nr - 16);
        }
        else
        {
            KernelScalar(ap, r, s, bp, narrow ? 16 : PW, kc, cp, ldc, add, mr, nr);
        }
    }

    // ---- TN with a long reduction (weight gradients over the batch's rows) ----
    // The reduction is cut into groups of chunks (4, or more so that there are at most 8 groups; fixed by K alone). Group 0 accumulates into C chunk by chunk
    // as usual; every later group sums its chunks into its own partial [M, N] from zero, and the partials are then added
    // to C in group order: C ← (((C + s0 + … + s3) + g1) + g2) …, the same bits serial or threaded. Tasks are (row
    // block of at most RB rows, group); each packs its A blocks and, panel by panel, the B rows of its chunks, so both
    // operands are read once per row block and the packed B stays in L1.
    private const int GroupChunks = 4, MaxGroups = 8;

    private static int ChunksPerGroup(int K)
    {
        int chunks = (K + KC - 1) / KC;
        return Math.Max(GroupChunks, (chunks + MaxGroups - 1) / MaxGroups);
    }

    private static void RunTN(ComputeBackend? backend, int M, int N, int K, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        int chunks = (K + KC - 1) / KC, per = ChunksPerGroup(K), groups = (chunks + per - 1) / per;
        int rowBlocks = (M + RB - 1) / RB, tasks = rowBlocks * groups;
        float* partial = groups > 1 ? Scratch.Get(ScratchSlot.Partial, (long)(groups - 1) * M * N) : null;
        if (backend is null || backend.Workers <= 1 || WorkerPool.InJob || tasks == 1)
        {
            for (int t = 0; t < tasks; t++)
                TNTask(t, groups, M, N, K, a, lda, b, ldb, c, ldc, accumulate, partial);
        }
        else
        {
            TNJob job = t_tnJob ??= new TNJob();
            job.Set(groups, M, N, K, a, lda, b, ldb, c, ldc, accumulate, partial);
            backend.For(tasks, job.Body);
        }
        if (groups > 1)
        {
            if (backend is null || backend.Workers <= 1 || WorkerPool.InJob)
            {
                for (int i = 0; i < M; i++)
                    AddPartials(i, groups, M, N, c, ldc, partial);
            }
            else
            {
                TNJob job = t_tnJob ??= new TNJob();
                job.Set(groups, M, N, K, a, lda, b, ldb, c, ldc, accumulate, partial);
                backend.For((M + 63) / 64, job.ReduceBody);
            }
        }
    }

    // C[i, :] += partial_1[i, :] + partial_2[i, :] + … (in group order)
    private static void AddPartials(int i, int groups, int M, int N, float* c, int ldc, float* partial)
    {
        float* ci = c + (long)i * ldc;
        for (int g = 1; g < groups; g++)
            System.Numerics.Tensors.TensorPrimitives.Add(new ReadOnlySpan<float>(ci, N), new ReadOnlySpan<float>(partial + ((long)(g - 1) * M + i) * N, N), new Span<float>(ci, N));
    }

    private static void TNTask(int task, int groups, int M, int N, int K, float* a, int lda, float* b, int ldb, float* c, int ldc,
                               bool accumulate, float* partial)
    {
        int g = task % groups, ib = task / groups * RB, ie = Math.Min(M, ib + RB);
        int per = ChunksPerGroup(K), k0 = g * per * KC, k1 = Math.Min(K, k0 + per * KC);
        float* dst = g == 0 ? c : partial + (long)(g - 1) * M * N;
        int ldd = g == 0 ? ldc : N;
        bool acc0 = g == 0 && accumulate;
        int tileStride = KC * MR + 8;
        float* pa = Scratch.Get(ScratchSlot.PackA, (long)((ie - ib + MR - 1) / MR) * tileStride);
        float* pb = Scratch.Get(ScratchSlot.PackB, (long)KC * PW);
        for (int p0 = k0; p0 < k1; p0 += KC)
        {
            int kc = Math.Min(KC, k1 - p0);
            bool add = acc0 || p0 > k0;
            PackA(a + ib + (long)p0 * lda, lda, ie - ib, kc, M - ib, pa, kc * MR + 8);
            for (int j = 0; j < N; j += PW)
            {
                int w = Math.Min(PW, N - j);
                bool narrow = w <= 16;
                PackRows(b + (long)p0 * ldb + j, ldb, kc, w, narrow ? 16 : PW, pb);
                for (int i = ib; i < ie; i += MR)
                {
                    int mr = Math.Min(MR, ie - i);
                    Micro(pa + (long)((i - ib) / MR) * (kc * MR + 8), 1, MR, pb, narrow, kc, dst + (long)i * ldd + j, ldd, add, mr, w);
                }
            }
        }
    }

    private sealed class TNJob
    {
        private int _groups, _M, _N, _K, _lda, _ldb, _ldc;
        private float* _a, _b, _c, _partial;
        private bool _acc;
        public readonly Action<int> Body, ReduceBody;

        public TNJob()
        {
            Body = t => TNTask(t, _groups, _M, _N, _K, _a, _lda, _b, _ldb, _c, _ldc, _acc, _partial);
            ReduceBody = blk =>
            {
                for (int i = blk * 64; i < Math.Min(_M, blk * 64 + 64); i++)
                    AddPartials(i, _groups, _M, _N, _c, _ldc, _partial);
            };
        }

        public void Set(int groups, int M, int N, int K, float* a, int lda, float* b, int ldb, float* c, int ldc, bool acc, float* partial)
        {
            (_groups, _M, _N, _K, _lda, _ldb, _ldc, _acc) = (groups, M, N, K, lda, ldb, ldc, acc);
            _a = a;
            _b = b;
            _c = c;
            _partial = partial;
        }
    }

    [ThreadStatic] private static TNJob? t_tnJob;

    // TN operand: src[p·lda + i] for i < rows, p < kc → dst[(i / MR)·tileStride + p·MR + i % MR]; readable: floats
    // readable from src on each row (full 8-float moves only where they stay inside)
    private static void PackA(float* src, int lda, int rows, int kc, int readable, float* dst, int tileStride)
    {
        int tiles = (rows + MR - 1) / MR;
        for (int p = 0; p < kc; p++)
        {
            float* s = src + (long)p * lda, d = dst + p * MR;
            int t = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; t < tiles && t * MR + 8 <= readable && t * MR + MR <= rows; t++)
                    Vector256.Store(Vector256.Load(s + t * MR), d + (long)t * tileStride);
            }
            for (; t < tiles; t++)
            {
                int n = Math.Min(MR, rows - t * MR);
                for (int r = 0; r < n; r++)
                    d[(long)t * tileStride + r] = s[t * MR + r];
            }
        }
    }

    // Rows past mr read row 0 again (their results are discarded), so edge tiles use the same arithmetic.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel32(float* a, nint ars, nint acs, float* b, int kc, float* c, int ldc, bool add, int mr, int nr)
    {
        // the accumulating loop lives in its own method without a call or stackalloc: in one method with the edge
        // store (a stackalloc and a call), the JIT kept the accumulators in stack slots, storing and reloading all of
        // them on every k step
        if (mr == MR && nr == 32)
        {
            Kernel32Tile(a, ars, acs, b, kc, c, ldc, add, mr, nr);
            return;
        }
        float* tmp = stackalloc float[MR * 32];
        Kernel32Tile(a, ars, acs, b, kc, tmp, 32, false, mr, nr);
        StoreEdge(tmp, 32, c, ldc, add, mr, nr);
    }

    // C[0..6, 0..32) (=, or += when add) of the 6-row tile; A rows past mr repeat row 0
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Kernel32Tile(float* a, nint ars, nint acs, float* b, int kc, float* c, int ldc, bool add, int mr, int nr)
    {
        float* a0 = a, a1 = mr > 1 ? a + ars : a, a2 = mr > 2 ? a + 2 * ars : a;
        float* a3 = mr > 3 ? a + 3 * ars : a, a4 = mr > 4 ? a + 4 * ars : a, a5 = mr > 5 ? a + 5 * ars : a;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* bEnd = b + kc * 32;
        while (b < bEnd)
        {
            Vector512<float> b0 = Vector512.Load(b), b1 = Vector512.Load(b + 16);
            b += 32;
            Vector512<float> t = Vector512.Create(*a0);
            c00 = Vector512.FusedMultiplyAdd(t, b0, c00); c01 = Vector512.FusedMultiplyAdd(t, b1, c01);
            t = Vector512.Create(*a1);
            c10 = Vector512.FusedMultiplyAdd(t, b0, c10); c11 = Vector512.FusedMultiplyAdd(t, b1, c11);
            t = Vector512.Create(*a2);
            c20 = Vector512.FusedMultiplyAdd(t, b0, c20); c21 = Vector512.FusedMultiplyAdd(t, b1, c21);
            t = Vector512.Create(*a3);
            c30 = Vector512.FusedMultiplyAdd(t, b0, c30); c31 = Vector512.FusedMultiplyAdd(t, b1, c31);
            t = Vector512.Create(*a4);
            c40 = Vector512.FusedMultiplyAdd(t, b0, c40); c41 = Vector512.FusedMultiplyAdd(t, b1, c41);
            t = Vector512.Create(*a5);
            c50 = Vector512.FusedMultiplyAdd(t, b0, c50); c51 = Vector512.FusedMultiplyAdd(t, b1, c51);
            a0 += acs; a1 += acs; a2 += acs; a3 += acs; a4 += acs; a5 += acs;
        }
        if (add)
        {
            c00 += Vector512.Load(c); c01 += Vector512.Load(c + 16);
            c10 += Vector512.Load(c + ldc); c11 += Vector512.Load(c + ldc + 16);
            c20 += Vector512.Load(c + 2 * ldc); c21 += Vector512.Load(c + 2 * ldc + 16);
            c30 += Vector512.Load(c + 3 * ldc); c31 += Vector512.Load(c + 3 * ldc + 16);
            c40 += Vector512.Load(c + 4 * ldc); c41 += Vector512.Load(c + 4 * ldc + 16);
            c50 += Vector512.Load(c + 5 * ldc); c51 += Vector512.Load(c + 5 * ldc + 16);
        }
        Vector512.Store(c00, c); Vector512.Store(c01, c + 16);
        Vector512.Store(c10, c + ldc); Vector512.Store(c11, c + ldc + 16);
        Vector512.Store(c20, c + 2 * ldc); Vector512.Store(c21, c + 2 * ldc + 16);
        Vector512.Store(c30, c + 3 * ldc); Vector512.Store(c31, c + 3 * ldc + 16);
        Vector512.Store(c40, c + 4 * ldc); Vector512.Store(c41, c + 4 * ldc + 16);
        Vector512.Store(c50, c + 5 * ldc); Vector512.Store(c51, c + 5 * ldc + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel16(float* a, nint ars, nint acs, float* b, int kc, float* c, int ldc, bool add, int mr, int nr)
    {
        // the accumulating loop lives in its own method without a call or stackalloc: in one method with the edge
        // store (a stackalloc and a call), the JIT kept the accumulators in stack slots, storing and reloading all of
        // them on every k step
        if (mr == MR && nr == 16)
        {
            Kernel16Tile(a, ars, acs, b, kc, c, ldc, add, mr, nr);
            return;
        }
        float* tmp = stackalloc float[MR * 16];
        Kernel16Tile(a, ars, acs, b, kc, tmp, 16, false, mr, nr);
        StoreEdge(tmp, 16, c, ldc, add, mr, nr);
    }

    // C[0..6, 0..16) (=, or += when add) of the 6-row tile; A rows past mr repeat row 0
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Kernel16Tile(float* a, nint ars, nint acs, float* b, int kc, float* c, int ldc, bool add, int mr, int nr)
    {
        float* a0 = a, a1 = mr > 1 ? a + ars : a, a2 = mr > 2 ? a + 2 * ars : a;
        float* a3 = mr > 3 ? a + 3 * ars : a, a4 = mr > 4 ? a + 4 * ars : a, a5 = mr > 5 ? a + 5 * ars : a;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        float* bEnd = b + kc * 16;
        while (b < bEnd)
        {
            Vector512<float> b0 = Vector512.Load(b);
            b += 16;
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(*a0), b0, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(*a1), b0, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(*a2), b0, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(*a3), b0, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(*a4), b0, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(*a5), b0, c5);
            a0 += acs; a1 += acs; a2 += acs; a3 += acs; a4 += acs; a5 += acs;
        }
        if (add)
        {
            c0 += Vector512.Load(c); c1 += Vector512.Load(c + ldc); c2 += Vector512.Load(c + 2 * ldc);
            c3 += Vector512.Load(c + 3 * ldc); c4 += Vector512.Load(c + 4 * ldc); c5 += Vector512.Load(c + 5 * ldc);
        }
        Vector512.Store(c0, c); Vector512.Store(c1, c + ldc); Vector512.Store(c2, c + 2 * ldc);
        Vector512.Store(c3, c + 3 * ldc); Vector512.Store(c4, c + 4 * ldc); Vector512.Store(c5, c + 5 * ldc);
    }

    // 6 x 16 tile (two 8-float vectors per row); B rows are bstride floats apart. A whole tile goes straight to C (as
    // Kernel32's does); an edge tile through a scratch tile and StoreEdge.
    private static void Kernel256(float* a, nint ars, nint acs, float* b, int bstride, int kc, float* c, int ldc, bool add, int mr, int nr)
    {
        if (mr == MR && nr == 16)
        {
            Kernel256Tile(a, ars, acs, b, bstride, kc, c, ldc, add, mr);
            return;
        }
        float* tmp = stackalloc float[MR * 16];
        Kernel256Tile(a, ars, acs, b, bstride, kc, tmp, 16, false, mr); // its accumulators stay in registers without the call here
        StoreEdge(tmp, 16, c, ldc, add, mr, nr);
    }

    // C[0..6, 0..16) (=, or += when add) of the 6-row tile; A rows past mr repeat row 0
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Kernel256Tile(float* a, nint ars, nint acs, float* b, int bstride, int kc, float* c, int ldc, bool add, int mr)
    {
        float* a0 = a, a1 = mr > 1 ? a + ars : a, a2 = mr > 2 ? a + 2 * ars : a;
        float* a3 = mr > 3 ? a + 3 * ars : a, a4 = mr > 4 ? a + 4 * ars : a, a5 = mr > 5 ? a + 5 * ars : a;
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 8);
            b += bstride;
            Vector256<float> t = Vector256.Create(*a0);
            c00 = Vector256.FusedMultiplyAdd(t, b0, c00); c01 = Vector256.FusedMultiplyAdd(t, b1, c01);
            t = Vector256.Create(*a1);
            c10 = Vector256.FusedMultiplyAdd(t, b0, c10); c11 = Vector256.FusedMultiplyAdd(t, b1, c11);
            t = Vector256.Create(*a2);
            c20 = Vector256.FusedMultiplyAdd(t, b0, c20); c21 = Vector256.FusedMultiplyAdd(t, b1, c21);
            t = Vector256.Create(*a3);
            c30 = Vector256.FusedMultiplyAdd(t, b0, c30); c31 = Vector256.FusedMultiplyAdd(t, b1, c31);
            t = Vector256.Create(*a4);
            c40 = Vector256.FusedMultiplyAdd(t, b0, c40); c41 = Vector256.FusedMultiplyAdd(t, b1, c41);
            t = Vector256.Create(*a5);
            c50 = Vector256.FusedMultiplyAdd(t, b0, c50); c51 = Vector256.FusedMultiplyAdd(t, b1, c51);
            a0 += acs; a1 += acs; a2 += acs; a3 += acs; a4 += acs; a5 += acs;
        }
        if (add)
        {
            c00 += Vector256.Load(c); c01 += Vector256.Load(c + 8);
            c10 += Vector256.Load(c + ldc); c11 += Vector256.Load(c + ldc + 8);
            c20 += Vector256.Load(c + 2 * ldc); c21 += Vector256.Load(c + 2 * ldc + 8);
            c30 += Vector256.Load(c + 3 * ldc); c31 += Vector256.Load(c + 3 * ldc + 8);
            c40 += Vector256.Load(c + 4 * ldc); c41 += Vector256.Load(c + 4 * ldc + 8);
            c50 += Vector256.Load(c + 5 * ldc); c51 += Vector256.Load(c + 5 * ldc + 8);
        }
        Vector256.Store(c00, c); Vector256.Store(c01, c + 8);
        Vector256.Store(c10, c + ldc); Vector256.Store(c11, c + ldc + 8);
        Vector256.Store(c20, c + 2 * ldc); Vector256.Store(c21, c + 2 * ldc + 8);
        Vector256.Store(c30, c + 3 * ldc); Vector256.Store(c31, c + 3 * ldc + 8);
        Vector256.Store(c40, c + 4 * ldc); Vector256.Store(c41, c + 4 * ldc + 8);
        Vector256.Store(c50, c + 5 * ldc); Vector256.Store(c51, c + 5 * ldc + 8);
    }

    private static void KernelScalar(float* a, nint ars, nint acs, float* b, int bstride, int kc, float* c, int ldc, bool add, int mr, int nr)
    {
        for (int r = 0; r < mr; r++)
        {
            for (int j = 0; j < nr; j++)
            {
                float s = 0f;
                for (int p = 0; p < kc; p++)
                    s = MathF.FusedMultiplyAdd(a[r * ars + p * acs], b[p * bstride + j], s);
                float* cp = c + (long)r * ldc + j;
                *cp = add ? *cp + s : s;
            }
        }
    }

    // c[r, j] (+)= tile[r·ldt + j] for r < mr, j < nr
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StoreEdge(float* tile, int ldt, float* c, int ldc, bool add, int mr, int nr)
    {
        for (int r = 0; r < mr; r++)
        {
            float* t = tile + r * ldt, cr = c + (long)r * ldc;
            if (add)
            {
                for (int j = 0; j < nr; j++)
                    cr[j] += t[j];
            }
            else
            {
                for (int j = 0; j < nr; j++)
                    cr[j] = t[j];
            }
        }
    }

    private static void Clear(float* c, int M, int N, int ldc)
    {
        for (int i = 0; i < M; i++)
            new Span<float>(c + (long)i * ldc, N).Clear();
    }
}
