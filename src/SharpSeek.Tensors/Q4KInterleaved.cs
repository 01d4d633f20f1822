// Q4_K weights repacked eight rows at a time for the decode product (as llama.cpp's CPU repacking, block_q4_Kx8):
// the same 4-bit values, d and dmin, arranged so that one 256-bit vector holds four consecutive values of each of
// eight rows. A vpdpbusd against four activation bytes broadcast to every lane then yields eight rows' partial sums
// in eight lanes: no horizontal sums, no packing of sub-block sums, and the scales apply to eight rows at once.
// Against the row layout (Q4KVnni.Dot) this is about 30 instead of about 50 vector instructions per 256 values and
// row: 16-17 -> 27 GB/s per thread in cache.
//
// Per group of eight rows and super-block b, GroupBlockBytes = 1184 bytes (eight 144-byte Q4_K blocks are 1152):
//   [0, 16)      d of rows 0-7 (fp16)
//   [16, 32)     dmin of rows 0-7 (fp16)
//   [32, 96)     scale of sub-block s for row r at 32 + 8s + r (the 6-bit values unpacked to bytes)
//   [96, 160)    min of sub-block s for row r at 96 + 16(s/2) + 2r + (s%2) (pairs, for vpmaddwd against two sums)
//   [160, 1184)  the quant bytes: row r's bytes 32c + 4k .. +3 of the block at 160 + 32(8c + k) + 4r
// The scales are stored unpacked (32 bytes more per 8 blocks, 2.8%): unpacking 6-bit scales of eight rows cost
// more per block than the products. Rows past the last whole group stay in the row layout (a Q4KMatrix tail).
// The standard row bytes are recovered exactly (CopyStandardRow, for GGUF export).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Q4_K weights with rows interleaved in groups of eight for the integer products.</summary>
public sealed unsafe class Q4KInterleavedMatrix : QuantizedProductMatrix
{
    public const int GroupRows = 8, GroupBlockBytes = 1184;
    private const int ScaleOffset = 32, MinOffset = 96, QuantOffset = 160;
    private readonly byte* _data;
    private readonly object? _owner; // keeps the buffer alive as long as the matrix (a repacking matrix holds no other reference)
    private readonly Q4KMatrix? _tail;

    private Q4KInterleavedMatrix(byte* data, int rows, int cols, Q4KMatrix? tail, object? owner) : base(rows, cols)
    {
        _data = data;
        _owner = owner;
        _tail = tail;
        Blocks = cols / Q4KMatrix.BlockValues;
        Groups = rows / GroupRows;
    }

    /// <summary>Super-blocks per row.</summary>
    public int Blocks { get; }

    /// <summary>Whole groups of eight rows (rows past them are kept in the row layout).</summary>
    public int Groups { get; }

    public override WeightFormat Format => WeightFormat.Q4_K;
    public override ActivationFormat InputFormat => ActivationFormat.Q8K;
    public override long ByteSize => (long)Groups * Blocks * GroupBlockBytes + (_tail?.ByteSize ?? 0);

    /// <summary>Repacks a row-layout Q4_K matrix (which is left as it was) into a new buffer added to <paramref name="owners"/>.</summary>
    public static Q4KInterleavedMatrix FromRows(Q4KMatrix m, List<IDisposable> owners) =>
        Build(m.Rows, m.Cols, owners, (r, dst) => Buffer.MemoryCopy(m.RowPointer(r), dst, m.BytesPerRow, m.BytesPerRow));

    /// <summary>Quantizes <paramref name="src"/> to Q4_K (<see cref="Q4KMatrix.QuantizeRow"/>) straight into the interleaved
    /// layout: eight rows at a time through a small scratch, so that no row-layout copy of the matrix is ever held.</summary>
    public static Q4KInterleavedMatrix Quantize(WeightMatrix src, List<IDisposable> owners)
    {
        var values = new float[src.Cols];
        return Build(src.Rows, src.Cols, owners, (r, dst) =>
        {
            src.ReadRow(r, values);
            Q4KMatrix.QuantizeRow(values, dst);
        });
    }

    /// <summary>Writes one row of Q4_K blocks (row layout) to the destination.</summary>
    private delegate void RowSource(int row, byte* destination);

    private static Q4KInterleavedMatrix Build(int rows, int cols, List<IDisposable> owners, RowSource rowBytes)
    {
        if (cols % Q4KMatrix.BlockValues != 0)
            throw new ArgumentException($"Q4_K needs a multiple of {Q4KMatrix.BlockValues} columns, got {cols}");
        int groups = rows / GroupRows, blocks = cols / Q4KMatrix.BlockValues, tailRows = rows - groups * GroupRows;
        long rowLength = Q4KMatrix.RowBytes(cols), groupBytes = (long)groups * blocks * GroupBlockBytes;
        var buf = new NativeBuffer(groupBytes + tailRows * rowLength);
        owners.Add(buf);
        byte* dst = buf.Pointer;
        var scratch = new byte[GroupRows * rowLength];
        fixed (byte* eight = scratch)
        {
            for (int g = 0; g < groups; g++)
            {
                for (int r = 0; r < GroupRows; r++)
                    rowBytes(g * GroupRows + r, eight + r * rowLength);
                PackGroup(eight, rowLength, blocks, dst + (long)g * blocks * GroupBlockBytes);
            }
        }
        Q4KMatrix? tail = null;
        if (tailRows > 0)
        {
            byte* t = dst + groupBytes;
            for (int r = 0; r < tailRows; r++)
                rowBytes(groups * GroupRows + r, t + r * rowLength);
            tail = new Q4KMatrix(t, tailRows, cols, buf);
        }
        return new Q4KInterleavedMatrix(dst, rows, cols, tail, buf);
    }

    /// <summary>Eight consecutive row-layout rows (rowLength bytes apart) into one group's interleaved blocks.</summary>
    private static void PackGroup(byte* rows8, long rowLength, int blocks, byte* group)
    {
        for (int b = 0; b < blocks; b++)
        {
            byte* o = group + (long)b * GroupBlockBytes;
            for (int r = 0; r < GroupRows; r++)
            {
                byte* blk = rows8 + r * rowLength + (long)b * Q4KMatrix.BlockBytes;
                ((ushort*)o)[r] = ((ushort*)blk)[0];
                ((ushort*)(o + 16))[r] = ((ushort*)blk)[1];
                for (int s = 0; s < 8; s++)
                {
                    (int sc, int mn) = Q4KMatrix.ScaleMin(s, blk + 4);
                    o[ScaleOffset + 8 * s + r] = (byte)sc;
                    o[MinOffset + 16 * (s / 2) + 2 * r + s % 2] = (byte)mn;
                }
                for (int c = 0; c < 4; c++)
                {
                    for (int k = 0; k < 8; k++)
                        *(uint*)(o + QuantOffset + 32 * (8 * c + k) + 4 * r) = *(uint*)(blk + 16 + 32 * c + 4 * k);
                }
            }
        }
    }

    private byte* GroupBlock(int g, int b) => _data + ((long)g * Blocks + b) * GroupBlockBytes;

    /// <summary>Row <paramref name="row"/> as the Q4_K row bytes it was made from (llama.cpp's block_q4_K layout).</summary>
    public void CopyStandardRow(int row, Span<byte> dst)
    {
        long rowBytes = Q4KMatrix.RowBytes(Cols);
        if (row < 0 || row >= Rows || dst.Length < rowBytes)
            throw new ArgumentException($"CopyStandardRow: row {row} of {Rows}, destination {dst.Length} bytes of {rowBytes}");
        if (row >= Groups * GroupRows)
        {
            new ReadOnlySpan<byte>(_tail!.RowPointer(row - Groups * GroupRows), (int)rowBytes).CopyTo(dst);
            return;
        }
        int g = row / GroupRows, r = row % GroupRows;
        fixed (byte* d = dst)
        {
            for (int b = 0; b < Blocks; b++)
            {
                byte* o = GroupBlock(g, b), blk = d + (long)b * Q4KMatrix.BlockBytes;
                ((ushort*)blk)[0] = ((ushort*)o)[r];
                ((ushort*)blk)[1] = ((ushort*)(o + 16))[r];
                // the 6-bit packing of llama.cpp's get_scale_min_k4, inverted
                byte* q = blk + 4;
                for (int j = 0; j < 4; j++)
                {
                    int sc = o[ScaleOffset + 8 * j + r], sc4 = o[ScaleOffset + 8 * (j + 4) + r];
                    int mn = o[MinOffset + 16 * (j / 2) + 2 * r + j % 2], mn4 = o[MinOffset + 16 * ((j + 4) / 2) + 2 * r + j % 2];
                    q[j] = (byte)(sc | (sc4 >> 4) << 6);
                    q[j + 4] = (byte)(mn | (mn4 >> 4) << 6);
                    q[j + 8] = (byte)((sc4 & 0xF) | (mn4 & 0xF) << 4);
                }
                for (int c = 0; c < 4; c++)
                {
                    for (int k = 0; k < 8; k++)
                        *(uint*)(blk + 16 + 32 * c + 4 * k) = *(uint*)(o + QuantOffset + 32 * (8 * c + k) + 4 * r);
                }
            }
        }
    }

    public override void ReadRow(int row, Span<float> dst)
    {
        CheckReadRow(row, dst);
        if (row >= Groups * GroupRows)
        {
            _tail!.ReadRow(row - Groups * GroupRows, dst);
            return;
        }
        int g = row / GroupRows, r = row % GroupRows;
        byte* bytes = stackalloc byte[32];
        // row r's four bytes of each of the eight 32-byte vectors of a chunk
        Vector256<int> lanes = Vector256.Create(0, 8, 16, 24, 32, 40, 48, 56);
        fixed (float* o = dst)
        {
            for (int b = 0; b < Blocks; b++)
            {
                byte* blk = GroupBlock(g, b);
                float d = Half16.ToFloat(((ushort*)blk)[r]), dmin = Half16.ToFloat(((ushort*)(blk + 16))[r]);
                for (int c = 0; c < 4; c++)
                {
                    // multiply then subtract, as Q4KMatrix.ReadRow (the same numbers bit for bit)
                    float d0 = d * blk[ScaleOffset + 8 * (2 * c) + r], n0 = dmin * blk[MinOffset + 16 * c + 2 * r];
                    float d1 = d * blk[ScaleOffset + 8 * (2 * c + 1) + r], n1 = dmin * blk[MinOffset + 16 * c + 2 * r + 1];
                    float* lo = o + b * 256 + c * 64, hi = lo + 32;
                    int* chunk = (int*)(blk + QuantOffset + 256 * c + 4 * r);
                    if (Avx2.IsSupported)
                    {
                        Vector256<byte> q = Avx2.GatherVector256(chunk, lanes, 4).AsByte();
                        Q4KMatrix.Dequant32(q & Vector256.Create((byte)0xF), d0, n0, lo);
                        Q4KMatrix.Dequant32(Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0xF), d1, n1, hi);
                        continue;
                    }
                    for (int k = 0; k < 8; k++)
                        *(int*)(bytes + 4 * k) = chunk[8 * k];
                    for (int l = 0; l < 32; l++)
                    {
                        lo[l] = d0 * (bytes[l] & 0xF) - n0;
                        hi[l] = d1 * (bytes[l] >> 4) - n1;
                    }
                }
            }
        }
    }

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount)
    {
        CheckRows(rowStart, rowCount);
        if (x.Format != ActivationFormat.Q8K || x.Cols != Cols)
            throw new ArgumentException("Q4_K product needs Q8K activations of the same width");
        int T = x.Tokens, end = rowStart + rowCount, grouped = Groups * GroupRows;
        if (T > 0 && rowCount > 0 && (long)(T - 1) * ldy + rowCount > y.Length)
            throw new ArgumentException($"output has {y.Length} values, {T} tokens of {rowCount} rows at stride {ldy} need more");
        float* y8 = stackalloc float[GroupRows];
        float* y32 = stackalloc float[4 * GroupRows];
        fixed (sbyte* xq = x.Q8Array)
        fixed (float* xd = x.ScaleArray)
        fixed (short* xsum = x.Sum16Array)
        fixed (float* yp = y)
        {
            int gEnd = Math.Min(end, grouped);
            int g0 = rowStart / GroupRows, g1 = (gEnd + GroupRows - 1) / GroupRows;   // groups touched
            int w0 = (rowStart + GroupRows - 1) / GroupRows, w1 = gEnd / GroupRows;     // whole groups inside the range
            // two or more tokens (a batched decode step, a routed expert's tokens, a speculative verification): tiles of
            // up to four tokens, a group at a time, so that its nibbles are unpacked once per tile and read from memory once
            int Tt = Avx2.IsSupported && T >= 2 ? T : 0;
            for (int g = g0; g < g1 && Tt > 0; g++)
            {
                int r0 = g * GroupRows, lo = Math.Max(r0, rowStart), hi = Math.Min(r0 + GroupRows, end);
                bool whole = lo == r0 && hi == r0 + GroupRows;
                for (int t = 0; t < Tt; t += 4)
                {
                    int n = Math.Min(4, Tt - t);
                    float* yt = whole ? yp + (long)t * ldy + (r0 - rowStart) : y32;
                    int ldt = whole ? ldy : GroupRows;
                    byte* wg = GroupBlock(g, 0);
                    sbyte* xt = xq + (long)t * Cols;
                    float* dt = xd + (long)t * Blocks;
                    short* st = xsum + (long)t * Blocks * 8;
                    switch (n)
                    {
                        case 4: GroupTokens<Tokens4>(wg, Blocks, xt, Cols, dt, st, yt, ldt, t == 0); break;
                        case 3: GroupTokens<Tokens3>(wg, Blocks, xt, Cols, dt, st, yt, ldt, t == 0); break;
                        case 2: GroupTokens<Tokens2>(wg, Blocks, xt, Cols, dt, st, yt, ldt, t == 0); break;
                        default: GroupTokens<Tokens1>(wg, Blocks, xt, Cols, dt, st, yt, ldt, t == 0); break;
                    }
                    if (whole)
                        continue;
                    for (int u = 0; u < n; u++)
                    {
                        for (int r = lo; r < hi; r++)
                            yp[(long)(t + u) * ldy + (r - rowStart)] = y32[u * GroupRows + r - r0];
                    }
                }
            }
            for (int t = Tt; t < T; t++)
            {
                sbyte* xt = xq + (long)t * Cols;
                float* dt = xd + (long)t * Blocks;
                short* st = xsum + (long)t * Blocks * 8;
                float* yt = yp + (long)t * ldy - rowStart; // yt[r] is row r's output
                // groups cut by the range's ends, through the eight-row scratch
                for (int g = g0; g < g1; g++)
                {
                    if (g >= w0 && g < w1)
                        continue;
                    Group(GroupBlock(g, 0), Blocks, xt, dt, st, y8);
                    int r0 = g * GroupRows;
                    for (int r = Math.Max(r0, rowStart); r < Math.Min(r0 + GroupRows, end); r++)
                        yt[r] = y8[r - r0];
                }
                // whole groups two at a time, from the two halves of the range (two streams from memory)
                int n = Math.Max(0, w1 - w0), half = Avx2.IsSupported ? n / 2 : 0;
                if (half > 0)
                {
                    StreamPrefetch.Start(GroupBlock(w0, 0), (long)half * Blocks * GroupBlockBytes);
                    StreamPrefetch.Start(GroupBlock(w0 + half, 0), (long)half * Blocks * GroupBlockBytes);
                }
                if (half > 0 && Use512)
                {
                    sbyte[] buffer = t_expanded is { } e && e.Length >= Blocks * ExpandedBlockBytes ? e : t_expanded = new sbyte[Blocks * ExpandedBlockBytes];
                    fixed (sbyte* xe = buffer)
                    {
                        Expand(xt, Blocks, xe);
                        for (int i = 0; i < half; i++)
                        {
                            int ga = w0 + i, gb = w0 + half + i;
                            GroupPair512(GroupBlock(ga, 0), GroupBlock(gb, 0), Blocks, xe, dt, st, yt + ga * GroupRows, yt + gb * GroupRows);
                        }
                    }
                }
                else
                {
                    for (int i = 0; i < half; i++)
                    {
                        int ga = w0 + i, gb = w0 + half + i;
                        GroupPairAvx2(GroupBlock(ga, 0), GroupBlock(gb, 0), Blocks, xt, dt, st, yt + ga * GroupRows, yt + gb * GroupRows);
                    }
                }
                for (int g = w0 + 2 * half; g < w1; g++)
                    Group(GroupBlock(g, 0), Blocks, xt, dt, st, yt + g * GroupRows);
            }
        }
        if (end > grouped)
        {
            int first = Math.Max(rowStart, grouped);
            _tail!.MatMulQuantized(x, y.Slice(first - rowStart), ldy, first - grouped, end - first);
        }
    }

    /// <summary>y[0..8) = the products of one group's eight rows with one token's Q8K activations.</summary>
    internal static void Group(byte* w, int blocks, sbyte* xq, float* xd, short* xsum, float* y)
    {
        if (Avx2.IsSupported)
            GroupAvx2(w, blocks, xq, xd, xsum, y);
        else
            GroupScalar(w, blocks, xq, xd, xsum, y);
    }


    private static void GroupAvx2(byte* w, int blocks, sbyte* xq, float* xd, short* xsum, float* y)
    {
        Vector256<float> acc = Vector256<float>.Zero, macc = Vector256<float>.Zero;
        for (int b = 0; b < blocks; b++)
            BlockStep(w + (long)b * GroupBlockBytes, xq + (long)b * 256, xd[b], xsum + (long)b * 8, ref acc, ref macc);
        (acc - macc).Store(y);
    }

    /// <summary>
    /// <see cref="Group"/> for two groups at once, block by block in turn: two streams from memory instead of one. A
    /// core's hardware prefetchers follow each stream on its own, so twice the misses are in flight; one thread over a
    /// 613 MB set (beyond the host's L3) read 11-12 GB/s with one group at a time and 13-15 with two, against a plain
    /// read loop's 13-17 in the same minutes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimized from the first call: Calibrate512 times it
    private static void GroupPairAvx2(byte* w0, byte* w1, int blocks, sbyte* xq, float* xd, short* xsum, float* y0, float* y1)
    {
        Vector256<float> acc0 = Vector256<float>.Zero, macc0 = acc0, acc1 = acc0, macc1 = acc0;
        for (int b = 0; b < blocks; b++)
        {
            long o = (long)b * GroupBlockBytes;
            BlockStep(w0 + o, xq + (long)b * 256, xd[b], xsum + (long)b * 8, ref acc0, ref macc0);
            BlockStep(w1 + o, xq + (long)b * 256, xd[b], xsum + (long)b * 8, ref acc1, ref macc1);
        }
        (acc0 - macc0).Store(y0);
        (acc1 - macc1).Store(y1);
    }

    // ---- one token with 512-bit vpmaddubsw (AVX-512BW) ----
    // .NET exposes VNNI only at 256 bits (AvxVnni). On a core with full-width 512-bit units (AMD Zen 5) two 32-byte
    // vectors of a group (k, k + 1) are multiplied at once with vpmaddubsw against an activation vector that holds
    // x[4k..4k+3] eight times, then x[4k+4..4k+7] eight times: the nibbles are split once per 64 bytes instead of per 32,
    // and the int16 pair sums of four such products are added before one vpmaddwd widens them (|lane| ≤ 4·2·15·127 =
    // 15240). Those activation vectors are built once per product and token (Expand: 2 KB per 256 columns, reused by
    // every group). Per row the integer sums equal the 256-bit kernel's, and the float steps are the same, so the
    // outputs are the same bits.

    /// <summary>Bytes of one super-block's expanded activations (4 chunks x 2 sub-blocks x 4 vectors of 64).</summary>
    private const int ExpandedBlockBytes = 2048;

    [ThreadStatic] private static sbyte[]? t_expanded;

    /// <summary>Whether one-token products run the 512-bit kernel: AVX-512BW and, timed once per process on a small
    /// matrix in cache, faster than the 256-bit VNNI kernel on this core (<see cref="Calibrate512"/>).</summary>
    internal static bool Use512 { get; set; } = Avx512BW.IsSupported && Calibrate512();

    /// <summary>One token's Q8K values [blocks·256] as the 512-bit kernel reads them: for block b, chunk c, sub-block
    /// 2c + s and pair j, 64 bytes at ((b·4 + c)·2 + s)·256 + 64j holding x[8j..8j+3] eight times then x[8j+4..8j+7]
    /// eight times.</summary>
    private static void Expand(sbyte* xq, int blocks, sbyte* dst)
    {
        for (int b = 0; b < blocks; b++)
        {
            for (int cs = 0; cs < 8; cs++)
            {
                sbyte* x = xq + (long)b * 256 + QuantizedInput.PermutedSubBlock(cs) * 32; // cs = 2c + s
                sbyte* d = dst + ((long)b * 8 + cs) * 256;
                for (int j = 0; j < 4; j++)
                    Vector512.Create(Vector256.Create(*(int*)(x + 8 * j)), Vector256.Create(*(int*)(x + 8 * j + 4))).AsSByte().Store(d + 64 * j);
            }
        }
    }

    /// <summary><see cref="GroupPairAvx2"/> with the 512-bit block step over expanded activations.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimized from the first call: Calibrate512 times it
    private static void GroupPair512(byte* w0, byte* w1, int blocks, sbyte* xe, float* xd, short* xsum, float* y0, float* y1)
    {
        Vector256<float> acc0 = Vector256<float>.Zero, macc0 = acc0, acc1 = acc0, macc1 = acc0;
        for (int b = 0; b < blocks; b++)
        {
            long o = (long)b * GroupBlockBytes;
            BlockStep512(w0 + o, xe + (long)b * ExpandedBlockBytes, xd[b], xsum + (long)b * 8, ref acc0, ref macc0);
            BlockStep512(w1 + o, xe + (long)b * ExpandedBlockBytes, xd[b], xsum + (long)b * 8, ref acc1, ref macc1);
        }
        (acc0 - macc0).Store(y0);
        (acc1 - macc1).Store(y1);
    }

    /// <summary><see cref="BlockStep"/> with vpmaddubsw over 64 bytes at a time (xe: the block's expanded activations).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockStep512(byte* o, sbyte* xe, float xd, short* xs, ref Vector256<float> acc, ref Vector256<float> macc)
    {
        Vector512<byte> mask = Vector512.Create((byte)0xF);
        BlockScales(o, xd, out Vector256<float> d, out Vector256<float> dmin);
        Vector256<float> sum = Vector256<float>.Zero;
        for (int c = 0; c < 4; c++)
        {
            byte* q = o + QuantOffset + 256 * c;
            sbyte* xl = xe + 512 * c, xh = xl + 256;
            Vector512<short> lo = Vector512<short>.Zero, hi = lo;
            for (int j = 0; j < 4; j++)
            {
                Vector512<byte> v = Vector512.Load(q + 64 * j);
                lo += Avx512BW.MultiplyAddAdjacent(v & mask, Vector512.Load(xl + 64 * j));
                hi += Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask, Vector512.Load(xh + 64 * j));
            }
            // int32 lanes 0-7: rows 0-7 over the even k, lanes 8-15 over the odd k
            Vector512<int> l32 = Avx512BW.MultiplyAddAdjacent(lo, Vector512.Create((short)1));
            Vector512<int> h32 = Avx512BW.MultiplyAddAdjacent(hi, Vector512.Create((short)1));
            Vector256<float> sLo = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(o + ScaleOffset + 16 * c));
            Vector256<float> sHi = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(o + ScaleOffset + 16 * c + 8));
            sum = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(l32.GetLower() + l32.GetUpper()), sLo, sum);
            sum = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(h32.GetLower() + h32.GetUpper()), sHi, sum);
        }
        BlockFinish(o, xs, sum, d, dmin, ref acc, ref macc);
    }

    /// <summary>
    /// Times the 256-bit VNNI and the 512-bit one-token kernels on the same 64 random groups of one super-block (74 KB,
    /// in cache) in alternating rounds, about a millisecond in all, and says whether the 512-bit one was faster in most
    /// rounds: it is on cores with full-width 512-bit units, and may not be where 512-bit work runs on fewer ports.
    /// </summary>
    private static bool Calibrate512()
    {
        const int groups = 64, reps = 4;
        var rng = new Random(5);
        var w = new byte[groups * GroupBlockBytes];
        rng.NextBytes(w);
        var xq = new sbyte[256];
        for (int i = 0; i < xq.Length; i++)
            xq[i] = (sbyte)rng.Next(-127, 128);
        var xe = new sbyte[ExpandedBlockBytes];
        var xs = new short[8];
        var y = new float[2 * GroupRows];
        float xd = 0.01f;
        fixed (byte* wp = w)
        fixed (sbyte* xp = xq, ep = xe)
        fixed (short* sp = xs)
        fixed (float* yp = y)
        {
            for (int i = 0; i < groups * GroupBlockBytes; i += GroupBlockBytes)
            {
                for (int r = 0; r < GroupRows; r++) // finite d and dmin
                    ((ushort*)(wp + i))[r] = ((ushort*)(wp + i + 16))[r] = 0x2E66;
            }
            Expand(xp, 1, ep);
            // the buffers stay pinned for the whole timing; the delegates take their addresses as integers
            nint wa = (nint)wp, xa = (nint)xp, ea = (nint)ep, sa = (nint)sp, ya = (nint)yp, da = (nint)(&xd);
            return KernelChoice.CandidateWins(() =>
            {
                for (int k = 0; k < reps; k++)
                {
                    for (int g = 0; g < groups; g += 2)
                        GroupPairAvx2((byte*)wa + g * GroupBlockBytes, (byte*)wa + (g + 1) * GroupBlockBytes, 1, (sbyte*)xa, (float*)da, (short*)sa, (float*)ya, (float*)ya + GroupRows);
                }
            }, () =>
            {
                for (int k = 0; k < reps; k++)
                {
                    for (int g = 0; g < groups; g += 2)
                        GroupPair512((byte*)wa + g * GroupBlockBytes, (byte*)wa + (g + 1) * GroupBlockBytes, 1, (sbyte*)ea, (float*)da, (short*)sa, (float*)ya, (float*)ya + GroupRows);
                }
            });
        }
    }

    /// <summary>A block step's start: the prefetch ahead (decode streams the weights once: DRAM requests in flight ahead of
    /// the arithmetic) and the eight rows' d·d_x and dmin·d_x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockScales(byte* o, float xd, out Vector256<float> d, out Vector256<float> dmin)
    {
        StreamPrefetch.Lines(o + StreamPrefetch.Distance, GroupBlockBytes);
        Vector256<float> dx = Vector256.Create(xd);
        d = Half16.ToFloat8((ushort*)o) * dx;
        dmin = Half16.ToFloat8((ushort*)(o + 16)) * dx;
    }

    /// <summary>A block step's end: acc += sum·d, macc += dmin·Σ_s m_s·Σx_s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockFinish(byte* o, short* xs, Vector256<float> sum, Vector256<float> d, Vector256<float> dmin, ref Vector256<float> acc, ref Vector256<float> macc)
    {
        acc = Vector256.FusedMultiplyAdd(sum, d, acc);
        macc = Vector256.FusedMultiplyAdd(Mins(Avx2.ConvertToVector256Int16(o + MinOffset), Avx2.ConvertToVector256Int16(o + MinOffset + 16),
                                               Avx2.ConvertToVector256Int16(o + MinOffset + 32), Avx2.ConvertToVector256Int16(o + MinOffset + 48),
                                               xs), dmin, macc);
    }

    /// <summary>One super-block of a group for one token: acc += d·d_x·Σ_s sc_s·Σ q·x and macc += dmin·d_x·Σ_s m_s·Σx_s,
    /// eight rows in eight lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockStep(byte* o, sbyte* xb, float xd, short* xs, ref Vector256<float> acc, ref Vector256<float> macc)
    {
        Vector256<byte> mask = Vector256.Create((byte)0xF);
        BlockScales(o, xd, out Vector256<float> d, out Vector256<float> dmin);
        Vector256<float> sum = Vector256<float>.Zero;
        for (int c = 0; c < 4; c++)
        {
            // sub-block 2c is in the low nibbles, 2c + 1 in the high; Q8K keeps them at permuted slots
            sbyte* xl = xb + QuantizedInput.PermutedSubBlock(2 * c) * 32, xh = xb + QuantizedInput.PermutedSubBlock(2 * c + 1) * 32;
            byte* q = o + QuantOffset + 256 * c;
            // two accumulation chains per half (NibbleDots: vpdpbusd, or int16 pair sums without VNNI)
            NibbleDots lo0 = default, lo1 = default, hi0 = default, hi1 = default;
            for (int k = 0; k < 8; k += 2)
            {
                Vector256<byte> v0 = Vector256.Load(q + 32 * k), v1 = Vector256.Load(q + 32 * k + 32);
                lo0.Add(v0 & mask, Vector256.Create(*(int*)(xl + 4 * k)).AsSByte());
                hi0.Add(Vector256.ShiftRightLogical(v0.AsUInt16(), 4).AsByte() & mask, Vector256.Create(*(int*)(xh + 4 * k)).AsSByte());
                lo1.Add(v1 & mask, Vector256.Create(*(int*)(xl + 4 * k + 4)).AsSByte());
                hi1.Add(Vector256.ShiftRightLogical(v1.AsUInt16(), 4).AsByte() & mask, Vector256.Create(*(int*)(xh + 4 * k + 4)).AsSByte());
            }
            // per row: |sub-block sum| ≤ 32·15·127 and scale ≤ 63, so each product is exact in fp32
            Vector256<float> sLo = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(o + ScaleOffset + 16 * c));
            Vector256<float> sHi = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(o + ScaleOffset + 16 * c + 8));
            sum = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(lo0.Sum + lo1.Sum), sLo, sum);
            sum = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(hi0.Sum + hi1.Sum), sHi, sum);
        }
        BlockFinish(o, xs, sum, d, dmin, ref acc, ref macc);
    }

    /// <summary>As <see cref="Group"/> for N ≤ 4 tokens (activations xStride values apart, scales and sums per token
    /// after each other); y[u·ldy + r] for token u: the nibbles are unpacked once for all of them. Each token's sums are
    /// formed as <see cref="BlockStep"/> forms them (the integer sums in another order, the float steps the same), so
    /// they equal its one-token product bit for bit. The first pass over a group (<paramref name="prefetch"/>) requests
    /// the weights <see cref="StreamPrefetch.Distance"/> ahead, as the one-token kernels do. Needs AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GroupTokens<TN>(byte* w, int blocks, sbyte* xq, int xStride, float* xd, short* xsum, float* y, int ldy, bool prefetch)
        where TN : struct, ITokenCount
    {
        Vector256<byte> mask = Vector256.Create((byte)0xF);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> m0 = default, m1 = default, m2 = default, m3 = default;
        int sumStride = blocks * 8;
        for (int b = 0; b < blocks; b++)
        {
            byte* o = w + (long)b * GroupBlockBytes;
            if (prefetch)
                StreamPrefetch.Lines(o + StreamPrefetch.Distance, GroupBlockBytes);
            Vector256<float> d = Half16.ToFloat8((ushort*)o);
            Vector256<float> dmin = Half16.ToFloat8((ushort*)(o + 16));
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int c = 0; c < 4; c++)
            {
                long xl = (long)b * 256 + QuantizedInput.PermutedSubBlock(2 * c) * 32, xh = (long)b * 256 + QuantizedInput.PermutedSubBlock(2 * c + 1) * 32;
                byte* q = o + QuantOffset + 256 * c;
                NibbleDots l0 = default, l1 = default, l2 = default, l3 = default, h0 = default, h1 = default, h2 = default, h3 = default;
                for (int k = 0; k < 8; k++)
                {
                    Vector256<byte> v = Vector256.Load(q + 32 * k);
                    Vector256<byte> vl = v & mask, vh = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask;
                    sbyte* pl = xq + xl + 4 * k, ph = xq + xh + 4 * k;
                    l0.Add(vl, Vector256.Create(*(int*)pl).AsSByte());
                    h0.Add(vh, Vector256.Create(*(int*)ph).AsSByte());
                    if (TN.N > 1)
                    {
                        l1.Add(vl, Vector256.Create(*(int*)(pl + xStride)).AsSByte());
                        h1.Add(vh, Vector256.Create(*(int*)(ph + xStride)).AsSByte());
                    }
                    if (TN.N > 2)
                    {
                        l2.Add(vl, Vector256.Create(*(int*)(pl + 2L * xStride)).AsSByte());
                        h2.Add(vh, Vector256.Create(*(int*)(ph + 2L * xStride)).AsSByte());
                    }
                    if (TN.N > 3)
                    {
                        l3.Add(vl, Vector256.Create(*(int*)(pl + 3L * xStride)).AsSByte());
                        h3.Add(vh, Vector256.Create(*(int*)(ph + 3L * xStride)).AsSByte());
                    }
                }
                Vector256<float> sLo = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(o + ScaleOffset + 16 * c));
                Vector256<float> sHi = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(o + ScaleOffset + 16 * c + 8));
                s0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(h0.Sum), sHi, Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(l0.Sum), sLo, s0));
                if (TN.N > 1)
                    s1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(h1.Sum), sHi, Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(l1.Sum), sLo, s1));
                if (TN.N > 2)
                    s2 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(h2.Sum), sHi, Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(l2.Sum), sLo, s2));
                if (TN.N > 3)
                    s3 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(h3.Sum), sHi, Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(l3.Sum), sLo, s3));
            }
            Vector256<short> p0 = Avx2.ConvertToVector256Int16(o + MinOffset), p1 = Avx2.ConvertToVector256Int16(o + MinOffset + 16);
            Vector256<short> p2 = Avx2.ConvertToVector256Int16(o + MinOffset + 32), p3 = Avx2.ConvertToVector256Int16(o + MinOffset + 48);
            a0 = Vector256.FusedMultiplyAdd(s0, d * Vector256.Create(xd[b]), a0);
            m0 = Vector256.FusedMultiplyAdd(Mins(p0, p1, p2, p3, xsum + (long)b * 8), dmin * Vector256.Create(xd[b]), m0);
            if (TN.N > 1)
            {
                a1 = Vector256.FusedMultiplyAdd(s1, d * Vector256.Create(xd[blocks + b]), a1);
                m1 = Vector256.FusedMultiplyAdd(Mins(p0, p1, p2, p3, xsum + sumStride + (long)b * 8), dmin * Vector256.Create(xd[blocks + b]), m1);
            }
            if (TN.N > 2)
            {
                a2 = Vector256.FusedMultiplyAdd(s2, d * Vector256.Create(xd[2 * blocks + b]), a2);
                m2 = Vector256.FusedMultiplyAdd(Mins(p0, p1, p2, p3, xsum + 2L * sumStride + (long)b * 8), dmin * Vector256.Create(xd[2 * blocks + b]), m2);
            }
            if (TN.N > 3)
            {
                a3 = Vector256.FusedMultiplyAdd(s3, d * Vector256.Create(xd[3 * blocks + b]), a3);
                m3 = Vector256.FusedMultiplyAdd(Mins(p0, p1, p2, p3, xsum + 3L * sumStride + (long)b * 8), dmin * Vector256.Create(xd[3 * blocks + b]), m3);
            }
        }
        (a0 - m0).Store(y);
        if (TN.N > 1)
            (a1 - m1).Store(y + ldy);
        if (TN.N > 2)
            (a2 - m2).Store(y + 2L * ldy);
        if (TN.N > 3)
            (a3 - m3).Store(y + 3L * ldy);
    }

    /// <summary>Σ_s m_s·Σx_s for eight rows as fp32: the min pairs (m_2c, m_2c+1) of each row against one token's sum
    /// pairs (Σx_2c, Σx_2c+1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Mins(Vector256<short> p0, Vector256<short> p1, Vector256<short> p2, Vector256<short> p3, short* xs)
    {
        return Vector256.ConvertToSingle(Avx2.MultiplyAddAdjacent(p0, Vector256.Create(*(int*)xs).AsInt16())
                                       + Avx2.MultiplyAddAdjacent(p1, Vector256.Create(*(int*)(xs + 2)).AsInt16())
                                       + Avx2.MultiplyAddAdjacent(p2, Vector256.Create(*(int*)(xs + 4)).AsInt16())
                                       + Avx2.MultiplyAddAdjacent(p3, Vector256.Create(*(int*)(xs + 6)).AsInt16()));
    }

    /// <summary>The scalar definition of <see cref="Group"/>: Σ_b d_x·(d·Σ_s sc_s·Σ q·x − dmin·Σ_s m_s·Σx_s) per row.</summary>
    internal static void GroupScalar(byte* w, int blocks, sbyte* xq, float* xd, short* xsum, float* y)
    {
        for (int r = 0; r < GroupRows; r++)
        {
            float total = 0;
            for (int b = 0; b < blocks; b++)
            {
                byte* o = w + (long)b * GroupBlockBytes;
                sbyte* xb = xq + (long)b * 256;
                int isum = 0, msum = 0;
                for (int s = 0; s < 8; s++)
                {
                    int c = s / 2, shift = 4 * (s % 2), dot = 0;
                    sbyte* xs = xb + QuantizedInput.PermutedSubBlock(s) * 32;
                    for (int j = 0; j < 32; j++)
                    {
                        int qv = (o[QuantOffset + 32 * (8 * c + j / 4) + 4 * r + j % 4] >> shift) & 0xF;
                        dot += qv * xs[j];
                    }
                    isum += o[ScaleOffset + 8 * s + r] * dot;
                    msum += o[MinOffset + 16 * c + 2 * r + s % 2] * xsum[(long)b * 8 + s];
                }
                float d = Half16.ToFloat(((ushort*)o)[r]), dmin = Half16.ToFloat(((ushort*)(o + 16))[r]);
                total += xd[b] * (d * isum - dmin * msum);
            }
            y[r] = total;
        }
    }
}

/// <summary>
/// Q4_K rows left where they are (a memory-mapped GGUF tensor) whose integer products run on an interleaved copy made
/// the first time one is asked for (<see cref="RepackingMatrix{TRows, TPacked}"/>).
/// </summary>
public sealed class Q4KRepackingMatrix : RepackingMatrix<Q4KMatrix, Q4KInterleavedMatrix>
{
    // the copy's buffer is owned by the copy (freed by NativeBuffer's finalizer when the model is dropped)
    public Q4KRepackingMatrix(Q4KMatrix rows)
        : base(rows, Q4KInterleavedMatrix.GroupRows, r => Q4KInterleavedMatrix.FromRows(r, new List<IDisposable>()))
    {
    }

    /// <summary>The bytes a product reads: the interleaved copy once it exists.</summary>
    public override long ByteSize => PackedIfMade?.ByteSize ?? RowLayout.ByteSize;

    public override void MatMulQuantized(QuantizedInput x, Span<float> y, int ldy, int rowStart, int rowCount) =>
        Packed().MatMulQuantized(x, y, ldy, rowStart, rowCount);
}
