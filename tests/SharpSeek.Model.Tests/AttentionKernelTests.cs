// The score kernel of absorbed attention (Mla.Scores: 4 heads x 4 positions register blocks, a dot-product fallback
// for the rest) against a double-precision dot product, at head counts, tile sizes and row widths around the blocks.
using SharpSeek.Model.Layers;

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
                    Mla.Scores(qp, nh, rp, nb, w, 0.125f, s);
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
            Mla.AccumulateRows(op, n, rp, stride, e, nb);
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
            Mla.AccumulateRows2(pa, pb, n, rp, stride, ea, eb);
        for (int k = 0; k < n; k++)
        {
            Assert.True(Math.Abs(wa[k] - oa[k]) <= 1e-5, $"n {n}, first accumulator, column {k}: |diff| {Math.Abs(wa[k] - oa[k])}");
            Assert.True(Math.Abs(wb[k] - ob[k]) <= 1e-5, $"n {n}, second accumulator, column {k}: |diff| {Math.Abs(wb[k] - ob[k])}");
        }
    }
}
