// fp32 GEMMs of the training engine (llm.c matmul_forward / matmul_backward, BLIS-style micro-kernels):
//   NT: C[M,N] (+)= A[M,K] · B[N,K]ᵀ   forward of a linear layer, Y = X Wᵀ
//   NN: C[M,N] (+)= A[M,K] · B[K,N]    input gradient,           dX = dY W
//   TN: C[M,N] (+)= A[K,M]ᵀ · B[K,N]   weight gradient,          dW = dYᵀ X
// B is packed into zero-padded panels of NR columns per chunk of KC reduction steps; a 6 x NR register tile of
// C is accumulated with FMAs and added to C once per chunk. Every element of C is computed the same way (same
// chunks, same order) whatever the tiling, the edge handling or the number of threads, so results do not
// depend on the thread count.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SharpSeek.Tensors;

namespace SharpSeek.Training.Kernels;

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
    private const int KC = 256;     // reduction steps per packed chunk
    private const int MB = 96;      // rows per parallel task (16 register tiles)
    private const int NBPanels = 4; // panels per parallel task

    /// <summary>Columns of a packed panel: 32 with AVX-512, else 16.</summary>
    public static int NR { get; } = Vector512.IsHardwareAccelerated ? 32 : 16;

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
        Tile(kind, a, lda, b, ldb, c, ldc, K, accumulate, 0, M, 0, N);
    }

    /// <summary>As <see cref="Run"/>, with row and column blocks spread over <paramref name="backend"/>'s workers.</summary>
    public static void Run(ComputeBackend backend, GemmKind kind, int M, int N, int K, float* a, int lda, float* b, int ldb,
                           float* c, int ldc, bool accumulate)
    {
        int nb = NR * NBPanels;
        int rowBlocks = (M + MB - 1) / MB, colBlocks = (N + nb - 1) / nb;
        if (backend.Workers <= 1 || rowBlocks * colBlocks <= 1 || K <= 0 || (long)M * N * K < 1 << 18)
        {
            Run(kind, M, N, K, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        Job job = t_job ??= new Job();
        job.Set(kind, M, N, K, a, lda, b, ldb, c, ldc, accumulate, colBlocks);
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
        private int _M, _N, _K, _lda, _ldb, _ldc, _colBlocks;
        private float* _a, _b, _c;
        private bool _acc;
        public readonly Action<int> Body;

        public Job() => Body = RunTask;

        public void Set(GemmKind kind, int M, int N, int K, float* a, int lda, float* b, int ldb, float* c, int ldc, bool acc, int colBlocks)
        {
            (_kind, _M, _N, _K, _lda, _ldb, _ldc, _acc, _colBlocks) = (kind, M, N, K, lda, ldb, ldc, acc, colBlocks);
            _a = a;
            _b = b;
            _c = c;
        }

        private void RunTask(int task)
        {
            int nb = NR * NBPanels;
            int i0 = task / _colBlocks * MB, j0 = task % _colBlocks * nb;
            Tile(_kind, _a, _lda, _b, _ldb, _c, _ldc, _K, _acc, i0, Math.Min(_M, i0 + MB), j0, Math.Min(_N, j0 + nb));
        }
    }

    [ThreadStatic] private static Job? t_job;
    [ThreadStatic] private static float[]? t_pack;

    /// <summary>C[i0:i1, j0:j1] for the full reduction, panel by panel, chunk by chunk.</summary>
    private static void Tile(GemmKind kind, float* a, int lda, float* b, int ldb, float* c, int ldc, int K, bool accumulate,
                             int i0, int i1, int j0, int j1)
    {
        int nrFull = NR;
        float[] packArr = t_pack ??= GC.AllocateArray<float>(KC * 32, pinned: true);
        fixed (float* pack = packArr)
        {
            // A(i, p) = a[i·ars + p·acs]
            nint ars = kind == GemmKind.TN ? 1 : lda, acs = kind == GemmKind.TN ? lda : 1;
            for (int j = j0; j < j1; j += nrFull)
            {
                int nr = Math.Min(nrFull, j1 - j);
                for (int p0 = 0; p0 < K; p0 += KC)
                {
                    int kc = Math.Min(KC, K - p0);
                    PackB(kind, b, ldb, p0, kc, j, nr, pack);
                    bool add = accumulate || p0 > 0;
                    for (int i = i0; i < i1; i += MR)
                    {
                        int mr = Math.Min(MR, i1 - i);
                        float* ap = a + i * ars + p0 * acs;
                        float* cp = c + (long)i * ldc + j;
                        if (Vector512.IsHardwareAccelerated)
                            Kernel512(ap, ars, acs, pack, kc, cp, ldc, add, mr, nr);
                        else if (Vector256.IsHardwareAccelerated)
                            Kernel256(ap, ars, acs, pack, kc, cp, ldc, add, mr, nr);
                        else
                            KernelScalar(ap, ars, acs, pack, kc, cp, ldc, add, mr, nr);
                    }
                }
            }
        }
    }

    /// <summary>pack[p·NR + jj] = B(p0 + p, j + jj) for jj &lt; nr, zero for nr ≤ jj &lt; NR.</summary>
    private static void PackB(GemmKind kind, float* b, int ldb, int p0, int kc, int j, int nr, float* pack)
    {
        int NRl = NR;
        if (kind == GemmKind.NT)
        {
            // B(p, j) = b[j·ldb + p]: walk each source row (contiguous in p) and scatter with stride NR
            if (nr < NRl)
                new Span<float>(pack, kc * NRl).Clear();
            for (int jj = 0; jj < nr; jj++)
            {
                float* src = b + (long)(j + jj) * ldb + p0;
                float* dst = pack + jj;
                for (int p = 0; p < kc; p++)
                    dst[p * NRl] = src[p];
            }
        }
        else
        {
            // B(p, j) = b[p·ldb + j]: copy row segments
            for (int p = 0; p < kc; p++)
            {
                float* src = b + (long)(p0 + p) * ldb + j;
                float* dst = pack + p * NRl;
                if (nr == NRl)
                {
                    if (NRl == 32)
                    {
                        Vector512.Store(Vector512.Load(src), dst);
                        Vector512.Store(Vector512.Load(src + 16), dst + 16);
                    }
                    else
                    {
                        new ReadOnlySpan<float>(src, NRl).CopyTo(new Span<float>(dst, NRl));
                    }
                }
                else
                {
                    int jj = 0;
                    for (; jj < nr; jj++)
                        dst[jj] = src[jj];
                    for (; jj < NRl; jj++)
                        dst[jj] = 0f;
                }
            }
        }
    }

    // Rows past mr read row 0 again (their results are discarded), so edge tiles use the same arithmetic.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512(float* a, nint ars, nint acs, float* b, int kc, float* c, int ldc, bool add, int mr, int nr)
    {
        float* a0 = a, a1 = mr > 1 ? a + ars : a, a2 = mr > 2 ? a + 2 * ars : a;
        float* a3 = mr > 3 ? a + 3 * ars : a, a4 = mr > 4 ? a + 4 * ars : a, a5 = mr > 5 ? a + 5 * ars : a;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
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
        Store512(c, add, nr, c00, c01);
        if (mr > 1) Store512(c + ldc, add, nr, c10, c11);
        if (mr > 2) Store512(c + 2 * ldc, add, nr, c20, c21);
        if (mr > 3) Store512(c + 3 * ldc, add, nr, c30, c31);
        if (mr > 4) Store512(c + 4 * ldc, add, nr, c40, c41);
        if (mr > 5) Store512(c + 5 * ldc, add, nr, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, bool add, int nr, Vector512<float> v0, Vector512<float> v1)
    {
        if (nr == 32)
        {
            if (add)
            {
                v0 = Vector512.Load(c) + v0;
                v1 = Vector512.Load(c + 16) + v1;
            }
            Vector512.Store(v0, c);
            Vector512.Store(v1, c + 16);
            return;
        }
        float* tmp = stackalloc float[32];
        Vector512.Store(v0, tmp);
        Vector512.Store(v1, tmp + 16);
        for (int j = 0; j < nr; j++)
            c[j] = add ? c[j] + tmp[j] : tmp[j];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(float* a, nint ars, nint acs, float* b, int kc, float* c, int ldc, bool add, int mr, int nr)
    {
        float* a0 = a, a1 = mr > 1 ? a + ars : a, a2 = mr > 2 ? a + 2 * ars : a;
        float* a3 = mr > 3 ? a + 3 * ars : a, a4 = mr > 4 ? a + 4 * ars : a, a5 = mr > 5 ? a + 5 * ars : a;
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b), b1 = Vector256.Load(b + 8);
            b += 16;
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
        Store256(c, add, nr, c00, c01);
        if (mr > 1) Store256(c + ldc, add, nr, c10, c11);
        if (mr > 2) Store256(c + 2 * ldc, add, nr, c20, c21);
        if (mr > 3) Store256(c + 3 * ldc, add, nr, c30, c31);
        if (mr > 4) Store256(c + 4 * ldc, add, nr, c40, c41);
        if (mr > 5) Store256(c + 5 * ldc, add, nr, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, bool add, int nr, Vector256<float> v0, Vector256<float> v1)
    {
        float* tmp = stackalloc float[16];
        Vector256.Store(v0, tmp);
        Vector256.Store(v1, tmp + 8);
        for (int j = 0; j < nr; j++)
            c[j] = add ? c[j] + tmp[j] : tmp[j];
    }

    private static void KernelScalar(float* a, nint ars, nint acs, float* b, int kc, float* c, int ldc, bool add, int mr, int nr)
    {
        int NRl = NR;
        for (int r = 0; r < mr; r++)
        {
            for (int j = 0; j < nr; j++)
            {
                float s = 0f;
                for (int p = 0; p < kc; p++)
                    s = MathF.FusedMultiplyAdd(a[r * ars + p * acs], b[p * NRl + j], s);
                float* cp = c + (long)r * ldc + j;
                *cp = add ? *cp + s : s;
            }
        }
    }

    private static void Clear(float* c, int M, int N, int ldc)
    {
        for (int i = 0; i < M; i++)
            new Span<float>(c + (long)i * ldc, N).Clear();
    }
}
