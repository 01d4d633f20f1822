// Rates of the weight products of one format on random ROWS x COLS matrices (quantized by the library's own
// Quantize), for token counts 1, 4, ...: one thread on one matrix over and over (in cache), one thread over MATRICES
// of them in turn (from memory once their bytes pass the caches), and two threads each over its own half of them.
// Prints GB/s of weights and GMAC/s. `read` prints a plain one-thread read loop's bandwidth, for scale.
//   dotnet run -c Release --project bench/KernelRates -- 256 1024 F32|BF16|Q8_0|Q4_K|Q4_K_INTERLEAVED|Q6_K [192] [1,4,16]
//   dotnet run -c Release --project bench/KernelRates -- read
using System.Diagnostics;
using System.Runtime.Intrinsics;
using SharpSeek.Tensors;

if (args.Length == 1 && args[0] == "read")
{
    ReadLoop.Run();
    return 0;
}
if (args.Length < 3 || !int.TryParse(args[0], out int rows) || !int.TryParse(args[1], out int cols) || rows < 1 || cols < 1)
{
    Console.Error.WriteLine("usage: SharpSeek.KernelRates ROWS COLS F32|BF16|Q8_0|Q4_K|Q4_K_INTERLEAVED|Q6_K [MATRICES, default 192] [TOKENS, default 1,4,16] | read");
    return 2;
}
string format = args[2].ToUpperInvariant();
string[] formats = ["F32", "BF16", "Q8_0", "Q4_K", "Q4_K_INTERLEAVED", "Q6_K"];
if (!formats.Contains(format))
{
    Console.Error.WriteLine($"format {args[2]}: one of {string.Join(", ", formats)}");
    return 2;
}
int count = args.Length > 3 ? int.Parse(args[3]) : 192;
int[] tokenCounts = (args.Length > 4 ? args[4] : "1,4,16").Split(',').Select(int.Parse).ToArray();
var rng = new Random(1);
var owners = new List<IDisposable>();
WeightMatrix[] matrices = Enumerable.Range(0, count).Select(_ => Make(format, rows, cols, rng, owners)).ToArray();
int maxTokens = tokenCounts.Max();
float[] x = new float[maxTokens * cols];
for (int i = 0; i < x.Length; i++)
    x[i] = (float)(rng.NextDouble() * 2 - 1);
long bytes = matrices[0].ByteSize;
Console.WriteLine($"{format} {rows} x {cols} ({bytes / 1024} KB a matrix, {count} matrices: {count * bytes / (1 << 20)} MB)");
foreach (int tokens in tokenCounts)
{
    var input = new QuantizedInput();
    if (matrices[0].InputFormat != ActivationFormat.F32)
        input.Quantize(matrices[0].InputFormat, x.AsSpan(0, tokens * cols), tokens, cols);
    double macsPerByte = (double)rows * cols * tokens / bytes;
    for (int round = 0; round < 3; round++)
    {
        double inCache = Rate(1, (t, n) => 0);
        double fromMemory = Rate(1, (t, n) => (int)(n % count));
        double twoThreads = Rate(2, (t, n) => (int)((2 * n + t) % count));
        Console.WriteLine($"  {tokens,2} tokens: in cache {inCache:F1} GB/s ({inCache * macsPerByte:F1} GMAC/s), " +
                          $"from memory {fromMemory:F1} GB/s, two threads from memory {twoThreads:F1} GB/s");
    }

    // GB/s of weights over 400 ms on `threads` threads, thread t taking matrix pick(t, n) for its n-th product
    double Rate(int threads, Func<int, long, int> pick)
    {
        long products = 0;
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            float[] y = new float[rows * tokens];
            long n = 0;
            while (clock.ElapsedMilliseconds < 400)
                Product(matrices[pick(t, n++)], input, x, tokens, y);
            Interlocked.Add(ref products, n);
        })).ToArray();
        foreach (Thread w in workers)
            w.Start();
        foreach (Thread w in workers)
            w.Join();
        return products * (double)bytes / clock.Elapsed.TotalSeconds / 1e9;
    }
}
owners.ForEach(o => o.Dispose());
return 0;

static void Product(WeightMatrix m, QuantizedInput input, float[] x, int tokens, float[] y)
{
    if (m.InputFormat != ActivationFormat.F32)
        m.MatMulQuantized(input, y, m.Rows, 0, m.Rows);
    else if (tokens == 1)
        m.MatVec(x.AsSpan(0, m.Cols), y, 0, m.Rows);
    else
        m.MatMul(x.AsSpan(0, tokens * m.Cols), tokens, y, m.Rows, 0, m.Rows);
}

static unsafe WeightMatrix Make(string format, int rows, int cols, Random rng, List<IDisposable> owners)
{
    float[] v = new float[rows * cols];
    for (int i = 0; i < v.Length; i++)
        v[i] = (float)(rng.NextDouble() * 2 - 1);
    var src = new F32Matrix(rows, cols, v);
    switch (format)
    {
        case "BF16":
            var buf = new NativeBuffer((long)rows * cols * 2);
            owners.Add(buf);
            ushort* d = (ushort*)buf.Pointer;
            for (long i = 0; i < v.Length; i++)
                d[i] = (ushort)(BitConverter.SingleToUInt32Bits(v[i]) >> 16);
            return new Bf16Matrix(d, rows, cols, buf);
        case "F32": return src;
        case "Q8_0": return Q8_0Matrix.Quantize(src, owners);
        case "Q4_K": return Q4KMatrix.Quantize(src, owners);
        case "Q4_K_INTERLEAVED": return Q4KInterleavedMatrix.Quantize(src, owners);
        case "Q6_K": return Q6KMatrix.Quantize(src, owners);
        default: throw new ArgumentException($"format {format}: one of F32, BF16, Q8_0, Q4_K, Q4_K_INTERLEAVED, Q6_K");
    }
}

internal static class ReadLoop
{
    /// <summary>One thread summing a 512 MiB buffer 128 bytes a step, four times.</summary>
    public static unsafe void Run()
    {
        const long n = 512L << 20;
        using var buf = new NativeBuffer(n);
        byte* p = buf.Pointer;
        for (long i = 0; i < n; i += 4096)
            p[i] = 1;
        for (int round = 0; round < 4; round++)
        {
            var clock = Stopwatch.StartNew();
            Vector256<int> a = Vector256<int>.Zero, b = a, c = a, e = a;
            for (long i = 0; i < n; i += 128)
            {
                a += Vector256.Load((int*)(p + i));
                b += Vector256.Load((int*)(p + i + 32));
                c += Vector256.Load((int*)(p + i + 64));
                e += Vector256.Load((int*)(p + i + 96));
            }
            Console.WriteLine($"plain read, one thread: {n / clock.Elapsed.TotalSeconds / 1e9:F1} GB/s (checksum {(a + b + c + e).ToScalar()})");
        }
    }
}
