// Hand-written kernels of MLA's attention over tiles of 8 positions (Mla.Absorbed.cs, Mla.Naive.cs): register-blocked
// scores, the online-softmax step (flash-attention / flash-decoding), and the weighted row sums into the accumulators,
// in fp32 and for bf16 rows read in place.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Score, online-softmax and accumulation kernels of tiled attention.</summary>
public static partial class AttentionKernels
{
    /// <summary>Positions per tile: scores of a tile for every head, then one online-softmax step and one pass over each
    /// head's accumulator per tile instead of per position.</summary>
    public const int Tile = 8;

    /// <summary>
    /// sp[h·8] = qp[h·w ..]·a·scale and sp[h·8 + 1] = qp[h·w ..]·b·scale (the latter only where <paramref name="two"/>) for
    /// 8 permuted query rows and two bf16 rows a, b of length w (a multiple of 32): 16 accumulators, each row loaded once
    /// for all 8 heads.
    /// </summary>
    public static unsafe void ScorePairHeads8(float* qp, int w, ushort* a, ushort* b, float scale, float* sp, bool two)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        float* q1 = qp + w, q2 = q1 + w, q3 = q2 + w, q4 = q3 + w, q5 = q4 + w, q6 = q5 + w, q7 = q6 + w;
        for (int k = 0; k < w; k += 32)
        {
            Vector512<uint> xa = Vector512.Load((uint*)(a + k)), xb = Vector512.Load((uint*)(b + k));
            Vector512<float> ae = Bf16.Even(xa), ao = Bf16.Odd(xa), be = Bf16.Even(xb), bo = Bf16.Odd(xb);
            Vector512<float> qe = Vector512.Load(qp + k), qo = Vector512.Load(qp + k + 16);
            a0 = Vector512.FusedMultiplyAdd(qo, ao, Vector512.FusedMultiplyAdd(qe, ae, a0));
            b0 = Vector512.FusedMultiplyAdd(qo, bo, Vector512.FusedMultiplyAdd(qe, be, b0));
            qe = Vector512.Load(q1 + k); qo = Vector512.Load(q1 + k + 16);
            a1 = Vector512.FusedMultiplyAdd(qo, ao, Vector512.FusedMultiplyAdd(qe, ae, a1));
            b1 = Vector512.FusedMultiplyAdd(qo, bo, Vector512.FusedMultiplyAdd(qe, be, b1));
            qe = Vector512.Load(q2 + k); qo = Vector512.Load(q2 + k + 16);
            a2 = Vector512.FusedMultiplyAdd(qo, ao, Vector512.FusedMultiplyAdd(qe, ae, a2));
            b2 = Vector512.FusedMultiplyAdd(qo, bo, Vector512.FusedMultiplyAdd(qe, be, b2));
            qe = Vector512.Load(q3 + k); qo = Vector512.Load(q3 + k + 16);
            a3 = Vector512.FusedMultiplyAdd(qo, ao, Vector512.FusedMultiplyAdd(qe, ae, a3));
            b3 = Vector512.FusedMultiplyAdd(qo, bo, Vector512.FusedMultiplyAdd(qe, be, b3));
            qe = Vector512.Load(q4 + k); qo = Vector512.Load(q4 + k + 16);
            a4 = Vector512.FusedMultiplyAdd(qo, ao, Vector512.FusedMultiplyAdd(qe, ae, a4));
            b4 = Vector512.FusedMultiplyAdd(qo, bo, Vector512.FusedMultiplyAdd(qe, be, b4));
            qe = Vector512.Load(q5 + k); qo = Vector512.Load(q5 + k + 16);
            a5 = Vector512.FusedMultiplyAdd(qo, ao, Vector512.FusedMultiplyAdd(qe, ae, a5));
            b5 = Vector512.FusedMultiplyAdd(qo, bo, Vector512.FusedMultiplyAdd(qe, be, b5));
            qe = Vector512.Load(q6 + k); qo = Vector512.Load(q6 + k + 16);
            a6 = Vector512.FusedMultiplyAdd(qo, ao, Vector512.FusedMultiplyAdd(qe, ae, a6));
            b6 = Vector512.FusedMultiplyAdd(qo, bo, Vector512.FusedMultiplyAdd(qe, be, b6));
            qe = Vector512.Load(q7 + k); qo = Vector512.Load(q7 + k + 16);
            a7 = Vector512.FusedMultiplyAdd(qo, ao, Vector512.FusedMultiplyAdd(qe, ae, a7));
            b7 = Vector512.FusedMultiplyAdd(qo, bo, Vector512.FusedMultiplyAdd(qe, be, b7));
        }
        // Reduce4x4 sees heads h and h + 4 as the four "rows" of a 4 x 4 block: element 4(h % 4) + 2(h / 4) + j is head h,
        // row j, so each double lane holds one head's (a, b) pair: lanes in head order 0, 4, 1, 5, 2, 6, 3, 7
        Vector512<double> r = (Reduce4x4(Reduce2(a0, b0), Reduce2(a4, b4), Reduce2(a1, b1), Reduce2(a5, b5),
                                         Reduce2(a2, b2), Reduce2(a6, b6), Reduce2(a3, b3), Reduce2(a7, b7)) * scale).AsDouble();
        if (two)
        {
            *(double*)sp = r.GetElement(0); *(double*)(sp + 4 * Tile) = r.GetElement(1);
            *(double*)(sp + Tile) = r.GetElement(2); *(double*)(sp + 5 * Tile) = r.GetElement(3);
            *(double*)(sp + 2 * Tile) = r.GetElement(4); *(double*)(sp + 6 * Tile) = r.GetElement(5);
            *(double*)(sp + 3 * Tile) = r.GetElement(6); *(double*)(sp + 7 * Tile) = r.GetElement(7);
        }
        else
        {
            Vector512<float> f = r.AsSingle();
            sp[0] = f.GetElement(0); sp[4 * Tile] = f.GetElement(2); sp[Tile] = f.GetElement(4); sp[5 * Tile] = f.GetElement(6);
            sp[2 * Tile] = f.GetElement(8); sp[6 * Tile] = f.GetElement(10); sp[3 * Tile] = f.GetElement(12); sp[7 * Tile] = f.GetElement(14);
        }
    }

    /// <summary>
    /// o[h·R + k] += Σ_j e[h·8 + j]·rows[j·stride + k] for 8 heads, nb ≤ 8 bf16 rows and k &lt; R (a multiple of 32), with
    /// each accumulator in the permuted order of <see cref="Bf16.EvenOdd"/>: 32 columns of all 8 accumulators stay in registers
    /// across the tile's rows, and each 64-byte row load serves every head.
    /// </summary>
    public static unsafe void AccumulateBf16Heads8(float* o, int R, ushort* rows, int stride, float* e, int nb) =>
        AccumulateHeads8<Bf16Pairs>(o, R, (byte*)rows, stride * sizeof(ushort), e, nb);

    /// <summary>sp[h·8 + j] = q[h]·rows[j]·scale for nh query rows and nb ≤ 8 latent rows, both of length w (the scores of one
    /// tile of absorbed attention).</summary>
    public static unsafe void Scores(float* q, int nh, float* rows, int nb, int w, float scale, float* sp) =>
        Scores(q, w, nh, rows, w, nb, w, scale, sp, false);

    /// <summary>
    /// sp[h·8 + j] (+)= q[h·qStride ..+w]·rows[j·rowStride ..+w]·scale for h &lt; nh, j &lt; nb ≤ 8: 4 x 4 register blocks
    /// (16 accumulators, 8 loads per 16 FMAs) where w is a multiple of 16, dot products elsewhere.
    /// </summary>
    public static unsafe void Scores(float* q, int qStride, int nh, float* rows, int rowStride, int nb, int w, float scale, float* sp, bool accumulate)
    {
        int h = 0;
        if (Vector512.IsHardwareAccelerated && w % 16 == 0)
        {
            // one dot product per call spent more on the call and the horizontal sum than on the 36 FMAs of a 576-long row
            for (; h + 4 <= nh; h += 4)
            {
                int j = 0;
                for (; j + 4 <= nb; j += 4)
                    ScoreBlock4x4(q + (long)h * qStride, qStride, rows + (long)j * rowStride, rowStride, w, scale, sp + h * Tile + j, accumulate);
                DotScores(q, qStride, h, h + 4, rows, rowStride, j, nb, w, scale, sp, accumulate);
            }
        }
        else if (Vector256.IsHardwareAccelerated && Fma.IsSupported && w % 8 == 0)
        {
            // without AVX-512: 4 heads x 2 rows per block (8 accumulators, 6 loads per 8 FMAs; a dot product per pair
            // loads both operands for every FMA)
            for (; h + 4 <= nh; h += 4)
            {
                int j = 0;
                for (; j + 2 <= nb; j += 2)
                    ScoreBlock4x2(q + (long)h * qStride, qStride, rows + (long)j * rowStride, rowStride, w, scale, sp + h * Tile + j, accumulate);
                DotScores(q, qStride, h, h + 4, rows, rowStride, j, nb, w, scale, sp, accumulate);
            }
        }
        DotScores(q, qStride, h, nh, rows, rowStride, 0, nb, w, scale, sp, accumulate);
    }

    /// <summary>The scores of heads [h0, h1) at positions [j0, nb) outside the register blocks, a dot product each.</summary>
    private static unsafe void DotScores(float* q, int qStride, int h0, int h1, float* rows, int rowStride, int j0, int nb, int w, float scale, float* sp, bool accumulate)
    {
        for (int h = h0; h < h1; h++)
        {
            for (int j = j0; j < nb; j++)
                Put(sp + h * Tile + j, TensorPrimitives.Dot(new ReadOnlySpan<float>(q + (long)h * qStride, w), new ReadOnlySpan<float>(rows + (long)j * rowStride, w)) * scale, accumulate);
        }
    }

    // sp[h·8 + j] (+)= q_h · row_j · scale for 4 heads and 2 rows, 256 bits wide (w a multiple of 8)
    private static unsafe void ScoreBlock4x2(float* q, int qStride, float* rows, int rowStride, int w, float scale, float* sp, bool accumulate)
    {
        Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default;
        Vector256<float> a20 = default, a21 = default, a30 = default, a31 = default;
        float* q1 = q + qStride, q2 = q + 2 * qStride, q3 = q + 3 * qStride, r1 = rows + rowStride;
        for (int k = 0; k < w; k += 8)
        {
            Vector256<float> c0 = Vector256.Load(rows + k), c1 = Vector256.Load(r1 + k);
            Vector256<float> x = Vector256.Load(q + k);
            a00 = Vector256.FusedMultiplyAdd(x, c0, a00); a01 = Vector256.FusedMultiplyAdd(x, c1, a01);
            x = Vector256.Load(q1 + k);
            a10 = Vector256.FusedMultiplyAdd(x, c0, a10); a11 = Vector256.FusedMultiplyAdd(x, c1, a11);
            x = Vector256.Load(q2 + k);
            a20 = Vector256.FusedMultiplyAdd(x, c0, a20); a21 = Vector256.FusedMultiplyAdd(x, c1, a21);
            x = Vector256.Load(q3 + k);
            a30 = Vector256.FusedMultiplyAdd(x, c0, a30); a31 = Vector256.FusedMultiplyAdd(x, c1, a31);
        }
        // the 8 sums by one horizontal-add network: [s00, s01, s10, s11] and [s20, s21, s30, s31]
        Vector128<float> h01 = HorizontalSums.Sum4(a00, a01, a10, a11) * scale, h23 = HorizontalSums.Sum4(a20, a21, a30, a31) * scale;
        PutPair(sp, h01.AsDouble().ToScalar(), accumulate);
        PutPair(sp + Tile, h01.AsDouble().GetElement(1), accumulate);
        PutPair(sp + 2 * Tile, h23.AsDouble().ToScalar(), accumulate);
        PutPair(sp + 3 * Tile, h23.AsDouble().GetElement(1), accumulate);
    }

    // sp[0], sp[1] (+)= the two floats of pair
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PutPair(float* sp, double pair, bool accumulate)
    {
        Vector128<float> v = Vector128.CreateScalarUnsafe(pair).AsSingle();
        if (accumulate)
            v += Vector128.CreateScalarUnsafe(*(double*)sp).AsSingle();
        *(double*)sp = v.AsDouble().ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Put(float* p, float v, bool accumulate) => *p = accumulate ? *p + v : v;

    private static unsafe void ScoreBlock4x4(float* q, int qStride, float* rows, int rowStride, int w, float scale, float* sp, bool accumulate)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        float* q1 = q + qStride, q2 = q + 2 * qStride, q3 = q + 3 * qStride, r1 = rows + rowStride, r2 = rows + 2 * rowStride, r3 = rows + 3 * rowStride;
        for (int k = 0; k < w; k += 16)
        {
            Vector512<float> x0 = Vector512.Load(q + k), x1 = Vector512.Load(q1 + k), x2 = Vector512.Load(q2 + k), x3 = Vector512.Load(q3 + k);
            Vector512<float> c = Vector512.Load(rows + k);
            a00 = Vector512.FusedMultiplyAdd(x0, c, a00); a10 = Vector512.FusedMultiplyAdd(x1, c, a10);
            a20 = Vector512.FusedMultiplyAdd(x2, c, a20); a30 = Vector512.FusedMultiplyAdd(x3, c, a30);
            c = Vector512.Load(r1 + k);
            a01 = Vector512.FusedMultiplyAdd(x0, c, a01); a11 = Vector512.FusedMultiplyAdd(x1, c, a11);
            a21 = Vector512.FusedMultiplyAdd(x2, c, a21); a31 = Vector512.FusedMultiplyAdd(x3, c, a31);
            c = Vector512.Load(r2 + k);
            a02 = Vector512.FusedMultiplyAdd(x0, c, a02); a12 = Vector512.FusedMultiplyAdd(x1, c, a12);
            a22 = Vector512.FusedMultiplyAdd(x2, c, a22); a32 = Vector512.FusedMultiplyAdd(x3, c, a32);
            c = Vector512.Load(r3 + k);
            a03 = Vector512.FusedMultiplyAdd(x0, c, a03); a13 = Vector512.FusedMultiplyAdd(x1, c, a13);
            a23 = Vector512.FusedMultiplyAdd(x2, c, a23); a33 = Vector512.FusedMultiplyAdd(x3, c, a33);
        }
        // the 16 horizontal sums in one tree (45 shuffles and adds instead of 16 separate reductions): element 4h + j of
        // the result is Σ a_hj
        Vector512<float> r = Reduce4x4(Reduce2(a00, a01), Reduce2(a02, a03), Reduce2(a10, a11), Reduce2(a12, a13),
                                       Reduce2(a20, a21), Reduce2(a22, a23), Reduce2(a30, a31), Reduce2(a32, a33)) * scale;
        if (accumulate)
        {
            r += Vector512.Create(Vector256.Create(Vector128.Load(sp), Vector128.Load(sp + Tile)),
                                  Vector256.Create(Vector128.Load(sp + 2 * Tile), Vector128.Load(sp + 3 * Tile)));
        }
        r.GetLower().GetLower().Store(sp);
        r.GetLower().GetUpper().Store(sp + Tile);
        r.GetUpper().GetLower().Store(sp + 2 * Tile);
        r.GetUpper().GetUpper().Store(sp + 3 * Tile);
    }

    /// <summary>[a.L0 + a.L2, a.L1 + a.L3, b.L0 + b.L2, b.L1 + b.L3] (L: 128-bit lanes): halves two vectors' sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Reduce2(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle4x128(a, b, 0b01_00_01_00) + Avx512F.Shuffle4x128(a, b, 0b11_10_11_10);

    /// <summary>From the <see cref="Reduce2"/> pairs of a 4 x 4 block (p0 = (a00, a01), p1 = (a02, a03), p2 = (a10, a11), ...)
    /// the 16 full sums, element 4h + j = Σ a_hj.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Reduce4x4(Vector512<float> p0, Vector512<float> p1, Vector512<float> p2, Vector512<float> p3,
                                              Vector512<float> p4, Vector512<float> p5, Vector512<float> p6, Vector512<float> p7)
    {
        // 128-bit lane j of q_h: 4 partial sums of a_hj
        Vector512<float> q0 = Avx512F.Shuffle4x128(p0, p1, 0b10_00_10_00) + Avx512F.Shuffle4x128(p0, p1, 0b11_01_11_01);
        Vector512<float> q1 = Avx512F.Shuffle4x128(p2, p3, 0b10_00_10_00) + Avx512F.Shuffle4x128(p2, p3, 0b11_01_11_01);
        Vector512<float> q2 = Avx512F.Shuffle4x128(p4, p5, 0b10_00_10_00) + Avx512F.Shuffle4x128(p4, p5, 0b11_01_11_01);
        Vector512<float> q3 = Avx512F.Shuffle4x128(p6, p7, 0b10_00_10_00) + Avx512F.Shuffle4x128(p6, p7, 0b11_01_11_01);
        // lane j of s0: [a0j (0+2), a1j (0+2), a0j (1+3), a1j (1+3)]; of s1: the same for heads 2, 3
        Vector512<float> s0 = Avx512F.UnpackLow(q0, q1) + Avx512F.UnpackHigh(q0, q1);
        Vector512<float> s1 = Avx512F.UnpackLow(q2, q3) + Avx512F.UnpackHigh(q2, q3);
        // lane j: [a0j, a1j, a2j, a3j], element 4j + h; permuted to element 4h + j
        Vector512<float> t = Avx512F.UnpackLow(s0.AsDouble(), s1.AsDouble()).AsSingle() + Avx512F.UnpackHigh(s0.AsDouble(), s1.AsDouble()).AsSingle();
        return Avx512F.PermuteVar16x32(t, Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    }

    /// <summary>
    /// One online-softmax step for <paramref name="rows"/> queries over a tile of nb ≤ 8 positions. The scores
    /// s[i·8 + j] of query i (j &lt; valid_i: valid[i] where given, else nb) become its weights e^(score − m_i), 0 past
    /// valid_i; m_i grows to the tile's max (rescaling the accumulator o[i·oStride ..+n] and the running sum l_i by
    /// e^(m_old − m_new)) and l_i gains Σ e. All exponentials of the tile are one vectorized call. The caller then adds
    /// Σ_j e[i·8 + j]·v_j to each accumulator (a query with valid_i ≤ 0 is left as it was, its weights all 0).
    /// </summary>
    public static unsafe void SoftmaxTile(float* s, int rows, int nb, int* valid, float* m, float* l, float* o, int n, int oStride)
    {
        if (Avx512F.IsSupported && rows % 2 == 0)
        {
            SoftmaxTilePairs(s, rows, nb, valid, m, l, o, n, oStride);
            return;
        }
        // one query per 256-bit vector: the maxima, then the rare rescaling calls, then the exponentials in registers
        // (FastExp, as the pairs above), the loops in methods without a call (see SoftmaxTilePairs)
        float* tileMax = stackalloc float[rows];
        TileMaxima256(s, rows, nb, valid, tileMax);
        for (int i = 0; i < rows; i++)
        {
            if (tileMax[i] > m[i])
                RaiseMax(i, tileMax[i], m, l, o, n, oStride);
        }
        TileExponentials256(s, rows, nb, valid, m, l);
    }

    // the scores of query i, −∞ past its valid positions
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<float> Masked(float* si, int* valid, int i, int nb)
    {
        int v = valid == null ? nb : Math.Min(nb, valid[i]);
        return Vector256.ConditionalSelect(Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(v)).AsSingle(),
                                          Vector256.Load(si), Vector256.Create(float.NegativeInfinity));
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TileMaxima256(float* s, int rows, int nb, int* valid, float* tileMax)
    {
        for (int i = 0; i < rows; i++)
        {
            Vector256<float> x = Masked(s + i * Tile, valid, i, nb);
            Vector256<float> mx = Vector256.Max(x, Vector256.Shuffle(x, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6)));
            mx = Vector256.Max(mx, Vector256.Shuffle(mx, Vector256.Create(2, 3, 0, 1, 6, 7, 4, 5)));
            tileMax[i] = Math.Max(mx.ToScalar(), mx.GetUpper().ToScalar());
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TileExponentials256(float* s, int rows, int nb, int* valid, float* m, float* l)
    {
        Vector256<float> ninf = Vector256.Create(float.NegativeInfinity);
        for (int i = 0; i < rows; i++)
        {
            float* si = s + i * Tile;
            Vector256<float> x = Masked(si, valid, i, nb);
            // weights below e^-80 are made exactly 0 (no denormals in the accumulation); a query without a valid position
            // gets weights 0
            Vector256<float> d = x - Vector256.Create(m[i]);
            Vector256<float> e = Vector256.ConditionalSelect(Vector256.LessThan(d, Vector256.Create(-80f)) | Vector256.Equals(x, ninf),
                                                             Vector256<float>.Zero, FastExp.Exp(d));
            e.Store(si);
            Vector128<float> t = e.GetLower() + e.GetUpper();
            t += Vector128.Shuffle(t, Vector128.Create(2, 3, 0, 1));
            l[i] += t.ToScalar() + t.GetElement(1);
        }
    }

    /// <summary><see cref="SoftmaxTile"/> for an even number of queries, two per 512-bit vector (one per 256-bit half): the
    /// maxima and sums by lane permutations, the exponentials in registers (<see cref="FastExp"/>, 2 ulp), a scalar step
    /// only where a running max grows (then the accumulator is rescaled).</summary>
    private static unsafe void SoftmaxTilePairs(float* s, int rows, int nb, int* valid, float* m, float* l, float* o, int n, int oStride)
    {
        // the maxima, then the rare rescaling calls, then the exponentials, the vector loops in methods without a call:
        // with a call in the same method the JIT reloaded the loops' constant vectors from the stack on every pair
        float* tileMax = stackalloc float[rows];
        TileMaxima(s, rows, nb, valid, tileMax);
        for (int i = 0; i < rows; i++)
        {
            if (tileMax[i] > m[i])
                RaiseMax(i, tileMax[i], m, l, o, n, oStride);
        }
        TileExponentials(s, rows, nb, valid, m, l);
    }

    private static Vector512<int> Lanes => Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
    private static Vector512<int> Swap1 => Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    private static Vector512<int> Swap2 => Vector512.Create(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    private static Vector512<int> Swap4 => Vector512.Create(4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);

    // tileMax[i] = max of query i's valid scores in the tile
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TileMaxima(float* s, int rows, int nb, int* valid, float* tileMax)
    {
        Vector512<float> ninf = Vector512.Create(float.NegativeInfinity);
        Vector512<int> lane = Lanes, swap1 = Swap1, swap2 = Swap2, swap4 = Swap4;
        for (int i = 0; i < rows; i += 2)
        {
            Vector512<float> x = Masked(s + i * Tile, valid, i, nb, lane, ninf);
            Vector512<float> mx = Vector512.Max(x, Avx512F.PermuteVar16x32(x, swap1));
            mx = Vector512.Max(mx, Avx512F.PermuteVar16x32(mx, swap2));
            mx = Vector512.Max(mx, Avx512F.PermuteVar16x32(mx, swap4));
            tileMax[i] = mx.GetElement(0);
            tileMax[i + 1] = mx.GetElement(8);
        }
    }

    // s ← e^(s − m) per query (0 past its valid positions), l += the tile's sum
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TileExponentials(float* s, int rows, int nb, int* valid, float* m, float* l)
    {
        Vector512<float> ninf = Vector512.Create(float.NegativeInfinity);
        Vector512<int> lane = Lanes, swap1 = Swap1, swap2 = Swap2, swap4 = Swap4;
        for (int i = 0; i < rows; i += 2)
        {
            float* si = s + i * Tile;
            Vector512<float> x = Masked(si, valid, i, nb, lane, ninf);
            // weights below e^-80 (1.8e-35, far under fp32 resolution next to the max's weight of 1) are made exactly 0:
            // left as denormals they would cost a microcode assist in every multiply-add that reads them; a query
            // without a valid position (its max still −∞) gets weights 0, not e^(−∞ + ∞)
            Vector512<float> d = x - Vector512.Create(Vector256.Create(m[i]), Vector256.Create(m[i + 1]));
            Vector512<float> e = Vector512.ConditionalSelect(Vector512.LessThan(d, Vector512.Create(-80f)) | Vector512.Equals(x, ninf),
                                                             Vector512<float>.Zero, FastExp.Exp(d));
            e.Store(si);
            Vector512<float> t = e + Avx512F.PermuteVar16x32(e, swap1);
            t += Avx512F.PermuteVar16x32(t, swap2);
            t += Avx512F.PermuteVar16x32(t, swap4);
            l[i] += t.GetElement(0);
            l[i + 1] += t.GetElement(8);
        }
    }

    // the scores of queries i and i + 1 (one per 256-bit half), −∞ past each one's valid positions (there the weight is
    // 0 and the max does not move)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<float> Masked(float* si, int* valid, int i, int nb, Vector512<int> lane, Vector512<float> ninf)
    {
        int va = valid == null ? nb : Math.Min(nb, valid[i]), vb = valid == null ? nb : Math.Min(nb, valid[i + 1]);
        Vector512<int> v = Vector512.Create(Vector256.Create(va), Vector256.Create(vb));
        return Vector512.ConditionalSelect(Vector512.LessThan(lane, v).AsSingle(), Vector512.Load(si), ninf);
    }

    /// <summary>Query i's running max grows to <paramref name="mNew"/>: its accumulator o[i·oStride ..+n] and sum l_i are
    /// rescaled by e^(m_old − m_new) (the accumulator only when it holds something).</summary>
    private static unsafe void RaiseMax(int i, float mNew, float* m, float* l, float* o, int n, int oStride)
    {
        float f = MathF.Exp(m[i] - mNew);
        if (l[i] != 0)
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(o + (long)i * oStride, n), f, new Span<float>(o + (long)i * oStride, n));
        l[i] *= f;
        m[i] = mNew;
    }

    /// <summary>
    /// o[h·R + k] += Σ_j e[h·8 + j]·rows[j·stride + k] for 8 heads (h &lt; 8), nb ≤ 8 rows and k &lt; R (a multiple of 32):
    /// 32 columns of all 8 accumulators stay in registers across the tile's rows, so each row is loaded once for every
    /// head and each accumulator once per tile (vs once per pair of heads for <see cref="AccumulateRows2"/>).
    /// </summary>
    public static unsafe void AccumulateHeads8(float* o, int R, float* rows, int stride, float* e, int nb) =>
        AccumulateHeads8<F32Pairs>(o, R, (byte*)rows, stride * sizeof(float), e, nb);

    /// <summary>32 consecutive values of a row as two vectors (a row format of <see cref="AccumulateHeads8{T}"/>).</summary>
    private unsafe interface IRowPairs
    {
        /// <summary>Values [k, k + 32) of the row at <paramref name="row"/>, in the order its accumulators keep.</summary>
        static abstract (Vector512<float> A, Vector512<float> B) Load(byte* row, int k);
    }

    /// <summary>fp32 rows, in order.</summary>
    private readonly unsafe struct F32Pairs : IRowPairs
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector512<float> A, Vector512<float> B) Load(byte* row, int k) =>
            (Vector512.Load((float*)row + k), Vector512.Load((float*)row + k + 16));
    }

    /// <summary>bf16 rows, one 64-byte load: the even values, then the odd ones (<see cref="Bf16.EvenOdd"/> order).</summary>
    private readonly unsafe struct Bf16Pairs : IRowPairs
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector512<float> A, Vector512<float> B) Load(byte* row, int k)
        {
            Vector512<uint> x = Vector512.Load((uint*)((ushort*)row + k));
            return (Bf16.Even(x), Bf16.Odd(x));
        }
    }

    /// <summary>The accumulation of 8 heads over nb rows (rowBytes apart) of format T, 32 columns at a time.</summary>
    private static unsafe void AccumulateHeads8<T>(float* o, int R, byte* rows, long rowBytes, float* e, int nb) where T : struct, IRowPairs
    {
        for (int k = 0; k + 32 <= R; k += 32)
        {
            float* o0 = o + k, o1 = o0 + R, o2 = o1 + R, o3 = o2 + R, o4 = o3 + R, o5 = o4 + R, o6 = o5 + R, o7 = o6 + R;
            Vector512<float> a00 = Vector512.Load(o0), a01 = Vector512.Load(o0 + 16), a10 = Vector512.Load(o1), a11 = Vector512.Load(o1 + 16);
            Vector512<float> a20 = Vector512.Load(o2), a21 = Vector512.Load(o2 + 16), a30 = Vector512.Load(o3), a31 = Vector512.Load(o3 + 16);
            Vector512<float> a40 = Vector512.Load(o4), a41 = Vector512.Load(o4 + 16), a50 = Vector512.Load(o5), a51 = Vector512.Load(o5 + 16);
            Vector512<float> a60 = Vector512.Load(o6), a61 = Vector512.Load(o6 + 16), a70 = Vector512.Load(o7), a71 = Vector512.Load(o7 + 16);
            for (int j = 0; j < nb; j++)
            {
                float* ej = e + j;
                (Vector512<float> x0, Vector512<float> x1) = T.Load(rows + j * rowBytes, k);
                Vector512<float> w = Vector512.Create(ej[0]);
                a00 = Vector512.FusedMultiplyAdd(w, x0, a00); a01 = Vector512.FusedMultiplyAdd(w, x1, a01);
                w = Vector512.Create(ej[Tile]);
                a10 = Vector512.FusedMultiplyAdd(w, x0, a10); a11 = Vector512.FusedMultiplyAdd(w, x1, a11);
                w = Vector512.Create(ej[2 * Tile]);
                a20 = Vector512.FusedMultiplyAdd(w, x0, a20); a21 = Vector512.FusedMultiplyAdd(w, x1, a21);
                w = Vector512.Create(ej[3 * Tile]);
                a30 = Vector512.FusedMultiplyAdd(w, x0, a30); a31 = Vector512.FusedMultiplyAdd(w, x1, a31);
                w = Vector512.Create(ej[4 * Tile]);
                a40 = Vector512.FusedMultiplyAdd(w, x0, a40); a41 = Vector512.FusedMultiplyAdd(w, x1, a41);
                w = Vector512.Create(ej[5 * Tile]);
                a50 = Vector512.FusedMultiplyAdd(w, x0, a50); a51 = Vector512.FusedMultiplyAdd(w, x1, a51);
                w = Vector512.Create(ej[6 * Tile]);
                a60 = Vector512.FusedMultiplyAdd(w, x0, a60); a61 = Vector512.FusedMultiplyAdd(w, x1, a61);
                w = Vector512.Create(ej[7 * Tile]);
                a70 = Vector512.FusedMultiplyAdd(w, x0, a70); a71 = Vector512.FusedMultiplyAdd(w, x1, a71);
            }
            a00.Store(o0); a01.Store(o0 + 16); a10.Store(o1); a11.Store(o1 + 16);
            a20.Store(o2); a21.Store(o2 + 16); a30.Store(o3); a31.Store(o3 + 16);
            a40.Store(o4); a41.Store(o4 + 16); a50.Store(o5); a51.Store(o5 + 16);
            a60.Store(o6); a61.Store(o6 + 16); a70.Store(o7); a71.Store(o7 + 16);
        }
    }

    /// <summary><see cref="AccumulateRows"/> for two accumulators over the same full tile of 8 rows (weights ea, eb).</summary>
    public static unsafe void AccumulateRows2(float* oa, float* ob, int n, float* rows, int stride, ReadOnlySpan<float> ea, ReadOnlySpan<float> eb)
    {
        int k = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = Vector512.Create(ea[0]), a1 = Vector512.Create(ea[1]), a2 = Vector512.Create(ea[2]), a3 = Vector512.Create(ea[3]);
            Vector512<float> a4 = Vector512.Create(ea[4]), a5 = Vector512.Create(ea[5]), a6 = Vector512.Create(ea[6]), a7 = Vector512.Create(ea[7]);
            Vector512<float> b0 = Vector512.Create(eb[0]), b1 = Vector512.Create(eb[1]), b2 = Vector512.Create(eb[2]), b3 = Vector512.Create(eb[3]);
            Vector512<float> b4 = Vector512.Create(eb[4]), b5 = Vector512.Create(eb[5]), b6 = Vector512.Create(eb[6]), b7 = Vector512.Create(eb[7]);
            float* r1 = rows + stride, r2 = rows + 2 * stride, r3 = rows + 3 * stride, r4 = rows + 4 * stride;
            float* r5 = rows + 5 * stride, r6 = rows + 6 * stride, r7 = rows + 7 * stride;
            for (; k + 16 <= n; k += 16)
            {
                Vector512<float> x = Vector512.Load(rows + k);
                Vector512<float> sa = Vector512.FusedMultiplyAdd(a0, x, Vector512.Load(oa + k)), sb = Vector512.FusedMultiplyAdd(b0, x, Vector512.Load(ob + k));
                x = Vector512.Load(r1 + k);
                Vector512<float> ta = a1 * x, tb = b1 * x;
                x = Vector512.Load(r2 + k);
                sa = Vector512.FusedMultiplyAdd(a2, x, sa); sb = Vector512.FusedMultiplyAdd(b2, x, sb);
                x = Vector512.Load(r3 + k);
                ta = Vector512.FusedMultiplyAdd(a3, x, ta); tb = Vector512.FusedMultiplyAdd(b3, x, tb);
                x = Vector512.Load(r4 + k);
                sa = Vector512.FusedMultiplyAdd(a4, x, sa); sb = Vector512.FusedMultiplyAdd(b4, x, sb);
                x = Vector512.Load(r5 + k);
                ta = Vector512.FusedMultiplyAdd(a5, x, ta); tb = Vector512.FusedMultiplyAdd(b5, x, tb);
                x = Vector512.Load(r6 + k);
                sa = Vector512.FusedMultiplyAdd(a6, x, sa); sb = Vector512.FusedMultiplyAdd(b6, x, sb);
                x = Vector512.Load(r7 + k);
                ta = Vector512.FusedMultiplyAdd(a7, x, ta); tb = Vector512.FusedMultiplyAdd(b7, x, tb);
                (sa + ta).Store(oa + k);
                (sb + tb).Store(ob + k);
            }
        }
        if (k < n)
        {
            AccumulateRows(oa + k, n - k, rows + k, stride, ea, Tile);
            AccumulateRows(ob + k, n - k, rows + k, stride, eb, Tile);
        }
    }

    /// <summary>o[k] += Σ_j e[j]·rows[j·stride + k] for k &lt; n: one load and store of o per tile of rows.</summary>
    public static unsafe void AccumulateRows(float* o, int n, float* rows, int stride, ReadOnlySpan<float> e, int nb)
    {
        int k = 0;
        if (Vector512.IsHardwareAccelerated && nb == Tile)
        {
            // a full tile: the 8 weights broadcast once, not once per 16 columns (with a bounds check each)
            Vector512<float> e0 = Vector512.Create(e[0]), e1 = Vector512.Create(e[1]), e2 = Vector512.Create(e[2]), e3 = Vector512.Create(e[3]);
            Vector512<float> e4 = Vector512.Create(e[4]), e5 = Vector512.Create(e[5]), e6 = Vector512.Create(e[6]), e7 = Vector512.Create(e[7]);
            float* r1 = rows + stride, r2 = rows + 2 * stride, r3 = rows + 3 * stride, r4 = rows + 4 * stride;
            float* r5 = rows + 5 * stride, r6 = rows + 6 * stride, r7 = rows + 7 * stride;
            for (; k + 16 <= n; k += 16)
            {
                // two partial sums: the 8 FMAs are not one dependent chain
                Vector512<float> a = Vector512.FusedMultiplyAdd(e0, Vector512.Load(rows + k), Vector512.Load(o + k));
                Vector512<float> b = e1 * Vector512.Load(r1 + k);
                a = Vector512.FusedMultiplyAdd(e2, Vector512.Load(r2 + k), a);
                b = Vector512.FusedMultiplyAdd(e3, Vector512.Load(r3 + k), b);
                a = Vector512.FusedMultiplyAdd(e4, Vector512.Load(r4 + k), a);
                b = Vector512.FusedMultiplyAdd(e5, Vector512.Load(r5 + k), b);
                a = Vector512.FusedMultiplyAdd(e6, Vector512.Load(r6 + k), a);
                b = Vector512.FusedMultiplyAdd(e7, Vector512.Load(r7 + k), b);
                (a + b).Store(o + k);
            }
        }
        else if (Vector512.IsHardwareAccelerated)
        {
            for (; k + 16 <= n; k += 16)
            {
                Vector512<float> acc = Vector512.Load(o + k);
                for (int j = 0; j < nb; j++)
                    acc = Vector512.FusedMultiplyAdd(Vector512.Create(e[j]), Vector512.Load(rows + j * stride + k), acc);
                acc.Store(o + k);
            }
        }
        else if (Vector256.IsHardwareAccelerated && Fma.IsSupported && nb == Tile)
        {
            // the full-tile loop above in 256 bits (without AVX-512 the scalar loop below took 30% of a decode step)
            Vector256<float> e0 = Vector256.Create(e[0]), e1 = Vector256.Create(e[1]), e2 = Vector256.Create(e[2]), e3 = Vector256.Create(e[3]);
            Vector256<float> e4 = Vector256.Create(e[4]), e5 = Vector256.Create(e[5]), e6 = Vector256.Create(e[6]), e7 = Vector256.Create(e[7]);
            float* r1 = rows + stride, r2 = rows + 2 * stride, r3 = rows + 3 * stride, r4 = rows + 4 * stride;
            float* r5 = rows + 5 * stride, r6 = rows + 6 * stride, r7 = rows + 7 * stride;
            for (; k + 8 <= n; k += 8)
            {
                Vector256<float> a = Vector256.FusedMultiplyAdd(e0, Vector256.Load(rows + k), Vector256.Load(o + k));
                Vector256<float> b = e1 * Vector256.Load(r1 + k);
                a = Vector256.FusedMultiplyAdd(e2, Vector256.Load(r2 + k), a);
                b = Vector256.FusedMultiplyAdd(e3, Vector256.Load(r3 + k), b);
                a = Vector256.FusedMultiplyAdd(e4, Vector256.Load(r4 + k), a);
                b = Vector256.FusedMultiplyAdd(e5, Vector256.Load(r5 + k), b);
                a = Vector256.FusedMultiplyAdd(e6, Vector256.Load(r6 + k), a);
                b = Vector256.FusedMultiplyAdd(e7, Vector256.Load(r7 + k), b);
                (a + b).Store(o + k);
            }
        }
        else if (Vector256.IsHardwareAccelerated && Fma.IsSupported)
        {
            for (; k + 8 <= n; k += 8)
            {
                Vector256<float> acc = Vector256.Load(o + k);
                for (int j = 0; j < nb; j++)
                    acc = Vector256.FusedMultiplyAdd(Vector256.Create(e[j]), Vector256.Load(rows + j * stride + k), acc);
                acc.Store(o + k);
            }
        }
        for (; k < n; k++)
        {
            float acc = o[k];
            for (int j = 0; j < nb; j++)
                acc = MathF.FusedMultiplyAdd(e[j], rows[j * stride + k], acc);
            o[k] = acc;
        }
    }
}
