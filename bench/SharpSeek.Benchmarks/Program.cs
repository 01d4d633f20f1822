// Kernel benchmarks at real DeepSeek layer shapes. The scalar-free fp32 path is the baseline of each group;
// SIMD variants are compared by rerunning with DOTNET_EnableAVX512=0 / DOTNET_EnableAVX2=0.
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using SharpSeek.Tensors;

namespace SharpSeek.Benchmarks;

public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}

/// <summary>One expert's gate projection of DeepSeek-V3 ([2048, 7168]) and V2-Lite ([1408, 2048]), decode (1 token) and prefill (64 tokens).</summary>
[MemoryDiagnoser]
public class MatMulBench
{
    [Params("2048x7168", "1408x2048")]
    public string Shape { get; set; } = "2048x7168";

    [Params(1, 64)]
    public int Tokens { get; set; }

    [Params(WeightFormat.F32, WeightFormat.BF16, WeightFormat.Fp8Block, WeightFormat.Q8_0, WeightFormat.Q4_K)]
    public WeightFormat Format { get; set; }

    private readonly List<IDisposable> _owners = [];
    private WeightMatrix _m = null!;
    private float[] _x = [], _y = [];
    private ThreadedBackend _be = null!;

    [GlobalSetup]
    public void Setup()
    {
        int[] s = Shape.Split('x').Select(int.Parse).ToArray();
        int rows = s[0], cols = s[1];
        var rng = new Random(1);
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++)
            w[i] = (float)(rng.NextDouble() - 0.5);
        _m = WeightConversion.Convert(new F32Matrix(rows, cols, w), Format, _owners);
        _x = new float[Tokens * cols];
        for (int i = 0; i < _x.Length; i++)
            _x[i] = (float)(rng.NextDouble() - 0.5);
        _y = new float[Tokens * rows];
        _be = new ThreadedBackend(Environment.ProcessorCount);
    }

    [Benchmark]
    public void MatMul() => _be.MatMul(_m, _x, Tokens, _y);

    [GlobalCleanup]
    public void Cleanup()
    {
        _be.Dispose();
        _owners.ForEach(o => o.Dispose());
    }
}

/// <summary>Row kernels at DeepSeek-V3 widths.</summary>
[MemoryDiagnoser]
public class RowKernelBench
{
    private readonly float[] _x = new float[7168], _w = new float[7168], _y = new float[7168], _s = new float[4096];
    private readonly float[] _cos = new float[32], _sin = new float[32], _pe = new float[64];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(2);
        for (int i = 0; i < _x.Length; i++)
        {
            _x[i] = (float)rng.NextDouble();
            _w[i] = 1f;
        }
        for (int i = 0; i < _s.Length; i++)
            _s[i] = (float)rng.NextDouble() * 10;
        for (int i = 0; i < 32; i++)
        {
            _cos[i] = MathF.Cos(i);
            _sin[i] = MathF.Sin(i);
        }
    }

    [Benchmark]
    public float RmsNorm7168() => Ops.RmsNorm(_x, _w, 1e-6f, _y);

    [Benchmark]
    public void Softmax4096() => Ops.Softmax(_s);

    [Benchmark]
    public void SiluMul7168() => Ops.SiluMul(_y, _x);

    [Benchmark]
    public void Rope64() => Ops.RopeInterleaved(_pe, _cos, _sin);
}
