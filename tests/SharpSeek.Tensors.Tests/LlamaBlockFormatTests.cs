// Q4_1, Q5_0, Q5_1 (SmallBlockMatrix) and Q5_K against ggml's definitions written out here (dequantize_row_q4_1 /
// q5_0 / q5_1 / q5_K), and their integer products against the scalar references and fp32 products of the dequantized rows.
using SharpSeek.Tensors;
using SharpSeek.Tests;

namespace SharpSeek.Tensors.Tests;

public sealed unsafe class LlamaBlockFormatTests
{
    // ggml-quants.c dequantize_row_*: byte layout of one block → its 32 values
    private static readonly sbyte[] s_kvaluesIq4nl = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    private static float[] Definition(WeightFormat f, byte[] blk)
    {
        float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 0));
        if (f == WeightFormat.IQ4_NL) // dequantize_row_iq4_nl
        {
            var v = new float[32];
            for (int j = 0; j < 16; j++)
            {
                v[j] = d * s_kvaluesIq4nl[blk[2 + j] & 0xf];
                v[j + 16] = d * s_kvaluesIq4nl[blk[2 + j] >> 4];
            }
            return v;
        }
        bool offset = f != WeightFormat.Q5_0, five = f != WeightFormat.Q4_1;
        float m = offset ? (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 2)) : 0;
        int qhAt = offset ? 4 : 2, qsAt = qhAt + (five ? 4 : 0);
        uint qh = five ? BitConverter.ToUInt32(blk, qhAt) : 0;
        var y = new float[32];
        for (int j = 0; j < 16; j++)
        {
            int x0 = blk[qsAt + j] & 0x0F, x1 = blk[qsAt + j] >> 4;
            if (five)
            {
                x0 |= (int)((qh >> j) << 4) & 0x10;
                x1 |= (int)(qh >> (j + 12)) & 0x10;
            }
            y[j] = offset ? x0 * d + m : (x0 - 16) * d;
            y[j + 16] = offset ? x1 * d + m : (x1 - 16) * d;
        }
        return y;
    }

    /// <summary>
    /// The products of <paramref name="m"/> at 1, 3 and 6 tokens: against fp32 products of its dequantized rows (within
    /// <paramref name="activationError"/> of Σ|w·x|: the activations' rounding, int16 or int8), against the scalar
    /// definition (<paramref name="scalar"/>(input, token, row), within 1e-5 of Σ|w·x|: the same integers, summed in
    /// another order), and every token of a batch against the same token alone, bit for bit.
    /// </summary>
    private static void AssertProducts(WeightMatrix m, ActivationFormat format, double activationError, Random rng, Func<QuantizedInput, int, int, float> scalar)
    {
        int rows = m.Rows, cols = m.Cols;
        var row = new float[cols];
        foreach (int tokens in new[] { 1, 3, 6 })
        {
            float[] x = Enumerable.Range(0, tokens * cols).Select(i => i % 7 == 0 ? -1f : (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var input = new QuantizedInput();
            input.Quantize(format, x, tokens, cols);
            float[] y = new float[tokens * rows];
            m.MatMulQuantized(input, y, rows, 0, rows);
            for (int t = 0; t < tokens; t++)
            {
                for (int r = 0; r < rows; r++)
                {
                    m.ReadRow(r, row);
                    double exact = 0, scale = 0;
                    for (int i = 0; i < cols; i++)
                    {
                        exact += (double)row[i] * x[t * cols + i];
                        scale += Math.Abs((double)row[i] * x[t * cols + i]);
                    }
                    float got = y[t * rows + r], want = scalar(input, t, r);
                    Assert.True(Math.Abs(got - exact) <= activationError * scale + 1e-6, $"{m.Format} token {t} row {r}: {got} vs fp32 {exact} (scale {scale})");
                    Assert.True(Math.Abs(got - want) <= 1e-5 * scale + 1e-6, $"{m.Format} token {t} row {r}: kernel {got} vs its scalar definition {want}");
                }
            }
            for (int t = 0; t < tokens; t++)
            {
                var one = new QuantizedInput();
                one.Quantize(format, x.AsSpan(t * cols, cols), 1, cols);
                float[] alone = new float[rows];
                m.MatMulQuantized(one, alone, rows, 0, rows);
                Assert.Equal(alone, y.AsSpan(t * rows, rows).ToArray());
            }
        }
    }

    [Theory]
    [InlineData(WeightFormat.Q4_1)]
    [InlineData(WeightFormat.Q5_0)]
    [InlineData(WeightFormat.Q5_1)]
    [InlineData(WeightFormat.IQ4_NL)]
    public void Blocks_read_as_ggml_defines_them_and_products_match_the_references(WeightFormat f)
    {
        int rows = 7, cols = 96, bytes = SmallBlockMatrix.BlockBytes(f), blocks = cols / 32;
        var rng = new Random((int)f);
        var data = new byte[rows * blocks * bytes];
        rng.NextBytes(data);
        ushort[] halves = [0x3C00, 0x2E66, 0xB400, 0x0001, 0x1C00, 0x8000];
        for (int i = 0; i < rows * blocks; i++)
        {
            BitConverter.TryWriteBytes(data.AsSpan(i * bytes), halves[i % halves.Length]);
            bool offset = f is WeightFormat.Q4_1 or WeightFormat.Q5_1;
            if (offset)
                BitConverter.TryWriteBytes(data.AsSpan(i * bytes + 2), halves[(i + 2) % halves.Length]);
            if (i % 5 == 0) // extreme codes: every bit set
                data.AsSpan(i * bytes + (offset ? 4 : 2), bytes - (offset ? 4 : 2)).Fill(0xFF);
        }
        fixed (byte* p = data)
        {
            var m = new SmallBlockMatrix(f, p, rows, cols, null);
            Assert.Equal(f, m.Format);
            Assert.Equal((long)rows * blocks * bytes, m.ByteSize);
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                m.ReadRow(r, row);
                for (int b = 0; b < blocks; b++)
                {
                    float[] want = Definition(f, data.AsSpan((r * blocks + b) * bytes, bytes).ToArray());
                    for (int j = 0; j < 32; j++)
                        Assert.True(want[j] == row[b * 32 + j], $"{f} row {r} block {b} value {j}: {row[b * 32 + j]} vs ggml's {want[j]}");
                }
            }
            AssertProducts(m, ActivationFormat.Q8, 1e-4, rng, (input, t, r) =>
            {
                fixed (short* xq = input.Q16)
                fixed (float* xs = input.Scales)
                    return m.DotScalar(m.RowPointer(r), xq + t * cols, xs + t * blocks, blocks);
            });
        }
        Assert.Throws<ArgumentException>(() => SmallBlockMatrix.BlockBytes(WeightFormat.Q8_0));
    }

    // dequantize_row_q5_K: for each 64 values j, scales (is, is + 1), low nibbles with bit 2j/.. of qh, then high nibbles
    private static float[] Q5KDefinition(byte[] blk)
    {
        float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 0)), min = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 2));
        (int, int) ScaleMin(int j) => j < 4 ? (blk[4 + j] & 63, blk[4 + j + 4] & 63)
            : ((blk[4 + j + 4] & 0xF) | ((blk[4 + j - 4] >> 6) << 4), (blk[4 + j + 4] >> 4) | ((blk[4 + j] >> 6) << 4));
        var y = new float[256];
        int n = 0, ql = 48, isub = 0, u1 = 1, u2 = 2;
        for (int j = 0; j < 256; j += 64)
        {
            (int sc1, int m1) = ScaleMin(isub);
            (int sc2, int m2) = ScaleMin(isub + 1);
            float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
            for (int l = 0; l < 32; l++)
                y[n++] = d1 * ((blk[ql + l] & 0xF) + ((blk[16 + l] & u1) != 0 ? 16 : 0)) - mm1;
            for (int l = 0; l < 32; l++)
                y[n++] = d2 * ((blk[ql + l] >> 4) + ((blk[16 + l] & u2) != 0 ? 16 : 0)) - mm2;
            ql += 32;
            isub += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
        return y;
    }

    [Fact]
    public void Q5_K_blocks_read_as_ggml_defines_them_and_products_match_the_references()
    {
        int rows = 5, cols = 512, blocks = cols / 256, bytes = Q5KMatrix.BlockBytes;
        var rng = new Random(55);
        var data = new byte[rows * blocks * bytes];
        rng.NextBytes(data);
        ushort[] halves = [0x3C00, 0x2E66, 0x1C00, 0x0001, 0x2000];
        for (int i = 0; i < rows * blocks; i++)
        {
            BitConverter.TryWriteBytes(data.AsSpan(i * bytes), halves[i % halves.Length]);
            BitConverter.TryWriteBytes(data.AsSpan(i * bytes + 2), halves[(i + 1) % halves.Length]);
            if (i % 3 == 0) // every code 31, every scale and min 63
                data.AsSpan(i * bytes + 4, bytes - 4).Fill(0xFF);
        }
        fixed (byte* p = data)
        {
            var m = new Q5KMatrix(p, rows, cols, null);
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                m.ReadRow(r, row);
                for (int b = 0; b < blocks; b++)
                {
                    float[] want = Q5KDefinition(data.AsSpan((r * blocks + b) * bytes, bytes).ToArray());
                    for (int j = 0; j < 256; j++)
                        Assert.True(want[j] == row[b * 256 + j], $"Q5_K row {r} block {b} value {j}: {row[b * 256 + j]} vs ggml's {want[j]}");
                }
            }
            AssertProducts(m, ActivationFormat.Q8K, 0.01, rng, (input, t, r) =>
            {
                fixed (sbyte* xq = input.Q8)
                fixed (float* xd = input.Scales)
                fixed (int* xs = input.Sums)
                    return Q5KMatrix.DotScalar(m.RowPointer(r), xq + t * cols, xd + t * blocks, xs + t * blocks * 8, blocks);
            });
        }
    }

    // dequantize_row_q2_K and dequantize_row_q3_K, written out as ggml-quants.c loops over them
    private static float[] LowBitDefinition(WeightFormat f, byte[] blk)
    {
        var y = new float[256];
        int n = 0;
        if (f == WeightFormat.Q2_K)
        {
            float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 80)), min = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 82));
            int q = 16, isc = 0;
            for (int half = 0; half < 2; half++)
            {
                for (int j = 0, shift = 0; j < 4; j++, shift += 2)
                {
                    for (int part = 0; part < 2; part++)
                    {
                        byte sc = blk[isc++];
                        float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                        for (int l = 0; l < 16; l++)
                            y[n++] = dl * ((sbyte)((blk[q + 16 * part + l] >> shift) & 3)) - ml;
                    }
                }
                q += 32;
            }
            return y;
        }
        float dAll = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 108));
        uint a0 = BitConverter.ToUInt32(blk, 96), a1 = BitConverter.ToUInt32(blk, 100), tmp = BitConverter.ToUInt32(blk, 104);
        const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        uint[] aux = [(a0 & kmask2) | (((tmp >> 0) & kmask1) << 4), (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4),
                      ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4), ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)];
        sbyte[] scales = aux.SelectMany(BitConverter.GetBytes).Select(b => (sbyte)b).ToArray();
        int qs = 32, iscale = 0, m = 1;
        for (int half = 0; half < 2; half++)
        {
            for (int j = 0, shift = 0; j < 4; j++, shift += 2, m <<= 1)
            {
                for (int part = 0; part < 2; part++)
                {
                    float dl = dAll * (scales[iscale++] - 32);
                    for (int l = 0; l < 16; l++)
                        y[n++] = dl * ((sbyte)((blk[qs + 16 * part + l] >> shift) & 3) - ((blk[16 * part + l] & m) != 0 ? 0 : 4));
                }
            }
            qs += 32;
        }
        return y;
    }

    [Theory]
    [InlineData(WeightFormat.Q2_K)]
    [InlineData(WeightFormat.Q3_K)]
    public void Q2_K_and_Q3_K_blocks_read_as_ggml_defines_them_and_products_match_the_references(WeightFormat f)
    {
        int rows = 5, cols = 512, blocks = cols / 256, bytes = LowBitKMatrix.BlockBytes(f);
        var rng = new Random((int)f + 100);
        var data = new byte[rows * blocks * bytes];
        rng.NextBytes(data);
        ushort[] halves = [0x3C00, 0x2E66, 0x1C00, 0x0001, 0x2000, 0xAE66];
        int dAt = f == WeightFormat.Q2_K ? 80 : 108;
        for (int i = 0; i < rows * blocks; i++)
        {
            if (i % 4 == 0) // every bit set: the largest codes, scales and mins
                data.AsSpan(i * bytes, bytes).Fill(0xFF);
            BitConverter.TryWriteBytes(data.AsSpan(i * bytes + dAt), halves[i % halves.Length]);
            if (f == WeightFormat.Q2_K)
                BitConverter.TryWriteBytes(data.AsSpan(i * bytes + 82), halves[(i + 1) % halves.Length]);
        }
        fixed (byte* p = data)
        {
            var m = new LowBitKMatrix(f, p, rows, cols, null);
            Assert.Equal(f, m.Format);
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                m.ReadRow(r, row);
                for (int b = 0; b < blocks; b++)
                {
                    float[] want = LowBitDefinition(f, data.AsSpan((r * blocks + b) * bytes, bytes).ToArray());
                    for (int j = 0; j < 256; j++)
                        Assert.True(want[j] == row[b * 256 + j], $"{f} row {r} block {b} value {j}: {row[b * 256 + j]} vs ggml's {want[j]}");
                }
            }
            AssertProducts(m, ActivationFormat.Q8K, 0.01, rng, (input, t, r) =>
            {
                fixed (sbyte* xq = input.Q8)
                fixed (float* xd = input.Scales)
                fixed (short* gs = input.GroupSumArray)
                    return m.DotScalar(m.RowPointer(r), xq + t * cols, xd + t * blocks, gs + t * blocks * 16, blocks);
            });
        }
    }

    // dequantize_row_iq4_xs
    private static float[] Iq4XsDefinition(byte[] blk)
    {
        float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(blk, 0));
        int scalesH = BitConverter.ToUInt16(blk, 2);
        var y = new float[256];
        for (int ib = 0; ib < 8; ib++)
        {
            int ls = ((blk[4 + ib / 2] >> 4 * (ib % 2)) & 0xf) | (((scalesH >> 2 * ib) & 3) << 4);
            float dl = d * (ls - 32);
            for (int j = 0; j < 16; j++)
            {
                y[32 * ib + j] = dl * s_kvaluesIq4nl[blk[8 + 16 * ib + j] & 0xf];
                y[32 * ib + j + 16] = dl * s_kvaluesIq4nl[blk[8 + 16 * ib + j] >> 4];
            }
        }
        return y;
    }

    [Fact]
    public void IQ4_XS_blocks_read_as_ggml_defines_them_and_products_match_the_references()
    {
        int rows = 5, cols = 512, blocks = cols / 256, bytes = Iq4XsMatrix.BlockBytes;
        var rng = new Random(44);
        var data = new byte[rows * blocks * bytes];
        rng.NextBytes(data);
        ushort[] halves = [0x3C00, 0x2E66, 0x1C00, 0x0001, 0xAE66];
        for (int i = 0; i < rows * blocks; i++)
        {
            if (i % 4 == 0)
                data.AsSpan(i * bytes, bytes).Fill(0xFF);
            BitConverter.TryWriteBytes(data.AsSpan(i * bytes), halves[i % halves.Length]);
        }
        fixed (byte* p = data)
        {
            var m = new Iq4XsMatrix(p, rows, cols, null);
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                m.ReadRow(r, row);
                for (int b = 0; b < blocks; b++)
                {
                    float[] want = Iq4XsDefinition(data.AsSpan((r * blocks + b) * bytes, bytes).ToArray());
                    for (int j = 0; j < 256; j++)
                        Assert.True(want[j] == row[b * 256 + j], $"IQ4_XS row {r} block {b} value {j}: {row[b * 256 + j]} vs ggml's {want[j]}");
                }
            }
            AssertProducts(m, ActivationFormat.Q8, 1e-4, rng, (input, t, r) =>
            {
                fixed (short* xq = input.Q16)
                fixed (float* xs = input.Scales)
                    return Iq4XsMatrix.DotScalar(m.RowPointer(r), xq + t * cols, xs + t * cols / 32, blocks);
            });
        }
    }
}
