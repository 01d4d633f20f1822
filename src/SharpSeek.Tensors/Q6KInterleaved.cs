// Q6_K weights repacked eight rows at a time for one-token products with 512-bit vpmaddubsw (AVX-512BW), or the same
// layout read as 256-bit halves (AVX2), as Q4KInterleavedMatrix does for Q4_K: one 64-byte vector of 6-bit codes holds four consecutive values of each of eight
// rows for two chunks of four values, multiplied against activations laid out to match, so that eight rows' sums end in
// eight lanes with no horizontal sums and the int8 scales apply to eight rows at once.
//
// Per group of eight rows and super-block b, GroupBlockBytes = 1680 bytes (eight 210-byte Q6_K blocks):
//   [0, 16)       d of rows 0-7 (fp16)
//   [16, 144)     scale j (16 values) of row r at 16 + 8j + r (int8)
//   [144, 1168)   ql: 16 vectors of 64 bytes of low 4 bits (two code vectors each, in the low and high nibbles)
//   [1168, 1680)  qh: 8 vectors of 64 bytes of high 2 bits (four code vectors each)
// Code vector cv (0..31) covers group j = cv / 2 (values 16j .. 16j + 15) half p = cv % 2: bytes [0, 32) are values
// 16j + 8p + 0..3 of rows 0-7 (row r at 4r), bytes [32, 64) values 16j + 8p + 4..7. The quant bytes of code vectors
// 4n .. 4n + 3 come from ql vectors 2n (low nibbles: 4n, high: 4n + 2) and 2n + 1 (low: 4n + 1, high: 4n + 3), and qh
// vector n (fields 0-3: 4n, 4n + 1, 4n + 2, 4n + 3), so that joining a code is one select and one mask.
//
// A product of one token: the code minus 32 times x per value pair is vpmaddubsw(code, x) − vpmaddubsw(32, x), the
// second term computed once per product (Expand); |pair| ≤ 2·32·127, two code vectors of a group added in int16, then
// vpmaddwd against the group's scale per row widens and scales at once. The integer sum of a block per row is exact,
// then acc += sum · (d·d_x) as one fused multiply-add, as the row-layout kernel (Q6KVnni) does: the same bits.
// Without AVX-512 each 64-byte vector is two 32-byte halves with the same row of each int16 lane (lane k: row k / 2):
// the two code vectors of a group add in int16 per half (|sum| ≤ 16,384; the halves together could reach 32,768, so
// they are widened apart), vpmaddwd against ones widens each row's pair, and vpmulld applies the group's scale: the
// same integers.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Q6_K weights with rows interleaved in groups of eight for one-token 512-bit or 256-bit products.</summary>
public sealed unsafe class Q6KInterleavedMatrix
{
    public const int GroupRows = 8, GroupBlockBytes = 8 * Q6KMatrix.BlockBytes;
    private const int ScaleOffset = 16, QlOffset = 144, QhOffset = 1168;
    /// <summary>Bytes of one super-block's expanded activations: 32 code vectors' x, then their 32·x pair sums.</summary>
    private const int ExpandedBlockBytes = 4096;
    private readonly byte* _data;
    private readonly NativeBuffer _buffer;

    private Q6KInterleavedMatrix(NativeBuffer buffer, int groups, int blocks)
    {
        _buffer = buffer;
        _data = buffer.Pointer;
        Groups = groups;
        Blocks = blocks;
    }

    /// <summary>Whole groups of eight rows (the rows past them are not held).</summary>
    public int Groups { get; }

    /// <summary>Super-blocks per row.</summary>
    public int Blocks { get; }

    /// <summary>Bytes held.</summary>
    public long ByteSize => (long)Groups * Blocks * GroupBlockBytes;

    /// <summary>Whether this machine runs the kernel: AVX-512BW (512-bit) or AVX2 (256-bit), the row kernel it must
    /// agree with bit for bit is the VNNI one (<see cref="Q6KVnni"/>, also on AVX2 through the same integer sums), and
    /// this layout's kernel was the faster in a short timing (<see cref="Calibrate"/>).</summary>
    public static bool IsUsed => UseOverride ?? s_used.Value;

    /// <summary>Overrides the machine's choice (tests and A/B timings; null: the choice).</summary>
    internal static bool? UseOverride { get; set; }

    /// <summary>Runs the 256-bit kernel even where AVX-512BW is there (tests).</summary>
    internal static bool Force256 { get; set; }

    private static bool Wide => Avx512BW.IsSupported && !Force256;

    private static readonly Lazy<bool> s_used = new(() => (Avx512BW.IsSupported || Avx2.IsSupported) && Q6KVnni.IsSupported && Calibrate());

    [ThreadStatic] private static sbyte[]? t_expanded;

    /// <summary>The whole groups of eight rows of <paramref name="m"/> (rows past them are left to the row layout).</summary>
    public static Q6KInterleavedMatrix FromRows(Q6KMatrix m)
    {
        int groups = m.Rows / GroupRows, blocks = m.Cols / Q6KMatrix.BlockValues;
        var buf = new NativeBuffer(Math.Max(1, (long)groups * blocks * GroupBlockBytes));
        for (int g = 0; g < groups; g++)
        {
            for (int b = 0; b < blocks; b++)
                Pack(m, g, b, buf.Pointer + ((long)g * blocks + b) * GroupBlockBytes);
        }
        return new Q6KInterleavedMatrix(buf, groups, blocks);
    }

    /// <summary>Code vector cv's byte i (0..63): the row and the value of the block it holds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (int Row, int Value) Slot(int cv, int i) => ((i & 31) >> 2, 16 * (cv >> 1) + 8 * (cv & 1) + 4 * (i >> 5) + (i & 3));

    private static void Pack(Q6KMatrix m, int g, int b, byte* o)
    {
        new Span<byte>(o, GroupBlockBytes).Clear();
        for (int r = 0; r < GroupRows; r++)
        {
            byte* blk = m.RowPointer(g * GroupRows + r) + (long)b * Q6KMatrix.BlockBytes;
            ((ushort*)o)[r] = *(ushort*)(blk + 208);
            for (int j = 0; j < 16; j++)
                o[ScaleOffset + 8 * j + r] = blk[192 + j];
        }
        for (int cv = 0; cv < 32; cv++)
        {
            int n = cv >> 2, f = cv & 3;                       // qh vector and field
            int m64 = 2 * n + (f & 1), nibble = f >> 1;        // ql vector and nibble
            for (int i = 0; i < 64; i++)
            {
                (int row, int v) = Slot(cv, i);
                int code = Q6KMatrix.Code(m.RowPointer(g * GroupRows + row) + (long)b * Q6KMatrix.BlockBytes, v);
                o[QlOffset + 64 * m64 + i] |= (byte)((code & 0xF) << (4 * nibble));
                o[QhOffset + 64 * n + i] |= (byte)((code >> 4) << (2 * f));
            }
        }
    }

    /// <summary>The 6-bit code of row r (of the group), value v, super-block b of group g (the scalar definition of the layout).</summary>
    internal int Code(int g, int b, int r, int v)
    {
        byte* o = _data + ((long)g * Blocks + b) * GroupBlockBytes;
        int cv = 2 * (v >> 4) + ((v >> 3) & 1), i = 32 * ((v >> 2) & 1) + 4 * r + (v & 3);
        int n = cv >> 2, f = cv & 3, m64 = 2 * n + (f & 1), nibble = f >> 1;
        return ((o[QlOffset + 64 * m64 + i] >> (4 * nibble)) & 0xF) | ((o[QhOffset + 64 * n + i] >> (2 * f)) & 3) << 4;
    }

    /// <summary>
    /// One token's products of rows [rowStart, rowStart + count) of whole groups (rowStart and count multiples of 8):
    /// y[i] for row rowStart + i. x: Q8K values of one token [Blocks·256], xd its block scales.
    /// </summary>
    public void MatVec(sbyte* xq, float* xd, float* y, int rowStart, int count)
    {
        if (rowStart % GroupRows != 0 || count % GroupRows != 0 || rowStart < 0 || rowStart / GroupRows + count / GroupRows > Groups)
            throw new ArgumentException($"Q6KInterleavedMatrix.MatVec: rows [{rowStart}, +{count}) are not whole groups of {Groups}");
        if (count == 0)
            return;
        sbyte[] buffer = t_expanded is { } e && e.Length >= Blocks * ExpandedBlockBytes ? e : t_expanded = new sbyte[Blocks * ExpandedBlockBytes];
        fixed (sbyte* xe = buffer)
        {
            if (Wide)
                Expand(xq, Blocks, xe);
            else
                Expand256(xq, Blocks, xe);
            int g0 = rowStart / GroupRows, n = count / GroupRows, half = n / 2;
            long blockBytes = (long)Blocks * GroupBlockBytes;
            if (half > 0)
            {
                StreamPrefetch.Start(_data + g0 * blockBytes, half * blockBytes);
                StreamPrefetch.Start(_data + (g0 + half) * blockBytes, half * blockBytes);
            }
            // two groups at a time from the two halves of the range: two memory streams
            bool wide = Wide;
            for (int i = 0; i < half; i++)
            {
                if (wide)
                    GroupPair(_data + (g0 + i) * blockBytes, _data + (g0 + half + i) * blockBytes, Blocks, xe, xd, y + GroupRows * i, y + GroupRows * (half + i));
                else
                    GroupPair256(_data + (g0 + i) * blockBytes, _data + (g0 + half + i) * blockBytes, Blocks, xe, xd, y + GroupRows * i, y + GroupRows * (half + i));
            }
            if (2 * half < n)
            {
                if (wide)
                    GroupPair(_data + (g0 + n - 1) * blockBytes, _data + (g0 + n - 1) * blockBytes, Blocks, xe, xd, y + GroupRows * (n - 1), y + GroupRows * (n - 1));
                else
                    GroupPair256(_data + (g0 + n - 1) * blockBytes, _data + (g0 + n - 1) * blockBytes, Blocks, xe, xd, y + GroupRows * (n - 1), y + GroupRows * (n - 1));
            }
        }
        GC.KeepAlive(_buffer);
    }

    /// <summary>One token's Q8K values as the kernel reads them: per block 32 vectors of 64 bytes (code vector cv: its
    /// values' four x bytes repeated for the eight rows, as Slot places them), then 32 vectors of the int16 32·(x + x')
    /// pair sums of those.</summary>
    private static void Expand(sbyte* xq, int blocks, sbyte* dst)
    {
        Vector512<byte> c32 = Vector512.Create((byte)32);
        for (int b = 0; b < blocks; b++)
        {
            sbyte* xb = xq + (long)b * 256, d = dst + (long)b * ExpandedBlockBytes;
            for (int cv = 0; cv < 32; cv++)
            {
                int v0 = 16 * (cv >> 1) + 8 * (cv & 1); // values v0 .. v0 + 3 in the low half, v0 + 4 .. v0 + 7 in the high
                int s0 = QuantizedInput.PermutedSubBlock(v0 >> 5) * 32 + (v0 & 31);
                Vector512<sbyte> x = Vector512.Create(Vector256.Create(*(int*)(xb + s0)), Vector256.Create(*(int*)(xb + s0 + 4))).AsSByte();
                x.Store(d + 64 * cv);
                Avx512BW.MultiplyAddAdjacent(c32, x).Store((short*)(d + 2048 + 64 * cv));
            }
        }
    }

    /// <summary><see cref="Expand"/> in 256-bit halves (the same x bytes), except that the 32·(x + x') pair sums are
    /// stored added over the two code vectors of each group (cv, cv + 1: at cv's slot), as <see cref="Block256"/>
    /// subtracts them once per group.</summary>
    private static void Expand256(sbyte* xq, int blocks, sbyte* dst)
    {
        Vector256<byte> c32 = Vector256.Create((byte)32);
        for (int b = 0; b < blocks; b++)
        {
            sbyte* xb = xq + (long)b * 256, d = dst + (long)b * ExpandedBlockBytes;
            for (int cv = 0; cv < 32; cv++)
            {
                int v0 = 16 * (cv >> 1) + 8 * (cv & 1);
                int s0 = QuantizedInput.PermutedSubBlock(v0 >> 5) * 32 + (v0 & 31);
                Vector256<sbyte> lo = Vector256.Create(*(int*)(xb + s0)).AsSByte(), hi = Vector256.Create(*(int*)(xb + s0 + 4)).AsSByte();
                lo.Store(d + 64 * cv);
                hi.Store(d + 64 * cv + 32);
            }
            for (int cv = 0; cv < 32; cv += 2)
            {
                // |32·(x + x')| ≤ 8192, two of them ≤ 16384: int16
                for (int h = 0; h < 64; h += 32)
                {
                    (Avx2.MultiplyAddAdjacent(c32, Vector256.Load(d + 64 * cv + h)) + Avx2.MultiplyAddAdjacent(c32, Vector256.Load(d + 64 * (cv + 1) + h)))
                        .Store((short*)(d + 2048 + 64 * cv + h));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GroupPair256(byte* w0, byte* w1, int blocks, sbyte* xe, float* xd, float* y0, float* y1)
    {
        Vector256<float> a0 = Vector256<float>.Zero, a1 = a0;
        for (int b = 0; b < blocks; b++)
        {
            long o = (long)b * GroupBlockBytes;
            sbyte* x = xe + (long)b * ExpandedBlockBytes;
            Vector256<float> dx = Vector256.Create(xd[b]);
            a0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Block256(w0 + o, x)), Dx(w0 + o, dx), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Block256(w1 + o, x)), Dx(w1 + o, dx), a1);
        }
        a0.Store(y0);
        a1.Store(y1);
    }

    /// <summary><see cref="Block"/> on 256-bit halves: the same exact integer sums, eight rows in eight int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Block256(byte* o, sbyte* x)
    {
        StreamPrefetch.Lines(o + StreamPrefetch.Distance, GroupBlockBytes);
        Vector256<byte> m4 = Vector256.Create((byte)0x0F), m30 = Vector256.Create((byte)0x30);
        Vector256<short> ones = Vector256.Create((short)1);
        Vector256<int> acc = Vector256<int>.Zero;
        short* e = (short*)(x + 2048);
        for (int n = 0; n < 8; n++) // qh vector n: code vectors 4n .. 4n + 3 = groups 2n and 2n + 1
        {
            int cv = 4 * n;
            sbyte* xv = x + 64 * cv;
            Vector256<int> g0 = Vector256<int>.Zero, g1 = Vector256<int>.Zero;
            for (int s = 0; s < 2; s++) // the 32-byte halves
            {
                int h = 32 * s;
                Vector256<ushort> qh = Vector256.Load(o + QhOffset + 64 * n + h).AsUInt16();
                Vector256<byte> l0 = Vector256.Load(o + QlOffset + 128 * n + h), l1 = Vector256.Load(o + QlOffset + 128 * n + 64 + h);
                // code = low nibble | the field's two bits at bits 4-5
                Vector256<byte> c0 = (l0 & m4) | (Vector256.ShiftLeft(qh, 4).AsByte() & m30);
                Vector256<byte> c1 = (l1 & m4) | (Vector256.ShiftLeft(qh, 2).AsByte() & m30);
                Vector256<byte> c2 = (Vector256.ShiftRightLogical(l0.AsUInt16(), 4).AsByte() & m4) | (qh.AsByte() & m30);
                Vector256<byte> c3 = (Vector256.ShiftRightLogical(l1.AsUInt16(), 4).AsByte() & m4) | (Vector256.ShiftRightLogical(qh, 2).AsByte() & m30);
                short* es = e + h / 2;
                // Σ code·x of two code vectors (|.| ≤ 4·63·128 = 32256) minus their 32·Σx (|Σ (code − 32)·x| ≤ 16384): int16
                Vector256<short> p0 = Avx2.MultiplyAddAdjacent(c0, Vector256.Load(xv + h)) + Avx2.MultiplyAddAdjacent(c1, Vector256.Load(xv + 64 + h))
                                    - Vector256.Load(es + 32 * cv);
                Vector256<short> p1 = Avx2.MultiplyAddAdjacent(c2, Vector256.Load(xv + 128 + h)) + Avx2.MultiplyAddAdjacent(c3, Vector256.Load(xv + 192 + h))
                                    - Vector256.Load(es + 32 * (cv + 2));
                g0 += Avx2.MultiplyAddAdjacent(p0, ones);
                g1 += Avx2.MultiplyAddAdjacent(p1, ones);
            }
            Vector256<int> s0 = Avx2.ConvertToVector256Int32((sbyte*)(o + ScaleOffset + 16 * n));
            Vector256<int> s1 = Avx2.ConvertToVector256Int32((sbyte*)(o + ScaleOffset + 16 * n + 8));
            acc += Avx2.MultiplyLow(g0, s0) + Avx2.MultiplyLow(g1, s1);
        }
        return acc;
    }

    // scale index vectors: int16 lane k of a group's product takes the scale of row (k % 16) / 2, from the 32 scales
    // (4 groups x 8 rows) sign-extended to int16, group q of the four at lanes 8q .. 8q + 7
    private static Vector512<short> ScaleIndex(int q)
    {
        Vector512<short> v = default;
        for (int k = 0; k < 32; k++)
            v = v.WithElement(k, (short)(8 * q + (k % 16) / 2));
        return v;
    }

    private static readonly Vector512<short> s_index0 = ScaleIndex(0), s_index1 = ScaleIndex(1), s_index2 = ScaleIndex(2), s_index3 = ScaleIndex(3);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GroupPair(byte* w0, byte* w1, int blocks, sbyte* xe, float* xd, float* y0, float* y1)
    {
        // the index vectors read once, before the loop (see Q6KMatrix.Dot512x4)
        Vector512<short> i0 = s_index0, i1 = s_index1, i2 = s_index2, i3 = s_index3;
        Vector256<float> a0 = Vector256<float>.Zero, a1 = a0;
        for (int b = 0; b < blocks; b++)
        {
            long o = (long)b * GroupBlockBytes;
            sbyte* x = xe + (long)b * ExpandedBlockBytes;
            Vector256<float> dx = Vector256.Create(xd[b]);
            a0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Block(w0 + o, x, i0, i1, i2, i3)), Dx(w0 + o, dx), a0);
            a1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(Block(w1 + o, x, i0, i1, i2, i3)), Dx(w1 + o, dx), a1);
        }
        a0.Store(y0);
        a1.Store(y1);
    }

    /// <summary>d·d_x of the group's eight rows (d as Q6KVnni computes it: fp16 to fp32, times d_x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Dx(byte* o, Vector256<float> dx) =>
        Half16.ToFloat8((ushort*)o) * dx;

    /// <summary>Σ_j sc_j·Σ (code − 32)·x over one super-block, eight rows in eight int32 lanes (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Block(byte* o, sbyte* x, Vector512<short> i0, Vector512<short> i1, Vector512<short> i2, Vector512<short> i3)
    {
        StreamPrefetch.Lines(o + StreamPrefetch.Distance, GroupBlockBytes);
        Vector512<byte> m4 = Vector512.Create((byte)0x0F), m6 = Vector512.Create((byte)0x3F);
        Vector512<int> acc = Vector512<int>.Zero;
        short* e = (short*)(x + 2048);
        for (int q = 0; q < 4; q++) // groups 4q .. 4q + 3: code vectors 8q .. 8q + 7, qh vectors 2q, 2q + 1
        {
            Vector512<short> sc = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(o + ScaleOffset + 32 * q)));
            for (int h = 0; h < 2; h++)
            {
                int n = 2 * q + h; // qh vector: code vectors 4n .. 4n + 3 = groups 2n (4n, 4n + 1) and 2n + 1 (4n + 2, 4n + 3)
                Vector512<ushort> qh = Vector512.Load(o + QhOffset + 64 * n).AsUInt16();
                Vector512<byte> l0 = Vector512.Load(o + QlOffset + 128 * n), l1 = Vector512.Load(o + QlOffset + 128 * n + 64);
                Vector512<byte> c0 = Vector512.ConditionalSelect(m4, l0, Vector512.ShiftLeft(qh, 4).AsByte()) & m6;
                Vector512<byte> c1 = Vector512.ConditionalSelect(m4, l1, Vector512.ShiftLeft(qh, 2).AsByte()) & m6;
                Vector512<byte> c2 = Vector512.ConditionalSelect(m4, Vector512.ShiftRightLogical(l0.AsUInt16(), 4).AsByte(), qh.AsByte()) & m6;
                Vector512<byte> c3 = Vector512.ConditionalSelect(m4, Vector512.ShiftRightLogical(l1.AsUInt16(), 4).AsByte(), Vector512.ShiftRightLogical(qh, 2).AsByte()) & m6;
                int cv = 4 * n;
                sbyte* xv = x + 64 * cv;
                Vector512<short> p0 = Avx512BW.MultiplyAddAdjacent(c0, Vector512.Load(xv)) - Vector512.Load(e + 32 * cv)
                                    + Avx512BW.MultiplyAddAdjacent(c1, Vector512.Load(xv + 64)) - Vector512.Load(e + 32 * (cv + 1));
                Vector512<short> p1 = Avx512BW.MultiplyAddAdjacent(c2, Vector512.Load(xv + 128)) - Vector512.Load(e + 32 * (cv + 2))
                                    + Avx512BW.MultiplyAddAdjacent(c3, Vector512.Load(xv + 192)) - Vector512.Load(e + 32 * (cv + 3));
                // group 2n is the (2h)-th of the four whose scales sc holds, group 2n + 1 the (2h + 1)-th
                acc += Avx512BW.MultiplyAddAdjacent(p0, Avx512BW.PermuteVar32x16(sc, h == 0 ? i0 : i2))
                     + Avx512BW.MultiplyAddAdjacent(p1, Avx512BW.PermuteVar32x16(sc, h == 0 ? i1 : i3));
            }
        }
        return acc.GetLower() + acc.GetUpper();
    }

    /// <summary>The scalar definition of <see cref="MatVec"/> for row r of group g: Σ_b fma(Σ_j sc_j·Σ (code − 32)·x, d·d_x, acc).</summary>
    internal float DotScalar(int g, int r, sbyte* xq, float* xd)
    {
        float acc = 0;
        for (int b = 0; b < Blocks; b++)
        {
            byte* o = _data + ((long)g * Blocks + b) * GroupBlockBytes;
            int isum = 0;
            for (int j = 0; j < 16; j++)
            {
                int dot = 0;
                for (int i = 0; i < 16; i++)
                {
                    int v = 16 * j + i;
                    dot += (Code(g, b, r, v) - 32) * xq[(long)b * 256 + QuantizedInput.PermutedSubBlock(v >> 5) * 32 + (v & 31)];
                }
                isum += (sbyte)o[ScaleOffset + 8 * j + r] * dot;
            }
            acc = MathF.FusedMultiplyAdd(isum, Half16.ToFloat(((ushort*)o)[r]) * xd[b], acc);
        }
        return acc;
    }

    /// <summary>
    /// Times the row-layout VNNI kernel and this one on the same 32 rows of 4 random super-blocks (in cache) in alternating
    /// rounds, about a millisecond in all; true when this one was the faster in most rounds (cores with full-width 512-bit
    /// units; perhaps not where 512-bit work has fewer ports).
    /// </summary>
    private static bool Calibrate()
    {
        const int rows = 32, cols = 1024, reps = 8;
        var rng = new Random(6);
        var bytes = new byte[rows * cols / 256 * Q6KMatrix.BlockBytes];
        rng.NextBytes(bytes);
        var x = new float[cols];
        for (int i = 0; i < cols; i++)
            x[i] = rng.NextSingle() - 0.5f;
        var input = new QuantizedInput();
        input.Quantize(ActivationFormat.Q8K, x, 1, cols);
        var y = new float[rows];
        fixed (byte* p = bytes)
        {
            for (int i = 0; i < bytes.Length; i += Q6KMatrix.BlockBytes)
                *(ushort*)(p + i + 208) = 0x2E66; // finite d
            var m = new Q6KMatrix(p, rows, cols, null);
            Q6KInterleavedMatrix packed = FromRows(m);
            try
            {
                fixed (sbyte* xq = input.Q8Array)
                fixed (float* xd = input.ScaleArray)
                fixed (short* gs = input.GroupSumArray)
                fixed (float* yp = y)
                {
                    // the buffers stay pinned for the whole timing; the delegates take their addresses as integers
                    nint xa = (nint)xq, da = (nint)xd, ga = (nint)gs, ya = (nint)yp;
                    return KernelChoice.CandidateWins(() =>
                    {
                        for (int k = 0; k < reps; k++)
                        {
                            for (int r = 0; r < rows / 2; r++)
                                Q6KVnni.DotPair(m.RowPointer(r), m.RowPointer(r + rows / 2), (sbyte*)xa, (float*)da, (short*)ga, cols / 256, (float*)ya + r, (float*)ya + r + rows / 2);
                        }
                    }, () =>
                    {
                        for (int k = 0; k < reps; k++)
                            packed.MatVec((sbyte*)xa, (float*)da, (float*)ya, 0, rows);
                    });
                }
            }
            finally
            {
                packed._buffer.Dispose();
            }
        }
    }
}

/// <summary>
/// Q6_K rows left where they are (a memory-mapped GGUF tensor) whose one-token products run on an interleaved copy of
/// their whole groups of eight rows (<see cref="Q6KInterleavedMatrix"/>), made the first time one is asked for where that
/// kernel is used (<see cref="RepackingMatrix{TRows, TPacked}"/>); products of several tokens and the rows past the last
/// group use the rows. Both give the same bits.
/// </summary>
public sealed unsafe class Q6KRepackingMatrix : RepackingMatrix<Q6KMatrix, Q6KInterleavedMatrix>
{
    public Q6KRepackingMatrix(Q6KMatrix rows) : base(rows, Q6KInterleavedMatrix.GroupRows, Q6KInterleavedMatrix.FromRows)
    {
    }

    /// <summary>The bytes a product reads (the same for both layouts).</summary>
    public override long ByteSize => RowLayout.ByteSize;

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        if (x.Tokens != 1 || !Q6KInterleavedMatrix.IsUsed || x.Format != ActivationFormat.Q8K || x.Cols != Cols)
        {
            RowLayout.MatMulQuantized(x, y, ldy, rowStart, rowCount);
            return;
        }
        const int G = Q6KInterleavedMatrix.GroupRows;
        int end = rowStart + rowCount, first = (rowStart + G - 1) / G * G, last = Math.Min(end, Rows / G * G) / G * G;
        if (last <= first)
        {
            RowLayout.MatMulQuantized(x, y, ldy, rowStart, rowCount);
            return;
        }
        if (y.Length < rowCount)
            throw new ArgumentException($"output has {y.Length} values, {rowCount} rows need more");
        // the rows before the first whole group and after the last one through the row layout
        if (first > rowStart)
            RowLayout.MatMulQuantized(x, y, ldy, rowStart, first - rowStart);
        if (end > last)
            RowLayout.MatMulQuantized(x, y.Slice(last - rowStart), ldy, last, end - last);
        Q6KInterleavedMatrix packed = Packed();
        fixed (sbyte* xq = x.Q8Array)
        fixed (float* xd = x.ScaleArray)
        fixed (float* yp = y)
            packed.MatVec(xq, xd, yp + (first - rowStart), first, last - first);
    }
}
