// Absorbed attention's kernels over bf16 latent rows for machines without AVX-512 (AVX2 + FMA), the 256-bit counterpart
// of ScorePairHeads8 / AccumulateBf16Heads8: each 16 values of a row are one 32-byte load split into even and odd lanes
// (a shift and an AND), against queries permuted by Bf16Avx2.EvenOdd and into accumulators kept in that order (put back
// by Bf16Avx2.Interleave at the end), so no fp32 copy of the rows is written.
using System.Runtime.Intrinsics;

namespace SharpSeek.Tensors;

public static partial class AttentionKernels
{
    /// <summary>
    /// sp[h·8 + j] = qp[h·w ..]·rows[j·w ..]·scale for h &lt; nh, j &lt; nb ≤ 8, bf16 rows and queries permuted by
    /// <see cref="Bf16Avx2.EvenOdd"/> (w a multiple of 16; AVX2 + FMA): 4 heads x 2 rows per block, a dot product each
    /// outside the blocks.
    /// </summary>
    public static unsafe void ScoresBf16Avx2(float* qp, int nh, ushort* rows, int nb, int w, float scale, float* sp)
    {
        int h = 0;
        for (; h + 4 <= nh; h += 4)
        {
            int j = 0;
            for (; j + 2 <= nb; j += 2)
                ScoreBlock4x2Bf16(qp + (long)h * w, rows + (long)j * w, w, scale, sp + h * Tile + j);
            for (; j < nb; j++)
            {
                for (int k = h; k < h + 4; k++)
                    sp[k * Tile + j] = Bf16Avx2.Dot(rows + (long)j * w, w, qp + (long)k * w) * scale;
            }
        }
        for (; h < nh; h++)
        {
            for (int j = 0; j < nb; j++)
                sp[h * Tile + j] = Bf16Avx2.Dot(rows + (long)j * w, w, qp + (long)h * w) * scale;
        }
    }

    // sp[h·8 + j] = q_h · row_j · scale for 4 permuted query rows (stride w) and 2 bf16 rows (stride w)
    private static unsafe void ScoreBlock4x2Bf16(float* q, ushort* rows, int w, float scale, float* sp)
    {
        Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default;
        Vector256<float> a20 = default, a21 = default, a30 = default, a31 = default;
        float* q1 = q + w, q2 = q1 + w, q3 = q2 + w;
        ushort* r1 = rows + w;
        for (int k = 0; k < w; k += 16)
        {
            Vector256<uint> x0 = Vector256.Load((uint*)(rows + k)), x1 = Vector256.Load((uint*)(r1 + k));
            Vector256<float> e0 = Bf16.Even(x0), o0 = Bf16.Odd(x0);
            Vector256<float> e1 = Bf16.Even(x1), o1 = Bf16.Odd(x1);
            Vector256<float> qe = Vector256.Load(q + k), qo = Vector256.Load(q + k + 8);
            a00 = Vector256.FusedMultiplyAdd(qo, o0, Vector256.FusedMultiplyAdd(qe, e0, a00));
            a01 = Vector256.FusedMultiplyAdd(qo, o1, Vector256.FusedMultiplyAdd(qe, e1, a01));
            qe = Vector256.Load(q1 + k); qo = Vector256.Load(q1 + k + 8);
            a10 = Vector256.FusedMultiplyAdd(qo, o0, Vector256.FusedMultiplyAdd(qe, e0, a10));
            a11 = Vector256.FusedMultiplyAdd(qo, o1, Vector256.FusedMultiplyAdd(qe, e1, a11));
            qe = Vector256.Load(q2 + k); qo = Vector256.Load(q2 + k + 8);
            a20 = Vector256.FusedMultiplyAdd(qo, o0, Vector256.FusedMultiplyAdd(qe, e0, a20));
            a21 = Vector256.FusedMultiplyAdd(qo, o1, Vector256.FusedMultiplyAdd(qe, e1, a21));
            qe = Vector256.Load(q3 + k); qo = Vector256.Load(q3 + k + 8);
            a30 = Vector256.FusedMultiplyAdd(qo, o0, Vector256.FusedMultiplyAdd(qe, e0, a30));
            a31 = Vector256.FusedMultiplyAdd(qo, o1, Vector256.FusedMultiplyAdd(qe, e1, a31));
        }
        Vector128<float> h01 = HorizontalSums.Sum4(a00, a01, a10, a11) * scale, h23 = HorizontalSums.Sum4(a20, a21, a30, a31) * scale;
        PutPair(sp, h01.AsDouble().ToScalar(), false);
        PutPair(sp + Tile, h01.AsDouble().GetElement(1), false);
        PutPair(sp + 2 * Tile, h23.AsDouble().ToScalar(), false);
        PutPair(sp + 3 * Tile, h23.AsDouble().GetElement(1), false);
    }

    /// <summary>
    /// o[h·R + k] += Σ_j e[h·8 + j]·rows[j·stride + k] for h &lt; nh, nb ≤ 8 bf16 rows and k &lt; R (a multiple of 16; AVX2 +
    /// FMA), each accumulator in the permuted order of <see cref="Bf16Avx2.EvenOdd"/>: four heads per pass over the
    /// rows, 16 columns of their accumulators in registers across the tile.
    /// </summary>
    public static unsafe void AccumulateBf16Avx2(float* o, int nh, int R, ushort* rows, int stride, float* e, int nb)
    {
        int h = 0;
        for (; h + 4 <= nh; h += 4)
        {
            float* o0 = o + (long)h * R, o1 = o0 + R, o2 = o1 + R, o3 = o2 + R;
            float* e0 = e + h * Tile;
            for (int k = 0; k < R; k += 16)
            {
                Vector256<float> a0 = Vector256.Load(o0 + k), b0 = Vector256.Load(o0 + k + 8), a1 = Vector256.Load(o1 + k), b1 = Vector256.Load(o1 + k + 8);
                Vector256<float> a2 = Vector256.Load(o2 + k), b2 = Vector256.Load(o2 + k + 8), a3 = Vector256.Load(o3 + k), b3 = Vector256.Load(o3 + k + 8);
                for (int j = 0; j < nb; j++)
                {
                    Vector256<uint> x = Vector256.Load((uint*)(rows + (long)j * stride + k));
                    Vector256<float> ev = Bf16.Even(x), od = Bf16.Odd(x);
                    Vector256<float> c = Vector256.Create(e0[j]);
                    a0 = Vector256.FusedMultiplyAdd(c, ev, a0); b0 = Vector256.FusedMultiplyAdd(c, od, b0);
                    c = Vector256.Create(e0[Tile + j]);
                    a1 = Vector256.FusedMultiplyAdd(c, ev, a1); b1 = Vector256.FusedMultiplyAdd(c, od, b1);
                    c = Vector256.Create(e0[2 * Tile + j]);
                    a2 = Vector256.FusedMultiplyAdd(c, ev, a2); b2 = Vector256.FusedMultiplyAdd(c, od, b2);
                    c = Vector256.Create(e0[3 * Tile + j]);
                    a3 = Vector256.FusedMultiplyAdd(c, ev, a3); b3 = Vector256.FusedMultiplyAdd(c, od, b3);
                }
                a0.Store(o0 + k); b0.Store(o0 + k + 8); a1.Store(o1 + k); b1.Store(o1 + k + 8);
                a2.Store(o2 + k); b2.Store(o2 + k + 8); a3.Store(o3 + k); b3.Store(o3 + k + 8);
            }
        }
        for (; h < nh; h++)
        {
            float* oh = o + (long)h * R, eh = e + h * Tile;
            for (int k = 0; k < R; k += 16)
            {
                Vector256<float> a = Vector256.Load(oh + k), b = Vector256.Load(oh + k + 8);
                for (int j = 0; j < nb; j++)
                {
                    Vector256<uint> x = Vector256.Load((uint*)(rows + (long)j * stride + k));
                    Vector256<float> c = Vector256.Create(eh[j]);
                    a = Vector256.FusedMultiplyAdd(c, Bf16.Even(x), a);
                    b = Vector256.FusedMultiplyAdd(c, Bf16.Odd(x), b);
                }
                a.Store(oh + k);
                b.Store(oh + k + 8);
            }
        }
    }
}
