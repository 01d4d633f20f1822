// Kernels against their scalar references at awkward lengths. CI reruns this project with
// DOTNET_EnableAVX512=0, DOTNET_EnableAVX2=0 and DOTNET_EnableHWIntrinsic=0 to cover every path.
using System.Runtime.Intrinsics;
using SharpSeek.Tensors;
using SharpSeek.Tests;

namespace SharpSeek.Tensors.Tests;

public sealed unsafe class KernelTests
{
    private static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * scale).ToArray();
    }

    [Fact]
    public void Reports_the_instruction_sets_in_use() =>
        Console.WriteLine($"Vector512 {Vector512.IsHardwareAccelerated}, Vector256 {Vector256.IsHardwareAccelerated}, " +
                          $"Avx512BW {System.Runtime.Intrinsics.X86.Avx512BW.IsSupported}, Avx2 {System.Runtime.Intrinsics.X86.Avx2.IsSupported}");

    [Fact]
    public void Bf16_dot_matches_scalar_at_every_length()
    {
        for (int n = 0; n <= 257; n++)
        {
            float[] x = Random(n, n);
            ushort[] w = Random(n, n + 1000).Select(Bf16.FromFloat).ToArray();
            double want = 0;
            for (int i = 0; i < n; i++)
                want += (double)Bf16.ToFloat(w[i]) * x[i];
            Assert.Equal(want, Dot.Bf16(w, x), 1e-5 * Math.Max(1, n));
        }
    }

    [Fact]
    public void Bf16_widening_matches_scalar_at_every_length()
    {
        for (int n = 0; n <= 70; n++)
        {
            ushort[] w = Random(n, n).Select(Bf16.FromFloat).ToArray();
            var dst = new float[n];
            Bf16.ToFloat(w, dst);
            for (int i = 0; i < n; i++)
                Assert.Equal(Bf16.ToFloat(w[i]), dst[i]);
        }
    }

    [Fact]
    public void Half16_matches_System_Half_for_every_finite_bit_pattern()
    {
        for (int h = 0; h < 65536; h++)
        {
            Half v = BitConverter.UInt16BitsToHalf((ushort)h);
            if (!Half.IsFinite(v))
                continue;
            Assert.Equal((float)v, Half16.ToFloat((ushort)h));
        }
    }

    [Fact]
    public unsafe void Strided_half_conversion_matches_System_Half_for_every_finite_bit_pattern()
    {
        // every pattern at a 34-byte stride (a Q8_0 row's scales), with a byte of junk between them
        const int stride = 34;
        byte[] src = new byte[65536 * stride];
        new Random(3).NextBytes(src);
        for (int h = 0; h < 65536; h++)
            BitConverter.TryWriteBytes(src.AsSpan(h * stride), (ushort)h);
        float[] dst = new float[65536];
        fixed (byte* s = src)
        fixed (float* d = dst)
            Half16.ToFloatStrided(s, stride, 65536, d);
        for (int h = 0; h < 65536; h++)
        {
            Half v = BitConverter.UInt16BitsToHalf((ushort)h);
            if (Half.IsFinite(v))
                Assert.Equal((float)v, dst[h]);
        }
    }

    private static WeightMatrix F32(float[] w, int rows, int cols) => new F32Matrix(rows, cols, w);

    [Theory]
    [InlineData(1, 32)]
    [InlineData(3, 64)]
    [InlineData(17, 96)]
    [InlineData(5, 544)]
    [InlineData(9, 64)]
    public void Q8_0_dot_matches_scalar_and_dequantized_product(int rows, int cols)
    {
        float[] w = Random(rows * cols, rows + cols);
        var owners = new List<IDisposable>();
        var q = Q8_0Matrix.Quantize(F32(w, rows, cols), owners);
        float[] deq = q.ToFloatArray();
        // quantization error per weight ≤ half a step (amax/127/2), plus fp16 rounding of the scale
        for (int i = 0; i < w.Length; i++)
            Assert.True(Math.Abs(w[i] - deq[i]) <= 1f / 127 * 0.5f + 1e-3f, $"weight {i}: {w[i]} vs {deq[i]}");
        foreach (int tokens in new[] { 1, 2, 4, 6, 9 })
        {
            float[] x = Random(tokens * cols, 77 + tokens);
            var qi = new QuantizedInput();
            qi.Quantize(ActivationFormat.Q8, x, tokens, cols);
            var y = new float[tokens * rows];
            q.MatMul(x, tokens, y);
            fixed (short* xq = qi.Q16)
            fixed (float* xs = qi.Scales)
            {
                for (int t = 0; t < tokens; t++)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        byte* row = q.RowPointer(r);
                        float scalar = Q8_0Matrix.DotScalar(row, xq + t * cols, xs + t * cols / 32, cols / 32);
                        Assert.Equal(scalar, y[t * rows + r], Math.Abs(scalar) * 1e-5 + 1e-5);
                        double exact = 0;
                        for (int c = 0; c < cols; c++)
                            exact += (double)deq[r * cols + c] * x[t * cols + c];
                        // activation quantization: relative error of a random dot product stays around 1%
                        Assert.Equal(exact, scalar, 0.02 * Math.Sqrt(cols) + 1e-3);
                    }
                }
            }
        }
        owners.ForEach(o => o.Dispose());
    }

    [Theory]
    [InlineData(1, 256)]
    [InlineData(4, 512)]
    [InlineData(9, 768)]
    public void Q4_K_dot_matches_scalar_and_dequantized_product(int rows, int cols)
    {
        float[] w = Random(rows * cols, rows * cols);
        // make some sub-blocks one-signed and of different ranges, so scales and mins both matter
        for (int i = 0; i < w.Length; i++)
            w[i] = (i / 32 % 3) switch { 0 => w[i], 1 => Math.Abs(w[i]) * 3, _ => -Math.Abs(w[i]) * 0.2f };
        var owners = new List<IDisposable>();
        var q = Q4KMatrix.Quantize(F32(w, rows, cols), owners);
        float[] deq = q.ToFloatArray();
        double err = 0, norm = 0;
        for (int i = 0; i < w.Length; i++)
        {
            err += (w[i] - deq[i]) * (w[i] - deq[i]);
            norm += w[i] * w[i];
        }
        Assert.True(Math.Sqrt(err / norm) < 0.12, $"Q4_K relative RMS error {Math.Sqrt(err / norm)}");
        foreach (int tokens in new[] { 1, 2, 4, 5 })
        {
            float[] x = Random(tokens * cols, 5 + tokens);
            var qi = new QuantizedInput();
            qi.Quantize(ActivationFormat.Q8K, x, tokens, cols);
            var y = new float[tokens * rows];
            q.MatMul(x, tokens, y);
            fixed (sbyte* xq = qi.Q8)
            fixed (float* xd = qi.Scales)
            fixed (int* xs = qi.Sums)
            {
                for (int t = 0; t < tokens; t++)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        float scalar = Q4KMatrix.DotScalar(q.RowPointer(r), xq + t * cols, xd + t * cols / 256, xs + t * cols / 32, cols / 256);
                        Assert.Equal(scalar, y[t * rows + r], Math.Abs(scalar) * 1e-5 + 1e-4);
                        double exact = 0;
                        for (int c = 0; c < cols; c++)
                            exact += (double)deq[r * cols + c] * x[t * cols + c];
                        Assert.Equal(exact, scalar, 0.03 * Math.Sqrt(cols) + 1e-3);
                    }
                }
            }
        }
        owners.ForEach(o => o.Dispose());
    }

    [Fact]
    public void Q4_K_products_hold_at_the_integer_extremes_and_with_subnormal_scales()
    {
        // every nibble 15 or random, every 6-bit scale and min possible, activations quantized to ±127: the int16
        // intermediates of the vpmaddubsw / vpackssdw paths must not saturate; d and dmin include zero and subnormal halves
        int rows = 6, cols = 768, blocks = cols / 256;
        var rng = new Random(11);
        using NativeBuffer buf = ExtremeQ4KBlocks(rows, cols, rng, [0x3C00, 0x0001, 0x03FF, 0x0000, 0x2E66, 0xB400, 0x7BFF], r => r == 0);
        var q = new Q4KMatrix((byte*)buf.Pointer, rows, cols, buf);
        foreach (int tokens in new[] { 1, 4, 5 })
        {
            float[] x = new float[tokens * cols];
            for (int i = 0; i < x.Length; i++)
                x[i] = (i % 7 == 0) ? -1f : (i % 5 == 0 ? rng.NextSingle() - 0.5f : 1f);
            var y = new float[tokens * rows];
            q.MatMul(x, tokens, y);
            var qi = new QuantizedInput();
            qi.Quantize(ActivationFormat.Q8K, x, tokens, cols);
            fixed (sbyte* xq = qi.Q8)
            fixed (float* xd = qi.Scales)
            fixed (int* xs = qi.Sums)
            {
                for (int t = 0; t < tokens; t++)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        float scalar = Q4KMatrix.DotScalar(q.RowPointer(r), xq + t * cols, xd + t * blocks, xs + t * cols / 32, blocks);
                        Assert.True(Math.Abs(scalar - y[t * rows + r]) <= Math.Abs(scalar) * 1e-5 + 1e-6,
                            $"row {r} token {t}: kernel {y[t * rows + r]} vs scalar {scalar} (|diff| {Math.Abs(scalar - y[t * rows + r])})");
                    }
                }
            }
        }
    }

    /// <summary>Q4_K blocks for rows x cols: d and dmin cycling through <paramref name="halves"/> (zero and subnormal
    /// halves among them), every other byte 0xFF in the saturated rows (nibbles, 6-bit scales and mins at their maxima)
    /// and random elsewhere (every scale and min value).</summary>
    private static unsafe NativeBuffer ExtremeQ4KBlocks(int rows, int cols, Random rng, ushort[] halves, Func<int, bool> saturated)
    {
        int blocks = cols / 256;
        var buf = new NativeBuffer((long)rows * blocks * Q4KMatrix.BlockBytes);
        byte* p = (byte*)buf.Pointer;
        for (int r = 0; r < rows; r++)
        {
            for (int b = 0; b < blocks; b++)
            {
                byte* blk = p + ((long)r * blocks + b) * Q4KMatrix.BlockBytes;
                *(ushort*)blk = halves[(r + b) % halves.Length];
                *(ushort*)(blk + 2) = halves[(r * 3 + b + 1) % halves.Length];
                for (int i = 4; i < Q4KMatrix.BlockBytes; i++)
                    blk[i] = saturated(r) ? (byte)0xFF : (byte)rng.Next(256);
            }
        }
        return buf;
    }

    [Fact]
    public unsafe void Q4_K_rows_interleaved_by_eight_give_the_same_rows_and_products()
    {
        // 21 rows: two groups of eight and a five-row tail in the row layout; random block bytes (every 6-bit scale and
        // min), all-0xFF rows (nibbles and scales at their maxima), zero and subnormal d/dmin
        int rows = 21, cols = 768, blocks = cols / 256;
        var rng = new Random(12);
        using NativeBuffer buf = ExtremeQ4KBlocks(rows, cols, rng, [0x3C00, 0x0001, 0x03FF, 0x0000, 0x2E66, 0xB400, 0x1C00], r => r % 9 == 0);
        byte* p = (byte*)buf.Pointer;
        var q = new Q4KMatrix(p, rows, cols, buf);
        var owners = new List<IDisposable>();
        var qi = Q4KInterleavedMatrix.FromRows(q, owners);
        Assert.Equal(2, qi.Groups);
        Assert.Equal(2L * blocks * Q4KInterleavedMatrix.GroupBlockBytes + 5 * q.BytesPerRow, qi.ByteSize);
        var bytes = new byte[q.BytesPerRow];
        float[] want = new float[cols], got = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            qi.CopyStandardRow(r, bytes);
            Assert.True(new ReadOnlySpan<byte>(q.RowPointer(r), bytes.Length).SequenceEqual(bytes), $"row {r}: standard bytes differ");
            q.ReadRow(r, want);
            qi.ReadRow(r, got);
            Assert.True(want.AsSpan().SequenceEqual(got), $"row {r}: dequantized values differ");
        }
        foreach (int tokens in new[] { 1, 3, 5 })
        {
            float[] x = new float[tokens * cols];
            for (int i = 0; i < x.Length; i++)
                x[i] = (i % 7 == 0) ? -1f : (i % 5 == 0 ? rng.NextSingle() - 0.5f : 1f);
            var input = new QuantizedInput();
            input.Quantize(ActivationFormat.Q8K, x, tokens, cols);
            // every row, then a range that starts and ends inside groups and runs into the tail
            foreach ((int start, int count) in new[] { (0, rows), (3, 15), (9, 4), (17, 3) })
            {
                var y = new float[tokens * count];
                qi.MatMulQuantized(input, y, count, start, count);
                fixed (sbyte* xq = input.Q8)
                fixed (float* xd = input.Scales)
                fixed (int* xs = input.Sums)
                {
                    for (int t = 0; t < tokens; t++)
                    {
                        for (int r = start; r < start + count; r++)
                        {
                            float scalar = Q4KMatrix.DotScalar(q.RowPointer(r), xq + t * cols, xd + t * blocks, xs + t * cols / 32, blocks);
                            float k = y[t * count + r - start];
                            Assert.True(Math.Abs(scalar - k) <= Math.Abs(scalar) * 1e-5 + 1e-6,
                                $"rows [{start}, {start + count}), row {r} token {t}: interleaved {k} vs scalar {scalar} (|diff| {Math.Abs(scalar - k)})");
                        }
                    }
                }
            }
        }
        // the float entry point (quantizes its input) agrees with the row layout's
        float[] xf = Random(2 * cols, 3);
        float[] y1 = new float[2 * rows], y2 = new float[2 * rows];
        q.MatMul(xf, 2, y1);
        qi.MatMul(xf, 2, y2);
        for (int i = 0; i < y1.Length; i++)
            Assert.True(Math.Abs(y1[i] - y2[i]) <= Math.Abs(y1[i]) * 1e-5 + 1e-5, $"value {i}: {y2[i]} vs {y1[i]}");
        Assert.Throws<ArgumentException>(() => qi.ReadRow(0, new float[cols - 1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => qi.MatMulQuantized(new QuantizedInput(), new float[8], 8, 20, 2));
        owners.ForEach(o => o.Dispose());
    }

    [Fact]
    public unsafe void Q4_K_one_token_products_are_the_same_bits_with_the_512_bit_and_the_256_bit_kernels()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512BW.IsSupported || !System.Runtime.Intrinsics.X86.Avx2.IsSupported)
            return; // one kernel only on this machine
        // 45 rows (five groups and a tail), 4 super-blocks; extreme blocks (every nibble 15, scales 63) and random ones,
        // activations at ±127 included: the int16 pair sums of the 512-bit kernel must not saturate
        int rows = 45, cols = 1024, blocks = cols / 256;
        var rng = new Random(31);
        using NativeBuffer buf = ExtremeQ4KBlocks(rows, cols, rng, [0x3C00, 0x0001, 0x2E66, 0xB400], r => r % 4 == 0);
        var q = new Q4KMatrix((byte*)buf.Pointer, rows, cols, buf);
        var owners = new List<IDisposable>();
        var qi = Q4KInterleavedMatrix.FromRows(q, owners);
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++)
            x[i] = i % 3 == 0 ? 1f : (i % 3 == 1 ? -1f : rng.NextSingle() * 2 - 1);
        var input = new QuantizedInput();
        input.Quantize(ActivationFormat.Q8K, x, 1, cols);
        bool saved = Q4KInterleavedMatrix.Use512;
        try
        {
            foreach ((int start, int count) in new[] { (0, rows), (0, 40), (8, 32), (3, 30), (16, 8) })
            {
                float[] y512 = new float[count], y256 = new float[count];
                Q4KInterleavedMatrix.Use512 = true;
                qi.MatMulQuantized(input, y512, count, start, count);
                Q4KInterleavedMatrix.Use512 = false;
                qi.MatMulQuantized(input, y256, count, start, count);
                for (int i = 0; i < count; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(y512[i]) == BitConverter.SingleToInt32Bits(y256[i]), $"rows [{start}, +{count}), row {start + i}: 512-bit {y512[i]} vs 256-bit {y256[i]}");
                fixed (sbyte* xq = input.Q8)
                fixed (float* xd = input.Scales)
                fixed (int* xs = input.Sums)
                {
                    for (int i = 0; i < count; i++)
                    {
                        float scalar = Q4KMatrix.DotScalar(q.RowPointer(start + i), xq, xd, xs, blocks);
                        Assert.True(Math.Abs(scalar - y512[i]) <= Math.Abs(scalar) * 1e-5 + 1e-6, $"row {start + i}: {y512[i]} vs scalar {scalar} (|diff| {Math.Abs(scalar - y512[i])})");
                    }
                }
            }
        }
        finally
        {
            Q4KInterleavedMatrix.Use512 = saved;
        }
        owners.ForEach(o => o.Dispose());
    }

    [Fact]
    public unsafe void Q6_K_interleaved_by_eight_gives_the_same_codes_and_the_same_bits_as_the_rows()
    {
        // 37 rows (four groups and a five-row tail), 3 super-blocks of random bytes; every fourth row at the extremes
        // (all codes 63 or 0, scales -128): the int16 sums of the 512-bit kernel must not saturate
        int rows = 37, cols = 768, blocks = cols / 256;
        var rng = new Random(41);
        using var buf = new NativeBuffer((long)rows * blocks * Q6KMatrix.BlockBytes);
        byte* p = buf.Pointer;
        ushort[] halves = [0x3C00, 0x2E66, 0xB400, 0x0001, 0x1C00];
        for (int r = 0; r < rows; r++)
        {
            for (int b = 0; b < blocks; b++)
            {
                byte* blk = p + ((long)r * blocks + b) * Q6KMatrix.BlockBytes;
                for (int i = 0; i < 208; i++)
                    blk[i] = r % 4 == 0 ? (byte)(r % 8 == 0 ? 0xFF : 0x00) : (byte)rng.Next(256);
                if (r % 4 == 0)
                {
                    for (int j = 0; j < 16; j++)
                        blk[192 + j] = 0x80; // -128
                }
                *(ushort*)(blk + 208) = halves[(r + b) % halves.Length];
            }
        }
        var m = new Q6KMatrix(p, rows, cols, buf);
        Q6KInterleavedMatrix packed = Q6KInterleavedMatrix.FromRows(m);
        Assert.Equal(4, packed.Groups);
        for (int g = 0; g < packed.Groups; g++)
        {
            for (int b = 0; b < blocks; b++)
            {
                for (int r = 0; r < 8; r++)
                {
                    byte* blk = m.RowPointer(8 * g + r) + (long)b * Q6KMatrix.BlockBytes;
                    for (int v = 0; v < 256; v++)
                        Assert.True(Q6KMatrix.Code(blk, v) == packed.Code(g, b, r, v), $"group {g} block {b} row {r} value {v}");
                }
            }
        }
        var lazy = new Q6KRepackingMatrix(m);
        foreach (int tokens in new[] { 1, 2, 5 })
        {
            float[] x = new float[tokens * cols];
            for (int i = 0; i < x.Length; i++)
                x[i] = i % 3 == 0 ? 1f : (i % 3 == 1 ? -1f : rng.NextSingle() * 2 - 1);
            var input = new QuantizedInput();
            input.Quantize(ActivationFormat.Q8K, x, tokens, cols);
            foreach ((int start, int count) in new[] { (0, rows), (0, 32), (3, 30), (8, 16), (16, 21), (9, 5) })
            {
                float[] want = new float[tokens * count], got = new float[tokens * count];
                m.MatMulQuantized(input, want, count, start, count);
                lazy.MatMulQuantized(input, got, count, start, count);
                for (int i = 0; i < want.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]), $"{tokens} tokens, rows [{start}, +{count}), value {i}: repacking {got[i]} vs rows {want[i]}");
                // a token of a batch gets the bits it gets alone (batched decode is exact)
                var last = new QuantizedInput();
                last.Quantize(ActivationFormat.Q8K, x.AsSpan((tokens - 1) * cols, cols), 1, cols);
                float[] alone = new float[count];
                lazy.MatMulQuantized(last, alone, count, start, count);
                for (int i = 0; i < count; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(alone[i]) == BitConverter.SingleToInt32Bits(got[(tokens - 1) * count + i]), $"{tokens} tokens, rows [{start}, +{count}), row {start + i}: alone {alone[i]} vs in the batch {got[(tokens - 1) * count + i]}");
            }
            // the 512-bit and the 256-bit kernels themselves (whether or not this machine chose them), against their scalar
            // definition and, where the row kernel is the VNNI one (also its AVX2 form), against the rows bit for bit
            foreach (bool force256 in new[] { false, true })
            {
                if (tokens != 1 || (force256 ? !System.Runtime.Intrinsics.X86.Avx2.IsSupported : !System.Runtime.Intrinsics.X86.Avx512BW.IsSupported))
                    continue;
                float[] y = new float[32], rowsY = new float[32];
                m.MatMulQuantized(input, rowsY, 32, 0, 32);
                Q6KInterleavedMatrix.Force256 = force256;
                try
                {
                    fixed (sbyte* xq = input.Q8Array)
                    fixed (float* xd = input.ScaleArray)
                    fixed (float* yp = y)
                    {
                        packed.MatVec(xq, xd, yp, 0, 32);
                        for (int r = 0; r < 32; r++)
                        {
                            float scalar = packed.DotScalar(r / 8, r % 8, xq, xd);
                            Assert.True(BitConverter.SingleToInt32Bits(scalar) == BitConverter.SingleToInt32Bits(y[r]), $"256-bit {force256}, row {r}: kernel {y[r]} vs its scalar definition {scalar}");
                            if (Q6KVnni.IsSupported)
                                Assert.True(BitConverter.SingleToInt32Bits(rowsY[r]) == BitConverter.SingleToInt32Bits(y[r]), $"256-bit {force256}, row {r}: interleaved {y[r]} vs rows {rowsY[r]}");
                        }
                    }
                }
                finally
                {
                    Q6KInterleavedMatrix.Force256 = false;
                }
            }
            if (tokens == 1)
            {
                Assert.Throws<ArgumentException>(() => packed.MatVec(null, null, null, 4, 8));
                Assert.Throws<ArgumentException>(() => packed.MatVec(null, null, null, 24, 16));
            }
        }
        Assert.Equal(Q6KInterleavedMatrix.IsUsed, lazy.IsRepacked);
        Assert.Equal(m.ByteSize, lazy.ByteSize);
        float[] r0 = new float[cols], r1 = new float[cols];
        m.ReadRow(36, r0);
        lazy.ReadRow(36, r1);
        Assert.True(r0.AsSpan().SequenceEqual(r1));
        Assert.Throws<ArgumentException>(() => new Q6KRepackingMatrix(new Q6KMatrix(p, 7, cols, buf)));
    }

    [Fact]
    public void Q4_K_repacking_matrix_repacks_once_on_its_first_product()
    {
        int rows = 37, cols = 512;
        var owners = new List<IDisposable>();
        var q = Q4KMatrix.Quantize(F32(Random(rows * cols, 8), rows, cols), owners);
        var lazy = new Q4KRepackingMatrix(q);
        var packed = Q4KInterleavedMatrix.FromRows(q, owners);
        Assert.False(lazy.IsRepacked);
        Assert.Equal(q.ByteSize, lazy.ByteSize);
        float[] got = new float[cols], want = new float[cols];
        lazy.ReadRow(5, got);
        q.ReadRow(5, want);
        Assert.True(got.AsSpan().SequenceEqual(want));
        Assert.False(lazy.IsRepacked); // reading rows needs no copy
        // the first product arrives as two row-parallel halves at once, as the threaded backend splits it
        float[] x = Random(3 * cols, 9);
        var input = new QuantizedInput();
        input.Quantize(ActivationFormat.Q8K, x, 3, cols);
        float[] y = new float[3 * rows], expect = new float[3 * rows];
        Parallel.For(0, 2, half =>
        {
            int start = half == 0 ? 0 : 16;
            lazy.MatMulQuantized(input, y.AsSpan(start), rows, start, half == 0 ? 16 : rows - 16);
        });
        packed.MatMulQuantized(input, expect, rows, 0, rows);
        Assert.True(lazy.IsRepacked);
        Assert.Equal(packed.ByteSize, lazy.ByteSize);
        Assert.True(y.AsSpan().SequenceEqual(expect), "products differ from the interleaved matrix's");
        // one token: whole groups run two at a time (from the two halves of the range), the cut ones alone
        var one = new QuantizedInput();
        one.Quantize(ActivationFormat.Q8K, x.AsSpan(0, cols), 1, cols);
        foreach ((int start, int count) in new[] { (0, rows), (1, 35), (8, 24), (5, 9), (0, 40 - 8) })
        {
            float[] a = new float[count], b = new float[count];
            packed.MatMulQuantized(one, a, count, start, count);
            q.MatMulQuantized(one, b, count, start, count);
            for (int i = 0; i < count; i++)
                Assert.True(Math.Abs(a[i] - b[i]) <= Math.Abs(b[i]) * 1e-5 + 1e-5, $"rows [{start}, +{count}), row {start + i}: {a[i]} vs {b[i]}");
        }
        Assert.Throws<ArgumentException>(() => new Q4KRepackingMatrix(Q4KMatrix.Quantize(F32(Random(7 * 256, 1), 7, 256), owners)));
        owners.ForEach(o => o.Dispose());
    }

    [Fact]
    public void Q4_K_conversion_interleaves_matrices_of_eight_rows_or_more()
    {
        var owners = new List<IDisposable>();
        Assert.IsType<Q4KInterleavedMatrix>(WeightConversion.Convert(F32(Random(8 * 256, 1), 8, 256), WeightFormat.Q4_K, owners));
        Assert.IsType<Q4KMatrix>(WeightConversion.Convert(F32(Random(7 * 256, 1), 7, 256), WeightFormat.Q4_K, owners));
        Assert.Equal(2, owners.Count); // one buffer each: no row-layout copy of the interleaved matrix is kept
        // quantized straight into the interleaved layout = quantized by rows, then repacked
        float[] w = Random(21 * 512, 4);
        var direct = (Q4KInterleavedMatrix)WeightConversion.Convert(F32(w, 21, 512), WeightFormat.Q4_K, owners);
        var repacked = Q4KInterleavedMatrix.FromRows(Q4KMatrix.Quantize(F32(w, 21, 512), owners), owners);
        byte[] a = new byte[Q4KMatrix.RowBytes(512)], b = new byte[a.Length];
        for (int r = 0; r < 21; r++)
        {
            direct.CopyStandardRow(r, a);
            repacked.CopyStandardRow(r, b);
            Assert.True(a.AsSpan().SequenceEqual(b), $"row {r}");
        }
        owners.ForEach(o => o.Dispose());
    }

    [Fact]
    public void Q8K_activations_match_their_definition()
    {
        // q = round-half-even(x·127/max|x|) per 256-block in the permuted sub-block order, with 32- and 16-value sums;
        // an all-zero block gets scale 0; ties are placed exactly on .5 to pin the rounding
        int tokens = 2, cols = 768;
        float[] x = Random(tokens * cols, 21);
        x[256 * 1 + 3] = 127f; // block 1: max 127 so x·127/max = x, and .5 ties round to even
        for (int i = 256; i < 512; i++)
            x[i] = i == 256 + 3 ? 127f : ((i % 7) - 3) + 0.5f;
        Array.Clear(x, 512, 256); // block 2 of token 0: zeros
        var qi = new QuantizedInput();
        qi.Quantize(ActivationFormat.Q8K, x, tokens, cols);
        for (int b = 0; b < tokens * cols / 256; b++)
        {
            float amax = 0;
            for (int i = 0; i < 256; i++)
                amax = Math.Max(amax, Math.Abs(x[b * 256 + i]));
            Assert.Equal(amax / 127f, qi.Scales[b]);
            for (int sb = 0; sb < 8; sb++)
            {
                int sum = 0;
                for (int l = 0; l < 32; l++)
                {
                    int want = amax > 0 ? (int)MathF.Round(x[b * 256 + sb * 32 + l] * (127f / amax), MidpointRounding.ToEven) : 0;
                    Assert.Equal(want, qi.Q8[b * 256 + QuantizedInput.PermutedSubBlock(sb) * 32 + l]);
                    sum += want;
                }
                Assert.Equal(sum, qi.Sums[b * 8 + sb]);
            }
        }
    }

    [Fact]
    public void Int8_dequantization_matches_its_definition_at_awkward_lengths()
    {
        var rng = new Random(21);
        foreach (int n in new[] { 0, 1, 31, 32, 33, 64, 100 })
        {
            var q = new sbyte[n];
            for (int i = 0; i < n; i++)
                q[i] = (sbyte)rng.Next(-128, 128);
            float scale = 0.0173f;
            var got = new float[n + 1];
            got[n] = 42f; // past the input: untouched
            Ops.DequantizeInt8(q, scale, got);
            for (int i = 0; i < n; i++)
                Assert.Equal(q[i] * scale, got[i]);
            Assert.Equal(42f, got[n]);
        }
        Assert.Throws<ArgumentException>(() => Ops.DequantizeInt8(new sbyte[33], 1f, new float[32]));
    }

    [Fact]
    public void Permuted_sub_block_order()
    {
        Assert.Equal([0, 2, 1, 3, 4, 6, 5, 7], Enumerable.Range(0, 8).Select(QuantizedInput.PermutedSubBlock));
    }

    [Theory]
    [InlineData(WeightFormat.F32)]
    [InlineData(WeightFormat.BF16)]
    [InlineData(WeightFormat.Fp8Block)]
    [InlineData(WeightFormat.Q8_0)]
    [InlineData(WeightFormat.Q4_K)]
    public void Threaded_products_equal_single_threaded(WeightFormat format)
    {
        int rows = 300, cols = 512;
        var owners = new List<IDisposable>();
        WeightMatrix m = WeightConversion.Convert(F32(Random(rows * cols, 3), rows, cols), format, owners);
        Assert.Equal(format, m.Format);
        using var be = new ThreadedBackend(3);
        foreach (int tokens in new[] { 1, 2, 7, WeightMatrix.PackedMinTokens + 4 })
        {
            float[] x = Random(tokens * cols, tokens);
            var a = new float[tokens * rows];
            var b = new float[tokens * rows];
            ComputeBackend.Cpu.MatMul(m, x, tokens, a);
            be.MatMul(m, x, tokens, b);
            Assert.Equal(a, b);
            // a band of rows with a leading dimension
            var c = new float[tokens * 50];
            be.MatMul(m, x, tokens, c, 50, 100, 50);
            // a band may group rows into tiles differently from the whole matrix: same math, other summation order
            for (int t = 0; t < tokens; t++)
                Numerics.AssertClose(a.AsSpan(t * rows + 100, 50), c.AsSpan(t * 50, 50), 1e-4, $"{format} band, token {t}");
        }
        owners.ForEach(o => o.Dispose());
    }

    [Theory]
    [InlineData(WeightFormat.F32)]
    [InlineData(WeightFormat.BF16)]
    [InlineData(WeightFormat.Fp8Block)]
    public void Panel_products_match_row_dots_at_awkward_shapes(WeightFormat format)
    {
        foreach ((int rows, int cols) in new[] { (1, 17), (4, 16), (5, 33), (9, 100), (8, 257) })
        {
            var owners = new List<IDisposable>();
            WeightMatrix m = WeightConversion.Convert(F32(Random(rows * cols, rows * cols), rows, cols), format, owners);
            foreach (int tokens in new[] { 1, 2, 3, 4, 7 })
            {
                float[] x = Random(tokens * cols, tokens + cols);
                var y = new float[tokens * rows];
                m.MatMul(x, tokens, y);
                for (int t = 0; t < tokens; t++)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        float want = m.DotRow(r, x.AsSpan(t * cols, cols));
                        Assert.Equal(want, y[t * rows + r], 1e-5 * Math.Sqrt(cols) + Math.Abs(want) * 1e-5);
                    }
                }
            }
            owners.ForEach(o => o.Dispose());
        }
    }

    // from WeightMatrix.PackedMinTokens tokens every format dequantizes its rows into the GEMM's 32-row panels: one or
    // several bands per product, bands that end inside a panel (narrow last panels of 1..16 and 17..31 rows), a band
    // starting mid-matrix, columns that are no multiple of 8 or of the reduction chunk (256), token counts that leave
    // partial register tiles. Both orientations run (the weights packed, or the activations packed and the output
    // transposed, chosen by shape): e.g. 70 rows x 300 columns at 48 and 53 tokens take the second, at 99 the first;
    // 16,400 columns take the second in bands of 48 rows
    [Theory]
    [InlineData(WeightFormat.F32, 17)]
    [InlineData(WeightFormat.F32, 300)]
    [InlineData(WeightFormat.BF16, 33)]
    [InlineData(WeightFormat.BF16, 520)]
    [InlineData(WeightFormat.Fp8Block, 129)]
    [InlineData(WeightFormat.Q8_0, 96)]
    [InlineData(WeightFormat.Q8_0, 544)]
    [InlineData(WeightFormat.Q4_K, 512)]
    [InlineData(WeightFormat.BF16, 16400)] // bands of 32 rows: several per product
    [InlineData(WeightFormat.Q8_0, 32768)]
    public void Packed_products_match_double_products_of_the_stored_rows(WeightFormat format, int cols)
    {
        var owners = new List<IDisposable>();
        foreach ((int rows, int rowStart, int rowCount) in new[] { (70, 0, 70), (45, 3, 40), (9, 0, 9) })
        {
            WeightMatrix m = WeightConversion.Convert(F32(Random(rows * cols, rows + cols), rows, cols), format, owners);
            float[] w = m.ToFloatArray();
            foreach (int tokens in new[] { WeightMatrix.PackedMinTokens, WeightMatrix.PackedMinTokens + 5, 2 * WeightMatrix.PackedMinTokens + 3 })
            {
                float[] x = Random(tokens * cols, tokens * cols);
                int ldy = rowCount + 5;
                var y = new float[tokens * ldy];
                m.MatMul(x, tokens, y, ldy, rowStart, rowCount);
                double maxDiff = 0, bound = 0;
                for (int t = 0; t < tokens; t++)
                {
                    for (int r = 0; r < rowCount; r++)
                    {
                        double want = 0, mag = 0;
                        for (int c = 0; c < cols; c++)
                        {
                            want += (double)w[(rowStart + r) * cols + c] * x[t * cols + c];
                            mag += Math.Abs((double)w[(rowStart + r) * cols + c] * x[t * cols + c]);
                        }
                        maxDiff = Math.Max(maxDiff, Math.Abs(want - y[t * ldy + r]));
                        bound = Math.Max(bound, mag * 1e-6);
                    }
                }
                // fp32 accumulation of products that are exact in double: error ~ cols·eps·Σ|w·x| at worst
                Assert.True(maxDiff <= bound + 1e-6, $"{format} [{rows}x{cols}] rows [{rowStart}, +{rowCount}), {tokens} tokens: max |diff| {maxDiff} (bound {bound})");
            }
        }
        owners.ForEach(o => o.Dispose());
    }

    // four rows per pass read as bf16 in the products against a permuted x; a remainder of 1-3 rows, a band starting
    // mid-matrix, widths that are no multiple of 32 (the per-row fallback)
    [Theory]
    [InlineData(0, 7, 64)]
    [InlineData(3, 9, 512)]
    [InlineData(1, 5, 40)]
    [InlineData(0, 4, 32)]
    public void Bf16_matvec_matches_double(int rowStart, int rowCount, int cols)
    {
        int rows = rowStart + rowCount + 1;
        var owners = new List<IDisposable>();
        WeightMatrix m = WeightConversion.Convert(F32(Random(rows * cols, rows + cols), rows, cols), WeightFormat.BF16, owners);
        float[] w = m.ToFloatArray(), x = Random(cols, cols);
        var y = new float[rowCount];
        m.MatVec(x, y, rowStart, rowCount);
        double maxDiff = 0;
        for (int r = 0; r < rowCount; r++)
        {
            double want = 0;
            for (int c = 0; c < cols; c++)
                want += (double)w[(rowStart + r) * cols + c] * x[c];
            maxDiff = Math.Max(maxDiff, Math.Abs(want - y[r]));
        }
        Assert.True(maxDiff <= 1e-5, $"rows [{rowStart}, +{rowCount}) x {cols}: max |diff| {maxDiff}");
        owners.ForEach(o => o.Dispose());
    }

    // a batched decode step: every token count below the packed threshold (tiles of 4 tokens and a remainder of 1-3),
    // rows in groups of 4 and a remainder, a band starting mid-matrix; with AVX-512 each token's results must be
    // bit-identical to the same token's matrix-vector product (batched decoding gives the logits of decoding alone), and
    // close to double everywhere
    // (bf16: the even/odd kernel, whole groups of 32 columns; fp32: the 4-row tiles of PanelKernels, from 16 columns,
    // 20 and 70 leaving remainder columns)
    [Theory]
    [InlineData(WeightFormat.BF16, 0, 12, 64)]
    [InlineData(WeightFormat.BF16, 3, 9, 512)]
    [InlineData(WeightFormat.BF16, 1, 6, 32)]
    [InlineData(WeightFormat.BF16, 2, 37, 96)]
    [InlineData(WeightFormat.BF16, 1, 11, 48)] // no multiple of 32: the 256-bit kernel (Bf16Avx2) even with AVX-512
    [InlineData(WeightFormat.F32, 1, 9, 12)] // below 16 columns: the 256-bit tiles even with AVX-512
    [InlineData(WeightFormat.F32, 0, 12, 64)]
    [InlineData(WeightFormat.F32, 3, 9, 512)]
    [InlineData(WeightFormat.F32, 1, 6, 20)]
    [InlineData(WeightFormat.F32, 2, 37, 70)]
    [InlineData(WeightFormat.Q8_0, 1, 9, 96)]
    [InlineData(WeightFormat.Q4_K, 0, 16, 256)] // whole groups of eight interleaved rows
    [InlineData(WeightFormat.Q4_K, 3, 37, 512)] // groups cut by the band's ends
    [InlineData(WeightFormat.Q4_K, 5, 40, 256)] // and rows past the last whole group (the row layout)
    [InlineData(WeightFormat.Q6_K, 1, 9, 512)]
    public void Small_batch_products_equal_the_matvec_of_each_token(WeightFormat format, int rowStart, int rowCount, int cols)
    {
        int rows = rowStart + rowCount + 2;
        var owners = new List<IDisposable>();
        WeightMatrix f32 = F32(Random(rows * cols, rows * 3 + cols), rows, cols);
        WeightMatrix m = format == WeightFormat.Q6_K ? Q6KMatrix.Quantize(f32, owners) : WeightConversion.Convert(f32, format, owners);
        float[] w = m.ToFloatArray();
        using var be = new ThreadedBackend(2);
        bool avx2 = System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported;
        bool exact = format == WeightFormat.F32
            ? (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && cols >= 16) || (avx2 && cols >= 8)
            : (System.Runtime.Intrinsics.X86.Avx512F.IsSupported && cols % 32 == 0) || (avx2 && cols % 16 == 0);
        for (int tokens = 1; tokens < WeightMatrix.PackedMinTokens; tokens++)
        {
            float[] x = Random(tokens * cols, tokens * 7 + cols);
            int ldy = rowCount + 3;
            var y = new float[tokens * ldy];
            var yt = new float[tokens * ldy];
            m.MatMul(x, tokens, y, ldy, rowStart, rowCount);
            be.MatMul(m, x, tokens, yt, ldy, rowStart, rowCount);
            var alone = new float[rowCount];
            double maxDiff = 0;
            for (int t = 0; t < tokens; t++)
            {
                m.MatVec(x.AsSpan(t * cols, cols), alone, rowStart, rowCount);
                for (int r = 0; r < rowCount; r++)
                {
                    // bit-identical where the tile kernels run (AVX-512 or AVX2); the fallbacks only agree closely
                    float tol = exact ? 0 : 1e-5f * MathF.Sqrt(cols);
                    Assert.True(Math.Abs(alone[r] - y[t * ldy + r]) <= tol, $"{tokens} tokens, token {t}, row {r}: batched {y[t * ldy + r]} vs alone {alone[r]}");
                    Assert.True(Math.Abs(alone[r] - yt[t * ldy + r]) <= tol, $"{tokens} tokens (2 threads), token {t}, row {r}: batched {yt[t * ldy + r]} vs alone {alone[r]}");
                    double want = 0;
                    for (int c = 0; c < cols; c++)
                        want += (double)w[(rowStart + r) * cols + c] * x[t * cols + c];
                    maxDiff = Math.Max(maxDiff, Math.Abs(want - y[t * ldy + r]));
                }
            }
            // the integer formats quantize the activations: int16 for Q8_0, int8 for Q4_K and Q6_K
            double bound = format switch { WeightFormat.Q4_K or WeightFormat.Q6_K => 1e-2, WeightFormat.Q8_0 => 1e-3, _ => 1e-5 } * Math.Sqrt(cols);
            Assert.True(maxDiff <= bound, $"{tokens} tokens, rows [{rowStart}, +{rowCount}) x {cols}: max |diff| {maxDiff}");
        }
        owners.ForEach(o => o.Dispose());
    }

    // the AVX2 kernels called directly, so machines with AVX-512 (where the products take the 512-bit kernels) test them
    // too: any token count gives each token the bits of that token alone, close to double
    [Theory]
    [InlineData(64)]
    [InlineData(70)] // remainder columns
    [InlineData(8)]
    public unsafe void Avx2_fp32_tiles_give_each_token_its_own_sums(int cols)
    {
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported || !System.Runtime.Intrinsics.X86.Fma.IsSupported)
            return; // the kernels need AVX2 + FMA (every x64 machine .NET 10 targets for SharpSeek has them)
        float[] w = Random(4 * cols, cols + 1);
        for (int tokens = 1; tokens <= 10; tokens++)
        {
            float[] x = Random(tokens * cols, tokens + 2 * cols);
            float[] y = new float[tokens * 5], alone = new float[4];
            fixed (float* wp = w, xp = x, yp = y, ap = alone)
            {
                PanelKernels.Rows4Avx2(wp, cols, xp, cols, tokens, yp, 5);
                for (int t = 0; t < tokens; t++)
                {
                    PanelKernels.Rows4Avx2(wp, cols, xp + t * cols, cols, 1, ap, 4);
                    for (int r = 0; r < 4; r++)
                    {
                        Assert.Equal(alone[r], y[t * 5 + r]);
                        double want = 0;
                        for (int c = 0; c < cols; c++)
                            want += (double)w[r * cols + c] * x[t * cols + c];
                        Assert.True(Math.Abs(want - y[t * 5 + r]) <= 1e-5 * Math.Sqrt(cols), $"{tokens} tokens, token {t}, row {r}: {y[t * 5 + r]} vs {want}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(7, 64)]
    [InlineData(9, 512)]
    [InlineData(4, 16)]
    [InlineData(13, 48)] // one token: 8 rows, then 4, then a single row
    [InlineData(20, 32)]
    public unsafe void Avx2_bf16_products_give_each_token_its_own_sums(int rows, int cols)
    {
        if (!Bf16Avx2.IsSupported)
            return; // the kernels need AVX2 + FMA
        float[] wf = Random(rows * cols, rows + cols);
        ushort[] bits = new ushort[wf.Length];
        Bf16.FromFloat(wf, bits);
        for (int tokens = 1; tokens <= 7; tokens++)
        {
            float[] x = Random(tokens * cols, 3 * tokens + cols), perm = new float[x.Length];
            float[] y = new float[tokens * (rows + 1)], aloneRows = new float[rows];
            fixed (ushort* wp = bits)
            fixed (float* xp = x, pp = perm, yp = y, alone = aloneRows)
            {
                for (int t = 0; t < tokens; t++)
                    Bf16Avx2.EvenOdd(xp + t * cols, pp + t * cols, cols);
                Bf16Avx2.Product(wp, cols, pp, tokens, yp, rows + 1, rows);
                for (int t = 0; t < tokens; t++)
                {
                    Bf16Avx2.Product(wp, cols, pp + t * cols, 1, alone, rows, rows);
                    for (int r = 0; r < rows; r++)
                    {
                        Assert.Equal(alone[r], yp[t * (rows + 1) + r]);
                        double want = 0;
                        for (int c = 0; c < cols; c++)
                            want += (double)Bf16.ToFloat(bits[r * cols + c]) * x[t * cols + c];
                        Assert.True(Math.Abs(want - alone[r]) <= 1e-5 * Math.Sqrt(cols), $"{tokens} tokens, token {t}, row {r}: {alone[r]} vs {want}");
                    }
                }
                // the permutation of the transposed product and its inverse
                float[] back = (float[])perm.Clone();
                fixed (float* bp = back)
                    Bf16Avx2.Interleave(bp, back.Length);
                Assert.Equal(x, back);
            }
        }
    }

    // Q8_0 on any token count (the AVX2 tiles: 2 rows x 2 tokens, pairs of rows, a last odd row): each token's results
    // are the bits of its matrix-vector product where the AVX2 kernels run (CPUs without AVX-512), and close to the
    // scalar definition everywhere
    [Theory]
    [InlineData(0, 13, 64)]
    [InlineData(3, 8, 1024)]
    public unsafe void Q8_0_batched_products_equal_each_token_alone(int rowStart, int rowCount, int cols)
    {
        int rows = rowStart + rowCount + 1;
        var owners = new List<IDisposable>();
        var q = Q8_0Matrix.Quantize(F32(Random(rows * cols, cols + 2), rows, cols), owners);
        bool exact = !System.Runtime.Intrinsics.X86.Avx512BW.IsSupported && System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported;
        for (int tokens = 1; tokens <= 7; tokens++)
        {
            float[] x = Random(tokens * cols, tokens + cols);
            var input = new QuantizedInput();
            input.Quantize(ActivationFormat.Q8, x, tokens, cols);
            float[] y = new float[tokens * rowCount], alone = new float[rowCount];
            q.MatMulQuantized(input, y, rowCount, rowStart, rowCount);
            for (int t = 0; t < tokens; t++)
            {
                var one = new QuantizedInput();
                one.Quantize(ActivationFormat.Q8, x.AsSpan(t * cols, cols), 1, cols);
                q.MatMulQuantized(one, alone, rowCount, rowStart, rowCount);
                fixed (short* xq = one.Q16Array)
                fixed (float* xs = one.ScaleArray)
                {
                    for (int r = 0; r < rowCount; r++)
                    {
                        float got = y[t * rowCount + r];
                        if (exact)
                            Assert.True(BitConverter.SingleToInt32Bits(alone[r]) == BitConverter.SingleToInt32Bits(got), $"{tokens} tokens, token {t}, row {r}: batched {got} vs alone {alone[r]}");
                        float want = Q8_0Matrix.DotScalar(q.RowPointer(rowStart + r), xq, xs, cols / 32);
                        Assert.True(Math.Abs(want - got) <= 1e-4f * (1 + Math.Abs(want)), $"{tokens} tokens, token {t}, row {r}: {got} vs scalar {want}");
                    }
                }
            }
        }
        owners.ForEach(o => o.Dispose());
    }

    // the activation encodings (every SIMD width) equal their definitions: Q8K's int8 codes round(x·127/amax) half to
    // even, in the permuted sub-block order, with their 16-value group sums; Q8's int16 codes round(x·32767/amax)
    [Fact]
    public unsafe void Activation_quantization_equals_its_definition()
    {
        int cols = 512, tokens = 3;
        float[] x = Random(tokens * cols, 77);
        for (int i = 0; i < x.Length; i += 37)
            x[i] = 0.5f * MathF.Round(x[i] * 8) / 4; // some values land on exact halves after scaling, testing ties
        var q = new QuantizedInput();
        q.Quantize(ActivationFormat.Q8K, x, tokens, cols);
        for (int t = 0; t < tokens; t++)
        {
            for (int b = 0; b < cols / 256; b++)
            {
                var blk = x.AsSpan(t * cols + b * 256, 256);
                float amax = 0;
                foreach (float v in blk)
                    amax = Math.Max(amax, Math.Abs(v));
                float id = 127f / amax;
                int block = t * (cols / 256) + b;
                Assert.Equal(amax / 127f, q.ScaleArray[block]);
                for (int g = 0; g < 16; g++)
                {
                    int sum = 0, dst = block * 256 + QuantizedInput.PermutedSubBlock(g >> 1) * 32 + (g & 1) * 16;
                    for (int l = 0; l < 16; l++)
                    {
                        int want = (int)MathF.Round(blk[g * 16 + l] * id);
                        sum += want;
                        Assert.True(want == q.Q8Array[dst + l], $"token {t} block {b} value {g * 16 + l}: {q.Q8Array[dst + l]} vs {want}");
                    }
                    Assert.Equal((short)sum, q.GroupSumArray[block * 16 + g]);
                }
            }
        }
        short[] q16 = new short[cols + 5];
        float[] row = Random(cols + 5, 78);
        float d = QuantizedInput.QuantizeInt16(row, q16);
        float amax16 = 0;
        foreach (float v in row)
            amax16 = Math.Max(amax16, Math.Abs(v));
        Assert.Equal(amax16 / 32767f, d);
        for (int i = 0; i < row.Length; i++)
            Assert.Equal((short)MathF.Round(row[i] * (32767f / amax16)), q16[i]);
    }

    // the AVX2 form of vpdpbusd / vpdpwssd gives the exact integer sums for the operand ranges the kernels use (codes
    // 0..63 against int8, int16 against int16): checked against the definition at the extremes and at random
    [Fact]
    public void Avx2_integer_dot_steps_equal_the_definition()
    {
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported)
            return;
        var rnd = new Random(5);
        byte[] u = new byte[32];
        sbyte[] s = new sbyte[32];
        short[] a = new short[16], b = new short[16];
        for (int round = 0; round < 2000; round++)
        {
            for (int i = 0; i < 32; i++)
            {
                u[i] = round == 0 ? (byte)63 : (byte)rnd.Next(64);
                s[i] = round == 0 ? sbyte.MinValue : round == 1 ? sbyte.MaxValue : (sbyte)rnd.Next(-128, 128);
            }
            for (int i = 0; i < 16; i++)
            {
                a[i] = round == 0 ? (short)32256 : (short)rnd.Next(-32256, 32257);
                b[i] = (short)rnd.Next(-128, 128);
            }
            var got = Int8Dot.BytesAvx2(System.Runtime.Intrinsics.Vector256.Create(u), System.Runtime.Intrinsics.Vector256.Create(s));
            var acc = System.Runtime.Intrinsics.Vector256.Create(round);
            var words = Int8Dot.Words(acc, System.Runtime.Intrinsics.Vector256.Create(a), System.Runtime.Intrinsics.Vector256.Create(b));
            var bytes = acc + Int8Dot.Bytes(System.Runtime.Intrinsics.Vector256.Create(u), System.Runtime.Intrinsics.Vector256.Create(s));
            for (int lane = 0; lane < 8; lane++)
            {
                int want = 0;
                for (int k = 0; k < 4; k++)
                    want += u[4 * lane + k] * s[4 * lane + k];
                Assert.Equal(want, got[lane]);
                Assert.Equal(round + want, bytes[lane]);
                Assert.Equal(round + a[2 * lane] * b[2 * lane] + a[2 * lane + 1] * b[2 * lane + 1], words[lane]);
            }
        }
    }

    // NibbleDots (the Q4_K kernels' accumulator): eight steps of 4-bit codes against int8, at the int16 bound (codes 15
    // against -128: 8·2·15·128 = 30720 per pair lane without VNNI) and at random, equal the definition
    [Fact]
    public void Nibble_dot_sums_over_eight_steps_equal_the_definition()
    {
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported)
            return;
        var rnd = new Random(6);
        byte[] u = new byte[32];
        sbyte[] s = new sbyte[32];
        for (int round = 0; round < 500; round++)
        {
            var dots = new NibbleDots();
            long[] want = new long[8];
            for (int step = 0; step < 8; step++)
            {
                for (int i = 0; i < 32; i++)
                {
                    u[i] = round < 2 ? (byte)15 : (byte)rnd.Next(16);
                    s[i] = round == 0 ? sbyte.MinValue : round == 1 ? sbyte.MaxValue : (sbyte)rnd.Next(-128, 128);
                    want[i / 4] += u[i] * s[i];
                }
                dots.Add(System.Runtime.Intrinsics.Vector256.Create(u), System.Runtime.Intrinsics.Vector256.Create(s));
            }
            for (int lane = 0; lane < 8; lane++)
                Assert.Equal(want[lane], dots.Sum[lane]);
        }
    }

    [Fact]
    public void Fp8_quantization_round_trips_within_e4m3_precision()
    {
        int rows = 130, cols = 260;
        float[] w = Random(rows * cols, 9);
        var owners = new List<IDisposable>();
        Fp8BlockMatrix q = WeightConversion.QuantizeFp8(F32(w, rows, cols), 128, 128, owners);
        float[] d = q.ToFloatArray();
        for (int i = 0; i < w.Length; i++)
            Assert.True(Math.Abs(w[i] - d[i]) <= Math.Abs(w[i]) / 16 + 1e-3f, $"{i}: {w[i]} vs {d[i]}");
        owners.ForEach(o => o.Dispose());
    }

    [Theory]
    [InlineData(0, 9, 40)]
    [InlineData(3, 12, 512)]
    [InlineData(1, 7, 17)]
    [InlineData(2, 10, 48)] // no multiple of 32: the 256-bit kernel (Bf16Avx2) even with AVX-512
    public unsafe void Bf16_transposed_product_matches_double(int rowStart, int rowCount, int cols)
    {
        int rows = rowStart + rowCount + 2;
        float[] w = Random(rows * cols, cols + rowCount);
        ushort[] bits = new ushort[w.Length];
        Bf16.FromFloat(w, bits);
        float[] x = Random(rowCount, 3), y = Random(cols, 4);
        double[] want = new double[cols];
        for (int c = 0; c < cols; c++)
        {
            want[c] = y[c];
            for (int i = 0; i < rowCount; i++)
                want[c] += (double)x[i] * Bf16.ToFloat(bits[(rowStart + i) * cols + c]);
        }
        fixed (ushort* p = bits)
            new Bf16Matrix(p, rows, cols, null).MatVecTransposedAdd(x, y, rowStart, rowCount);
        double diff = 0;
        for (int c = 0; c < cols; c++)
            diff = Math.Max(diff, Math.Abs(want[c] - y[c]));
        Assert.True(diff <= 1e-5, $"rows [{rowStart}, {rowStart + rowCount}) x {cols}: max |diff| {diff}");
    }

    [Theory]
    [InlineData(0, 9, 32)]
    [InlineData(3, 12, 512)]
    [InlineData(1, 7, 96)]
    public void Q8_0_transposed_product_matches_double(int rowStart, int rowCount, int cols)
    {
        int rows = rowStart + rowCount + 2;
        var owners = new List<IDisposable>();
        var q = Q8_0Matrix.Quantize(F32(Random(rows * cols, cols + rowCount), rows, cols), owners);
        float[] deq = q.ToFloatArray(), x = Random(rowCount, 3), y = Random(cols, 4);
        double[] want = new double[cols];
        for (int c = 0; c < cols; c++)
        {
            want[c] = y[c];
            for (int i = 0; i < rowCount; i++)
                want[c] += (double)x[i] * deq[(rowStart + i) * cols + c];
        }
        q.MatVecTransposedAdd(x, y, rowStart, rowCount);
        double diff = 0;
        for (int c = 0; c < cols; c++)
            diff = Math.Max(diff, Math.Abs(want[c] - y[c]));
        Assert.True(diff <= 1e-5, $"rows [{rowStart}, {rowStart + rowCount}) x {cols}: max |diff| {diff}");
        Assert.Throws<ArgumentException>(() => q.MatVecTransposedAdd(x, new float[cols - 1], rowStart, rowCount));
        owners.ForEach(o => o.Dispose());
    }

    [Fact]
    public unsafe void Dequantized_rows_equal_the_block_definitions()
    {
        const int rows = 3, cols = 512;
        float[] w = Random(rows * cols, 21);
        for (int i = 0; i < w.Length; i += 7)
            w[i] *= 40; // outliers: scales and mins far apart within a super-block
        var owners = new List<IDisposable>();
        var q8 = Q8_0Matrix.Quantize(F32(w, rows, cols), owners);
        var q4 = Q4KMatrix.Quantize(F32(w, rows, cols), owners);
        float[] got = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            q8.ReadRow(r, got);
            byte* p = q8.RowPointer(r);
            for (int i = 0; i < cols; i++)
            {
                byte* blk = p + i / 32 * Q8_0Matrix.BlockBytes;
                float want = Half16.ToFloat(*(ushort*)blk) * ((sbyte*)(blk + 2))[i % 32];
                Assert.True(want == got[i], $"Q8_0 row {r}, value {i}: {got[i]}, want {want}");
            }
            q4.ReadRow(r, got);
            p = q4.RowPointer(r);
            for (int i = 0; i < cols; i++)
            {
                byte* blk = p + i / 256 * Q4KMatrix.BlockBytes;
                int c = i % 256 / 64, l = i % 32, sub = i % 256 / 32; // sub-block 2c: low nibbles, 2c + 1: high
                (int sc, int mn) = Q4KMatrix.ScaleMin(sub, blk + 4);
                int nib = sub % 2 == 0 ? blk[16 + c * 32 + l] & 0xF : blk[16 + c * 32 + l] >> 4;
                float want = Half16.ToFloat(*(ushort*)blk) * sc * nib - Half16.ToFloat(*(ushort*)(blk + 2)) * mn;
                Assert.True(want == got[i], $"Q4_K row {r}, value {i}: {got[i]}, want {want}");
            }
        }
        // Q6_K as llama.cpp's dequantize_row_q6_K writes it (the vectorized ReadRow against the layout itself)
        var q6 = Q6KMatrix.Quantize(F32(w, rows, cols), owners);
        for (int r = 0; r < rows; r++)
        {
            q6.ReadRow(r, got);
            byte* p = q6.RowPointer(r);
            for (int i = 0; i < cols; i++)
            {
                byte* blk = p + i / 256 * Q6KMatrix.BlockBytes;
                int v = i % 256, h = v / 128, k = v % 128 / 32, l = v % 32;
                byte* ql = blk + 64 * h, qh = blk + 128 + 32 * h;
                int lowNibble = k switch { 0 => ql[l] & 0xF, 1 => ql[l + 32] & 0xF, 2 => ql[l] >> 4, _ => ql[l + 32] >> 4 };
                int q = (lowNibble | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
                float want = Half16.ToFloat(*(ushort*)(blk + 208)) * ((sbyte*)(blk + 192))[v / 16] * q;
                Assert.True(want == got[i], $"Q6_K row {r}, value {i}: {got[i]}, want {want}");
            }
        }
        Assert.Throws<ArgumentException>(() => q8.ReadRow(0, new float[cols - 1]));
        owners.ForEach(o => o.Dispose());
    }

    [Fact]
    public unsafe void Q4K_vector_scale_unpack_matches_the_scalar_definition()
    {
        if (!System.Runtime.Intrinsics.X86.Ssse3.IsSupported)
            return; // the VNNI kernels that use it need AVX2 as well
        var rng = new Random(5);
        byte* blk = stackalloc byte[Q4KMatrix.BlockBytes];
        for (int trial = 0; trial < 20000; trial++)
        {
            // every bit of the 12 packed bytes (and the 4 that follow, which the 16-byte load reads and must ignore)
            for (int i = 0; i < 32; i++)
                blk[i] = (byte)rng.Next(256);
            var got = Q4KVnni.ScaleBytes(blk);
            for (int j = 0; j < 8; j++)
            {
                (int sc, int mn) = Q4KMatrix.ScaleMin(j, blk + 4);
                Assert.True(got.GetElement(j) == sc && got.GetElement(8 + j) == mn,
                    $"trial {trial}, sub-block {j}: scale {got.GetElement(j)} min {got.GetElement(8 + j)}, want {sc} {mn}");
            }
        }
    }

    [Fact]
    public void Row_kernels_match_definitions()
    {
        for (int n = 1; n <= 67; n += 3)
        {
            float[] x = Random(n, n), wt = Random(n, n + 1);
            var y = new float[n];
            Ops.RmsNorm(x, wt, 1e-6f, y);
            double ms = x.Sum(v => (double)v * v) / n;
            for (int i = 0; i < n; i++)
                Assert.Equal(wt[i] * x[i] / Math.Sqrt(ms + 1e-6), y[i], 1e-5);
            float[] g = Random(n, 2 * n), u = Random(n, 3 * n);
            float[] g2 = (float[])g.Clone();
            Ops.SiluMul(g2, u);
            for (int i = 0; i < n; i++)
                Assert.Equal(g[i] / (1 + Math.Exp(-g[i])) * u[i], g2[i], 1e-6);
            float[] s = Random(n, 4 * n, 30);
            float[] s2 = (float[])s.Clone();
            Ops.Softmax(s2);
            double z = s.Sum(v => Math.Exp(v - s.Max()));
            for (int i = 0; i < n; i++)
                Assert.Equal(Math.Exp(s[i] - s.Max()) / z, s2[i], 1e-6);
        }
    }
}
