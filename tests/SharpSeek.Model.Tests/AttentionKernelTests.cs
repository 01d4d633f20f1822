// The score kernel of absorbed attention (AttentionKernels.Scores: 4 heads x 4 positions register blocks, a dot-product fallback
// for the rest) against a double-precision dot product, at head counts, tile sizes and row widths around the blocks.
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;

namespace SharpSeek.Model.Tests;

public sealed unsafe class AttentionKernelTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(40)]
    [InlineData(192)]
    [InlineData(576)]
    public void Tile_scores_match_double_dot_products(int w)
    {
        var rng = new Random(w);
        for (int nh = 1; nh <= 9; nh++)
        {
            for (int nb = 1; nb <= 8; nb++)
            {
                float[] q = new float[nh * w], rows = new float[nb * w], sp = new float[nh * 8];
                for (int i = 0; i < q.Length; i++) q[i] = rng.NextSingle() * 2 - 1;
                for (int i = 0; i < rows.Length; i++) rows[i] = rng.NextSingle() * 2 - 1;
                Array.Fill(sp, float.NaN);
                fixed (float* qp = q, rp = rows, s = sp)
                    AttentionKernels.Scores(qp, nh, rp, nb, w, 0.125f, s);
                for (int h = 0; h < nh; h++)
                {
                    for (int j = 0; j < 8; j++)
                    {
                        if (j >= nb)
                        {
                            Assert.True(float.IsNaN(sp[h * 8 + j]), $"wrote outside the tile at head {h}, position {j}");
                            continue;
                        }
                        double want = 0;
                        for (int k = 0; k < w; k++)
                            want += (double)q[h * w + k] * rows[j * w + k];
                        want *= 0.125;
                        double diff = Math.Abs(want - sp[h * 8 + j]);
                        Assert.True(diff <= 1e-5 * Math.Sqrt(w), $"w {w}, {nh} heads, {nb} rows, head {h}, row {j}: |diff| {diff}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(16, 1)]
    [InlineData(40, 3)]
    [InlineData(512, 8)]
    [InlineData(520, 8)]
    [InlineData(128, 7)]
    public void Row_accumulation_matches_scalar(int n, int nb)
    {
        var rng = new Random(n + nb);
        int stride = n + 5;
        float[] rows = new float[nb * stride], e = new float[8], o = new float[n];
        for (int i = 0; i < rows.Length; i++) rows[i] = rng.NextSingle() * 2 - 1;
        for (int i = 0; i < nb; i++) e[i] = rng.NextSingle();
        for (int i = 0; i < n; i++) o[i] = rng.NextSingle();
        double[] want = new double[n];
        for (int k = 0; k < n; k++)
        {
            want[k] = o[k];
            for (int j = 0; j < nb; j++)
                want[k] += (double)e[j] * rows[j * stride + k];
        }
        fixed (float* op = o, rp = rows)
            AttentionKernels.AccumulateRows(op, n, rp, stride, e, nb);
        for (int k = 0; k < n; k++)
            Assert.True(Math.Abs(want[k] - o[k]) <= 1e-5, $"n {n}, {nb} rows, column {k}: |diff| {Math.Abs(want[k] - o[k])}");
    }

    [Theory]
    [InlineData(16)]
    [InlineData(40)]
    [InlineData(512)]
    [InlineData(520)]
    public void Paired_row_accumulation_matches_two_single_ones(int n)
    {
        var rng = new Random(n);
        int stride = n + 3;
        float[] rows = new float[8 * stride], ea = new float[8], eb = new float[8], oa = new float[n], ob = new float[n];
        for (int i = 0; i < rows.Length; i++) rows[i] = rng.NextSingle() * 2 - 1;
        for (int i = 0; i < 8; i++) { ea[i] = rng.NextSingle(); eb[i] = rng.NextSingle(); }
        for (int i = 0; i < n; i++) { oa[i] = rng.NextSingle(); ob[i] = rng.NextSingle(); }
        double[] wa = new double[n], wb = new double[n];
        for (int k = 0; k < n; k++)
        {
            wa[k] = oa[k];
            wb[k] = ob[k];
            for (int j = 0; j < 8; j++)
            {
                wa[k] += (double)ea[j] * rows[j * stride + k];
                wb[k] += (double)eb[j] * rows[j * stride + k];
            }
        }
        fixed (float* pa = oa, pb = ob, rp = rows)
            AttentionKernels.AccumulateRows2(pa, pb, n, rp, stride, ea, eb);
        for (int k = 0; k < n; k++)
        {
            Assert.True(Math.Abs(wa[k] - oa[k]) <= 1e-5, $"n {n}, first accumulator, column {k}: |diff| {Math.Abs(wa[k] - oa[k])}");
            Assert.True(Math.Abs(wb[k] - ob[k]) <= 1e-5, $"n {n}, second accumulator, column {k}: |diff| {Math.Abs(wb[k] - ob[k])}");
        }
    }

    [Fact]
    public void Strided_scores_add_to_what_is_there()
    {
        var rng = new Random(7);
        const int w = 64, qStride = 80, rowStride = 96, nh = 6, nb = 7;
        float[] q = new float[nh * qStride], rows = new float[nb * rowStride], sp = new float[nh * 8];
        for (int i = 0; i < q.Length; i++) q[i] = rng.NextSingle() * 2 - 1;
        for (int i = 0; i < rows.Length; i++) rows[i] = rng.NextSingle() * 2 - 1;
        for (int i = 0; i < sp.Length; i++) sp[i] = rng.NextSingle();
        float[] before = (float[])sp.Clone();
        fixed (float* qp = q, rp = rows, s = sp)
            AttentionKernels.Scores(qp, qStride, nh, rp, rowStride, nb, w, 0.5f, s, accumulate: true);
        for (int h = 0; h < nh; h++)
        {
            for (int j = 0; j < 8; j++)
            {
                double want = before[h * 8 + j];
                if (j < nb)
                {
                    double dot = 0;
                    for (int k = 0; k < w; k++)
                        dot += (double)q[h * qStride + k] * rows[j * rowStride + k];
                    want += 0.5 * dot;
                }
                double diff = Math.Abs(want - sp[h * 8 + j]);
                Assert.True(diff <= 1e-5, $"head {h}, position {j}: |diff| {diff}");
            }
        }
    }

    // an even number of queries takes the paired AVX-512 path, an odd one the per-query path
    [Theory]
    [InlineData(6, 8)]
    [InlineData(7, 8)]
    [InlineData(6, 5)]
    [InlineData(7, 3)]
    public void Softmax_tile_matches_the_scalar_online_softmax(int rows, int nb)
    {
        var rng = new Random(11 + rows + nb);
        const int n = 20;
        // query 0 and 1 start empty, 2 and 3 have a running max that the tile exceeds or not, 4 has no valid position,
        // 5 has scores far below its max (weights under e^-80 become exactly 0), 6 (where there are 7) starts empty
        int[] valid = [8, 3, 8, 5, 0, 8, 6];
        for (int i = 0; i < valid.Length; i++) valid[i] = Math.Min(valid[i], nb);
        float[] m = [float.NegativeInfinity, float.NegativeInfinity, 0.5f, 9f, 1f, 10f, float.NegativeInfinity];
        float[] l = [0, 0, 2.5f, 3f, 1.5f, 1f, 0];
        float[] s = new float[rows * 8], o = new float[rows * n];
        for (int i = 0; i < s.Length; i++) s[i] = rng.NextSingle() * 4 - 2;
        for (int j = 0; j < 8; j++) s[5 * 8 + j] = j < 4 ? -100f + j : 9.5f - j;
        for (int i = 0; i < o.Length; i++) o[i] = rng.NextSingle();
        float[] s0 = (float[])s.Clone(), m0 = (float[])m.Clone(), l0 = (float[])l.Clone(), o0 = (float[])o.Clone();
        fixed (float* sp = s, mp = m, lp = l, op = o)
        fixed (int* vp = valid)
            AttentionKernels.SoftmaxTile(sp, rows, nb, vp, mp, lp, op, n, n);
        for (int i = 0; i < rows; i++)
        {
            double mi = m0[i];
            for (int j = 0; j < valid[i]; j++)
                mi = Math.Max(mi, s0[i * 8 + j]);
            double f = double.IsNegativeInfinity(m0[i]) || mi == m0[i] ? 1 : Math.Exp(m0[i] - mi);
            double li = l0[i] * f;
            for (int j = 0; j < 8; j++)
            {
                double e = j < valid[i] ? Math.Exp(s0[i * 8 + j] - mi) : 0;
                if (e < Math.Exp(-80))
                    e = 0;
                li += e;
                Assert.True(Math.Abs(e - s[i * 8 + j]) <= 1e-6 * Math.Max(1, e), $"query {i}, position {j}: weight {s[i * 8 + j]}, want {e}");
            }
            Assert.True(Math.Abs(mi - m[i]) <= 1e-6, $"query {i}: max {m[i]}, want {mi}");
            Assert.True(Math.Abs(li - l[i]) <= 1e-5 * Math.Max(1, li), $"query {i}: sum {l[i]}, want {li}");
            for (int k = 0; k < n; k++)
            {
                double want = valid[i] > 0 ? o0[i * n + k] * f : o0[i * n + k];
                Assert.True(Math.Abs(want - o[i * n + k]) <= 1e-6, $"query {i}, accumulator {k}: {o[i * n + k]}, want {want}");
            }
        }
    }

    [Theory]
    [InlineData(CacheType.F32, 0, 1, 5, 48, 16)]
    [InlineData(CacheType.F32, 3, 300, 5, 48, 16)]
    [InlineData(CacheType.BF16, 0, 37, 5, 48, 16)]
    [InlineData(CacheType.BF16, 250, 530, 5, 48, 16)]
    [InlineData(CacheType.Int8, 17, 280, 5, 48, 16)]
    // whole groups of 8 heads: the bf16 path (with AVX-512), odd lengths, tiles straddling a cache block
    [InlineData(CacheType.BF16, 0, 1, 8, 64, 32)]
    [InlineData(CacheType.BF16, 0, 37, 8, 64, 32)]
    [InlineData(CacheType.BF16, 251, 530, 16, 64, 32)]
    [InlineData(CacheType.BF16, 5, 300, 8, 512, 64)]
    public void Range_attention_matches_a_double_softmax(CacheType type, int s0, int s1, int nh, int R, int Dr)
    {
        int W = R + Dr;
        var rng = new Random(s0 * 1000 + s1);
        var cache = new LatentCache(W, type, R);
        float[] row = new float[W];
        for (int s = 0; s < s1; s++)
        {
            for (int i = 0; i < W; i++) row[i] = rng.NextSingle() * 4 - 2;
            cache.Write(s, row);
        }
        float[] q = new float[nh * W];
        for (int i = 0; i < q.Length; i++) q[i] = rng.NextSingle() * 2 - 1;
        float[] m = new float[nh], l = new float[nh], o = new float[nh * R], rows = new float[(8 + nh) * W], sp = new float[nh * 8];
        const float scale = 0.3f;
        fixed (float* qp = q, mp = m, lp = l, op = o, rp = rows, spp = sp)
            Mla.AttendRange(qp, nh, R, Dr, cache, s0, s1, scale, mp, lp, op, rp, spp);
        // the reference reads the same stored (rounded) values
        float[] c = new float[(s1 - s0) * W];
        for (int s = s0; s < s1; s++)
            cache.Read(s, c.AsSpan((s - s0) * W, W));
        double maxDiff = 0;
        for (int h = 0; h < nh; h++)
        {
            double[] score = new double[s1 - s0];
            for (int s = 0; s < s1 - s0; s++)
            {
                for (int k = 0; k < W; k++)
                    score[s] += (double)q[h * W + k] * c[s * W + k];
                score[s] *= scale;
            }
            double mx = score.Max(), sum = score.Sum(x => Math.Exp(x - mx));
            for (int k = 0; k < R; k++)
            {
                double want = 0;
                for (int s = 0; s < s1 - s0; s++)
                    want += Math.Exp(score[s] - mx) / sum * c[s * W + k];
                maxDiff = Math.Max(maxDiff, Math.Abs(want - o[h * R + k] / l[h]));
            }
        }
        Assert.True(maxDiff <= 1e-5, $"{type} cache, {nh} heads, R {R}, Dr {Dr}, positions [{s0}, {s1}): max |diff| {maxDiff}");
    }

    // fp32 rows, and bf16 rows read in the products with the accumulators in Bf16.EvenOdd order
    [Theory]
    [InlineData(32, 8, false)]
    [InlineData(64, 3, false)]
    [InlineData(512, 8, false)]
    [InlineData(32, 8, true)]
    [InlineData(64, 3, true)]
    [InlineData(512, 7, true)]
    public void Eight_head_accumulation_matches_double(int R, int nb, bool bf16)
    {
        if (bf16 && !System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            return; // the bf16 kernel is AVX-512 only (AttendRange takes it only then)
        var rng = new Random(R + nb);
        int stride = R + 64;
        float[] rows = new float[nb * stride], e = new float[8 * 8], o = new float[8 * R];
        for (int i = 0; i < rows.Length; i++) rows[i] = rng.NextSingle() * 2 - 1;
        ushort[] rows16 = new ushort[rows.Length];
        Bf16.FromFloat(rows, rows16);
        if (bf16)
            Bf16.ToFloat(rows16, rows); // the reference reads the stored (rounded) values
        for (int i = 0; i < e.Length; i++) e[i] = rng.NextSingle();
        for (int i = 0; i < o.Length; i++) o[i] = rng.NextSingle();
        double[] want = new double[o.Length];
        for (int h = 0; h < 8; h++)
        {
            for (int k = 0; k < R; k++)
            {
                want[h * R + k] = o[h * R + k];
                for (int j = 0; j < nb; j++)
                    want[h * R + k] += (double)e[h * 8 + j] * rows[j * stride + k];
            }
        }
        fixed (float* op = o, rp = rows, ep = e)
        fixed (ushort* r16 = rows16)
        {
            if (bf16)
            {
                float[] perm = new float[o.Length];
                fixed (float* pp = perm)
                {
                    Bf16.EvenOdd(op, pp, o.Length);
                    AttentionKernels.AccumulateBf16Heads8(pp, R, r16, stride, ep, nb);
                    Bf16.Interleave(pp, o.Length);
                }
                perm.CopyTo(o, 0);
            }
            else
            {
                AttentionKernels.AccumulateHeads8(op, R, rp, stride, ep, nb);
            }
        }
        double diff = 0;
        for (int i = 0; i < o.Length; i++)
            diff = Math.Max(diff, Math.Abs(want[i] - o[i]));
        Assert.True(diff <= 1e-5, $"R {R}, {nb} rows, {(bf16 ? "bf16" : "fp32")}: max |diff| {diff}");
    }
}
