// Q6_K and Q4_0 (src/SharpSeek.Tensors/Q6KMatrix.cs, Q4_0Matrix.cs): the SIMD dot kernels against their scalar
// references at every block count up to 9, dequantization against an independent decoding of llama.cpp's block
// layout, quantization error bounds, and the product against the fp32 product of the dequantized weights.
// .ci/run reruns them with DOTNET_EnableAVXVNNI=0, DOTNET_EnableAVX512=0, DOTNET_EnableAVX2=0 and
// DOTNET_EnableHWIntrinsic=0 to cover every path.
using SharpSeek.Tensors;
using SharpSeek.Tests;

namespace SharpSeek.Gguf.Tests;

public sealed unsafe class GgufQuantKernelTests
{
    private static float[] Gaussian(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++)
            v[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));
        return v;
    }

    private static (WeightMatrix M, NativeBuffer Buf) Quantized(WeightFormat f, float[] values, int rows, int cols)
    {
        var src = new F32Matrix(rows, cols, values);
        var owners = new List<IDisposable>();
        WeightMatrix m = f switch
        {
            WeightFormat.Q6_K => Q6KMatrix.Quantize(src, owners),
            WeightFormat.Mxfp4 => Mxfp4Matrix.Quantize(src, owners),
            _ => Q4_0Matrix.Quantize(src, owners),
        };
        return (m, (NativeBuffer)owners[0]);
    }

    [Theory]
    [InlineData(WeightFormat.Q6_K)]
    [InlineData(WeightFormat.Q4_0)]
    [InlineData(WeightFormat.Mxfp4)]
    public void Simd_dot_matches_scalar_reference_at_every_block_count(WeightFormat f)
    {
        int bv = f == WeightFormat.Q6_K ? 256 : 32;
        for (int blocks = 0; blocks <= 9; blocks++)
        {
            int cols = blocks * bv;
            float[] w = Gaussian(Math.Max(cols, 1) * 3, blocks);
            float[] x = Gaussian(Math.Max(cols, 1), 100 + blocks, 3f);
            if (cols == 0)
                continue;
            (WeightMatrix m, NativeBuffer buf) = Quantized(f, w.AsSpan(0, cols * 3).ToArray(), 3, cols);
            using (buf)
            {
                var q = new QuantizedInput();
                q.Quantize(m.InputFormat, x, 1, cols);
                for (int r = 0; r < 3; r++)
                {
                    float simd, scalar;
                    fixed (sbyte* q8 = m is Q6KMatrix ? q.Q8.ToArray() : [])
                    fixed (short* q16 = m is Q4_0Matrix or Mxfp4Matrix ? q.Q16.ToArray() : [])
                    fixed (float* s = q.Scales.ToArray())
                    {
                        if (m is Q6KMatrix k)
                        {
                            simd = Q6KMatrix.Dot(k.RowPointer(r), q8, s, blocks);
                            scalar = Q6KMatrix.DotScalar(k.RowPointer(r), q8, s, blocks);
                        }
                        else if (m is Mxfp4Matrix x4)
                        {
                            simd = Mxfp4Matrix.Dot(x4.RowPointer(r), q16, s, blocks);
                            scalar = Mxfp4Matrix.DotScalar(x4.RowPointer(r), q16, s, blocks);
                        }
                        else
                        {
                            var z = (Q4_0Matrix)m;
                            simd = Q4_0Matrix.Dot(z.RowPointer(r), q16, s, blocks);
                            scalar = Q4_0Matrix.DotScalar(z.RowPointer(r), q16, s, blocks);
                        }
                    }
                    Assert.Equal(scalar, simd, Math.Max(1e-4f, Math.Abs(scalar) * 1e-5f));
                }
            }
        }
    }

    [Theory]
    [InlineData(WeightFormat.Q6_K)]
    [InlineData(WeightFormat.Q4_0)]
    [InlineData(WeightFormat.Mxfp4)]
    public void Multi_token_product_matches_per_token_scalar_dots(WeightFormat f)
    {
        const int rows = 6, cols = 768, tokens = 9; // two 4-token tiles and a remainder
        (WeightMatrix m, NativeBuffer buf) = Quantized(f, Gaussian(rows * cols, 31), rows, cols);
        using (buf)
        {
            var q = new QuantizedInput();
            q.Quantize(m.InputFormat, Gaussian(tokens * cols, 32), tokens, cols);
            var y = new float[tokens * (rows + 3)];
            m.MatMulQuantized(q, y, rows + 3, 0, rows);
            int blocks = cols / (f == WeightFormat.Q6_K ? 256 : 32);
            fixed (sbyte* q8 = m is Q6KMatrix ? q.Q8.ToArray() : [])
            fixed (short* q16 = m is Q4_0Matrix or Mxfp4Matrix ? q.Q16.ToArray() : [])
            fixed (float* s = q.Scales.ToArray())
            {
                for (int t = 0; t < tokens; t++)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        float want = m switch
                        {
                            Q6KMatrix k => Q6KMatrix.DotScalar(k.RowPointer(r), q8 + t * cols, s + t * blocks, blocks),
                            Mxfp4Matrix x4 => Mxfp4Matrix.DotScalar(x4.RowPointer(r), q16 + t * cols, s + t * blocks, blocks),
                            _ => Q4_0Matrix.DotScalar(((Q4_0Matrix)m).RowPointer(r), q16 + t * cols, s + t * blocks, blocks),
                        };
                        Assert.Equal(want, y[t * (rows + 3) + r], Math.Max(1e-4f, Math.Abs(want) * 1e-5f));
                    }
                }
            }
        }
    }

    [Fact]
    public void Mxfp4_blocks_decode_as_the_OCP_E2M1_and_E8M0_definitions()
    {
        // raw blocks with every code and a range of exponents, decoded independently: sign bit 3, exponent bits 2..1
        // (bias 1), mantissa bit 0; the scale byte is 2^(e-127), subnormal below e = 1
        var rng = new Random(9);
        const int rows = 2, blocks = 40;
        using var buf = new NativeBuffer((long)rows * blocks * Mxfp4Matrix.BlockBytes);
        byte* p = (byte*)buf.Pointer;
        for (int i = 0; i < rows * blocks; i++)
        {
            byte* blk = p + (long)i * Mxfp4Matrix.BlockBytes;
            blk[0] = i < 4 ? (byte)i : (byte)rng.Next(100, 160);
            for (int j = 0; j < 16; j++)
                blk[1 + j] = (byte)rng.Next(256);
        }
        var m = new Mxfp4Matrix(p, rows, blocks * 32, buf);
        var row = new float[blocks * 32];
        for (int r = 0; r < rows; r++)
        {
            m.ReadRow(r, row);
            for (int b = 0; b < blocks; b++)
            {
                byte* blk = p + ((long)r * blocks + b) * Mxfp4Matrix.BlockBytes;
                double scale = Math.Pow(2, blk[0] - 127);
                for (int j = 0; j < 32; j++)
                {
                    int code = j < 16 ? blk[1 + j] & 0xF : blk[1 + j - 16] >> 4;
                    int sign = code >> 3, exp = (code >> 1) & 3, man = code & 1;
                    double e2m1 = exp == 0 ? man * 0.5 : Math.Pow(2, exp - 1) * (1 + man * 0.5);
                    Assert.Equal((float)((sign == 1 ? -1 : 1) * e2m1 * scale), row[b * 32 + j]);
                }
            }
        }
    }

    [Fact]
    public void Mxfp4_quantization_keeps_values_within_half_a_code_step()
    {
        float[] w = Gaussian(4 * 256, 77);
        (WeightMatrix m, NativeBuffer buf) = Quantized(WeightFormat.Mxfp4, w, 4, 256);
        using (buf)
        {
            var row = new float[256];
            for (int r = 0; r < 4; r++)
            {
                m.ReadRow(r, row);
                for (int b = 0; b < 8; b++)
                {
                    float amax = 0;
                    for (int j = 0; j < 32; j++)
                        amax = MathF.Max(amax, MathF.Abs(w[r * 256 + b * 32 + j]));
                    // scale 2^floor(log2 amax) / 4: codes up to 6 reach 1.5·2^floor(log2 amax), steps at most 2 scale units
                    float unit = MathF.Pow(2, MathF.Floor(MathF.Log2(amax)) - 2);
                    for (int j = 0; j < 32; j++)
                    {
                        float x = w[r * 256 + b * 32 + j], q = row[b * 32 + j];
                        float bound = MathF.Abs(x) > 6 * unit ? MathF.Abs(x) - 6 * unit + 1e-6f : unit + 1e-6f;
                        Assert.True(MathF.Abs(x - q) <= bound, $"row {r} block {b} value {j}: {x} -> {q} (unit {unit})");
                    }
                }
            }
        }
    }

    [Fact]
    public void Q6_K_product_holds_at_the_integer_extremes_at_every_block_count()
    {
        // raw blocks: all-ones codes (63) with scale -128 in the first row, random bytes elsewhere; activations that
        // quantize to ±127: the int16 intermediates (vpmaddubsw, vpackssdw) must not saturate
        var rng = new Random(5);
        for (int blocks = 1; blocks <= 5; blocks++)
        {
            int rows = 3, cols = blocks * 256;
            using var buf = new NativeBuffer((long)rows * blocks * Q6KMatrix.BlockBytes);
            byte* p = (byte*)buf.Pointer;
            for (int r = 0; r < rows; r++)
            {
                for (int b = 0; b < blocks; b++)
                {
                    byte* blk = p + ((long)r * blocks + b) * Q6KMatrix.BlockBytes;
                    for (int i = 0; i < 208; i++)
                        blk[i] = r == 0 ? (i >= 192 ? (byte)0x80 : (byte)0xFF) : (byte)rng.Next(256);
                    *(ushort*)(blk + 208) = (ushort)(r == 2 ? 0x0003 : 0x2C00); // a subnormal d in the last row
                }
            }
            var m = new Q6KMatrix(p, rows, cols, buf);
            foreach (int tokens in new[] { 1, 4, 6 })
            {
                var x = new float[tokens * cols];
                for (int i = 0; i < x.Length; i++)
                    x[i] = i % 3 == 0 ? -1f : 1f;
                var q = new QuantizedInput();
                q.Quantize(ActivationFormat.Q8K, x, tokens, cols);
                var y = new float[tokens * rows];
                m.MatMulQuantized(q, y, rows, 0, rows);
                fixed (sbyte* q8 = q.Q8.ToArray())
                fixed (float* s = q.Scales.ToArray())
                {
                    for (int t = 0; t < tokens; t++)
                    {
                        for (int r = 0; r < rows; r++)
                        {
                            float want = Q6KMatrix.DotScalar(m.RowPointer(r), q8 + t * cols, s + t * blocks, blocks);
                            float got = y[t * rows + r];
                            Assert.True(Math.Abs(want - got) <= Math.Abs(want) * 1e-5f + 1e-6f,
                                $"{blocks} blocks, row {r}, token {t}: kernel {got} vs scalar {want} (|diff| {Math.Abs(want - got)})");
                        }
                    }
                    if (tokens == 1)
                    {
                        // a band starting mid-matrix (one token pairs the rows of its two halves)
                        var band = new float[2];
                        m.MatMulQuantized(q, band, 2, 1, 2);
                        for (int r = 1; r < 3; r++)
                        {
                            float want = Q6KMatrix.DotScalar(m.RowPointer(r), q8, s, blocks);
                            Assert.True(Math.Abs(want - band[r - 1]) <= Math.Abs(want) * 1e-5f + 1e-6f, $"{blocks} blocks, band row {r}: {band[r - 1]} vs {want}");
                        }
                    }
                }
            }
        }
    }

    /// <summary>llama.cpp dequantize_row_q6_K, written out loop by loop.</summary>
    private static float[] DequantizeQ6K(byte[] blk)
    {
        var y = new float[256];
        float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 208));
        int ql = 0, qh = 128, sc = 192, o = 0;
        for (int n = 0; n < 256; n += 128)
        {
            for (int l = 0; l < 32; l++)
            {
                int isc = l / 16;
                int q1 = ((blk[ql + l] & 0xF) | (((blk[qh + l] >> 0) & 3) << 4)) - 32;
                int q2 = ((blk[ql + l + 32] & 0xF) | (((blk[qh + l] >> 2) & 3) << 4)) - 32;
                int q3 = ((blk[ql + l] >> 4) | (((blk[qh + l] >> 4) & 3) << 4)) - 32;
                int q4 = ((blk[ql + l + 32] >> 4) | (((blk[qh + l] >> 6) & 3) << 4)) - 32;
                y[o + l] = d * (sbyte)blk[sc + isc] * q1;
                y[o + l + 32] = d * (sbyte)blk[sc + isc + 2] * q2;
                y[o + l + 64] = d * (sbyte)blk[sc + isc + 4] * q3;
                y[o + l + 96] = d * (sbyte)blk[sc + isc + 6] * q4;
            }
            o += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
        return y;
    }

    [Fact]
    public void Q6K_dequantizes_as_llama_cpp_on_random_bytes()
    {
        var r = new Random(3);
        for (int trial = 0; trial < 50; trial++)
        {
            byte[] blk = new byte[210];
            r.NextBytes(blk);
            blk[208] = (byte)r.Next(256);
            blk[209] = (byte)r.Next(0x3C); // a finite half scale
            fixed (byte* p = blk)
            {
                var m = new Q6KMatrix(p, 1, 256, null);
                var got = new float[256];
                m.ReadRow(0, got);
                Assert.Equal(DequantizeQ6K(blk), got);
            }
        }
    }

    [Fact]
    public void Q4_0_dequantizes_as_llama_cpp_on_random_bytes()
    {
        var r = new Random(4);
        for (int trial = 0; trial < 50; trial++)
        {
            byte[] blk = new byte[18];
            r.NextBytes(blk);
            blk[1] = (byte)r.Next(0x3C);
            float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 0));
            var want = new float[32];
            for (int j = 0; j < 16; j++)
            {
                want[j] = ((blk[2 + j] & 0x0F) - 8) * d;
                want[j + 16] = ((blk[2 + j] >> 4) - 8) * d;
            }
            fixed (byte* p = blk)
            {
                var got = new float[32];
                new Q4_0Matrix(p, 1, 32, null).ReadRow(0, got);
                Assert.Equal(want, got);
            }
        }
    }

    [Theory]
    [InlineData(WeightFormat.Q6_K, 0.025)] // 64 levels over ±max of 16 values: ~max/32/√12 ≈ 0.016 σ for Gaussian weights
    [InlineData(WeightFormat.Q4_0, 0.11)]
    public void Quantization_error_is_within_the_format_bound(WeightFormat f, double tol)
    {
        const int rows = 8, cols = 1024;
        float[] w = Gaussian(rows * cols, 11);
        w[5] = 9f; // an outlier must not break a block
        (WeightMatrix m, NativeBuffer buf) = Quantized(f, w, rows, cols);
        using (buf)
        {
            float[] back = m.ToFloatArray();
            Numerics.AssertRelRms(w, back, tol, $"{f} round trip");
        }
    }

    [Fact]
    public void Q6K_quantizer_keeps_zero_blocks_and_the_extreme_exactly()
    {
        var w = new float[512];
        for (int i = 256; i < 512; i++)
            w[i] = (i % 7 - 3) * 0.5f; // values on a grid of 0.5 with max |x| = 1.5
        (WeightMatrix m, NativeBuffer buf) = Quantized(WeightFormat.Q6_K, w, 1, 512);
        using (buf)
        {
            float[] back = m.ToFloatArray();
            Assert.All(back.Take(256), v => Assert.Equal(0f, v));
            Assert.Equal(-1.5f, back.Skip(256).Min(), 2);
            Numerics.AssertClose(w, back, 0.03, "Q6_K on a coarse grid");
        }
    }

    [Theory]
    [InlineData(WeightFormat.Q6_K, 1)]
    [InlineData(WeightFormat.Q6_K, 5)]
    [InlineData(WeightFormat.Q4_0, 1)]
    [InlineData(WeightFormat.Q4_0, 6)]
    public void Product_matches_fp32_product_of_the_dequantized_weights(WeightFormat f, int tokens)
    {
        const int rows = 37, cols = 512;
        (WeightMatrix m, NativeBuffer buf) = Quantized(f, Gaussian(rows * cols, 21), rows, cols);
        using (buf)
        using (var backend = new ThreadedBackend(2))
        {
            float[] x = Gaussian(tokens * cols, 22);
            var want = new float[tokens * rows];
            new F32Matrix(rows, cols, m.ToFloatArray()).MatMul(x, tokens, want);
            var got = new float[tokens * rows];
            backend.MatMul(m, x, tokens, got);
            // only the activations' int8 rounding separates the two
            Numerics.AssertRelRms(want, got, 0.01, $"{f} x {tokens} tokens (threaded)");
            var single = new float[tokens * rows];
            m.MatMul(x, tokens, single);
            Numerics.AssertRelRms(want, single, 0.01, $"{f} x {tokens} tokens");
            var row = new float[rows];
            m.MatVec(x.AsSpan(0, cols), row);
            Numerics.AssertRelRms(want.AsSpan(0, rows), row, 0.01, $"{f} matvec");
            Assert.Equal(want[3], m.DotRow(3, x.AsSpan(0, cols)), 1e-3f);
        }
    }

    [Fact]
    public void Shapes_that_are_not_whole_blocks_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new Q6KMatrix(null, 1, 100, null));
        Assert.Throws<ArgumentException>(() => new Q4_0Matrix(null, 1, 40, null));
        byte* dst = stackalloc byte[210];
        Assert.Throws<ArgumentException>(() => Q6KMatrix.QuantizeRow(new float[100], dst));
    }
}
