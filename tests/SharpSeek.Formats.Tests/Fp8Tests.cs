using SharpSeek.Tensors;

namespace SharpSeek.Formats.Tests;

public sealed unsafe class Fp8Tests
{
    [Theory]
    [InlineData(0x00, 0f)]
    [InlineData(0x80, -0f)]
    [InlineData(0x01, 0.001953125f)]      // smallest subnormal: 2^-6 · 1/8 = 2^-9
    [InlineData(0x07, 0.013671875f)]      // largest subnormal: 2^-6 · 7/8
    [InlineData(0x08, 0.015625f)]         // smallest normal 2^-6
    [InlineData(0x38, 1f)]
    [InlineData(0x3C, 1.5f)]
    [InlineData(0xC0, -2f)]
    [InlineData(0x7E, 448f)]              // largest finite
    [InlineData(0xFE, -448f)]
    [InlineData(0x77, 240f)]
    public void Decodes_bytes(int b, float v)
    {
        Assert.Equal(v, Fp8E4M3.ToFloat((byte)b));
        Assert.Equal(BitConverter.SingleToInt32Bits(v), BitConverter.SingleToInt32Bits(Fp8E4M3.Decode((byte)b)));
    }

    [Fact]
    public void Nan_codes_and_round_trip()
    {
        Assert.True(float.IsNaN(Fp8E4M3.ToFloat(0x7F)));
        Assert.True(float.IsNaN(Fp8E4M3.ToFloat(0xFF)));
        for (int b = 0; b < 256; b++)
        {
            if (b is 0x7F or 0xFF)
                continue;
            Assert.Equal(b, Fp8E4M3.FromFloat(Fp8E4M3.ToFloat((byte)b)));
        }
        Assert.Equal(0x7E, Fp8E4M3.FromFloat(1e6f));
        Assert.Equal(0x38, Fp8E4M3.FromFloat(1.0624f)); // rounds to 1.0 (step 0.125)
    }

    [Fact]
    public void Block_matrix_uses_the_scale_of_each_block_including_partial_ones()
    {
        // [5, 7] weight with 2x3 blocks → scale grid [3, 3], last row/column blocks partial
        int rows = 5, cols = 7, br = 2, bc = 3;
        var rng = new Random(7);
        byte[] q = new byte[rows * cols];
        for (int i = 0; i < q.Length; i++)
            q[i] = (byte)rng.Next(0, 0x7E);   // includes subnormal codes
        float[] scales = [1f, 2f, 0.5f, -1f, 4f, 0.25f, 3f, 1.5f, -2f];
        float[] x = Enumerable.Range(0, cols).Select(i => (float)rng.NextDouble() - 0.5f).ToArray();
        fixed (byte* qp = q)
        fixed (float* sp = scales)
        {
            var m = new Fp8BlockMatrix(qp, sp, rows, cols, br, bc, null);
            Assert.Equal(3, m.ScaleCols);
            var y = new float[rows];
            m.MatVec(x, y);
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                double want = 0;
                for (int c = 0; c < cols; c++)
                {
                    double w = Fp8E4M3.Decode(q[r * cols + c]) * scales[r / br * 3 + c / bc];
                    want += w * x[c];
                }
                Assert.Equal(want, y[r], 1e-5 * Math.Max(1, Math.Abs(want)));
                m.ReadRow(r, row);
                Assert.Equal(Fp8E4M3.Decode(q[r * cols + 6]) * scales[r / br * 3 + 2], row[6]);
            }
        }
    }

    [Fact]
    public void Bf16_round_trip_and_rounding()
    {
        Assert.Equal(1f, Bf16.ToFloat(Bf16.FromFloat(1f)));
        Assert.Equal(0x3F80, Bf16.FromFloat(1.00390625f));  // tie → even (down)
        Assert.Equal(0x3F82, Bf16.FromFloat(1.01171875f));  // tie → even (up)
        Assert.True(float.IsNaN(Bf16.ToFloat(Bf16.FromFloat(float.NaN))));
        var src = Enumerable.Range(0, 37).Select(i => (ushort)(0x3F00 + i * 3)).ToArray();
        var dst = new float[37];
        Bf16.ToFloat(src, dst);
        for (int i = 0; i < src.Length; i++)
            Assert.Equal(Bf16.ToFloat(src[i]), dst[i]);
    }
}
