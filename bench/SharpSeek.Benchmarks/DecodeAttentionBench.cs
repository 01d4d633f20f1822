// Absorbed decode attention at the benchmark model's shape (bench/configs/v2-lite-1b.json: 8 heads, kv_lora_rank 512,
// rope 64, 12 layers) over bf16 latent caches, one per layer (113 MB at 8K positions: read from memory, as in a
// decode step). The whole kernel on 1 and 2 threads split by positions as Mla does, and its phases on one thread.
using BenchmarkDotNet.Attributes;
using SharpSeek.Model;
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;

namespace SharpSeek.Benchmarks;

public abstract unsafe class DecodeAttentionBase
{
    protected const int Layers = 12, Nh = 8, R = 512, Dr = 64, W = R + Dr, Tile = 8;
    protected LatentCache[] Caches = [];
    protected float[] Q = [];

    protected void Fill(int positions)
    {
        var rng = new Random(3);
        var row = new float[W];
        Caches = new LatentCache[Layers];
        for (int l = 0; l < Layers; l++)
        {
            Caches[l] = new LatentCache(W, CacheType.BF16, R);
            for (int s = 0; s < positions; s++)
            {
                for (int i = 0; i < W; i++)
                    row[i] = (float)(rng.NextDouble() * 2 - 1);
                Caches[l].Write(s, row);
            }
        }
        Q = new float[Nh * W];
        for (int i = 0; i < Q.Length; i++)
            Q[i] = (float)(rng.NextDouble() - 0.5) * 0.5f;
    }
}

/// <summary>Mla.AttendRange over every layer's cache, positions split into 2 chunks per thread (as Mla does).</summary>
public unsafe class DecodeAttentionBench : DecodeAttentionBase
{
    [Params(256, 8192)]
    public int Positions { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    private ThreadedBackend _be = null!;
    private float[] _m = [], _l = [], _o = [], _rows = [], _sp = [];
    private int _chunks, _len, _layer;
    private Action<int> _body = null!;

    [GlobalSetup]
    public void Setup()
    {
        Fill(Positions);
        _be = new ThreadedBackend(Threads);
        _chunks = 2 * Threads;
        _len = (Positions + _chunks - 1) / _chunks;
        _m = new float[_chunks * Nh];
        _l = new float[_chunks * Nh];
        _o = new float[_chunks * Nh * R];
        _rows = new float[_chunks * (Tile + Nh) * W];
        _sp = new float[_chunks * Nh * Tile];
        _body = c =>
        {
            fixed (float* q = Q, m = &_m[c * Nh], l = &_l[c * Nh], o = &_o[c * Nh * R], rows = &_rows[c * (Tile + Nh) * W], sp = &_sp[c * Nh * Tile])
                Mla.AttendRange(q, Nh, R, Dr, Caches[_layer], c * _len, Math.Min(Positions, (c + 1) * _len), 0.07f, m, l, o, rows, sp);
        };
    }

    [Benchmark]
    public void AllLayers()
    {
        for (_layer = 0; _layer < Layers; _layer++)
            _be.For(_chunks, _body);
    }

    [GlobalCleanup]
    public void Cleanup() => _be.Dispose();
}

/// <summary>The phases of AttendRange's bf16 path on one thread at 8K positions, each cumulative: scores (the rows read as
/// bf16 in the products), + online softmax, + value accumulation (= the whole kernel, but for the query permutation).</summary>
public unsafe class DecodeAttentionPhaseBench : DecodeAttentionBase
{
    private readonly ushort[] _copy = new ushort[Tile * W];
    private readonly float[] _sp = new float[Nh * Tile], _o = new float[Nh * R], _m = new float[Nh], _l = new float[Nh];

    [GlobalSetup]
    public void Setup() => Fill(8192);

    private void Run(int phases)
    {
        Array.Fill(_m, float.NegativeInfinity);
        Array.Clear(_l);
        Array.Clear(_o);
        fixed (float* q = Q, sp = _sp, o = _o, m = _m, l = _l)
        {
            for (int layer = 0; layer < Layers; layer++)
            {
                for (int s = 0; s < 8192; s += Tile)
                {
                    fixed (ushort* rp = Caches[layer].Bf16Rows(s, Tile, _copy))
                    {
                        for (int j = 0; j < Tile; j += 2)
                            AttentionKernels.ScorePairHeads8(q, W, rp + j * W, rp + (j + 1) * W, 0.07f, sp + j, true);
                        if (phases >= 2)
                            AttentionKernels.SoftmaxTile(sp, Nh, Tile, null, m, l, o, R, R);
                        if (phases >= 3)
                            AttentionKernels.AccumulateBf16Heads8(o, R, rp, W, sp, Tile);
                    }
                }
            }
        }
    }

    [Benchmark(Baseline = true)]
    public void Scores() => Run(1);

    [Benchmark]
    public void ScoresSoftmax() => Run(2);

    [Benchmark]
    public void WholeKernel() => Run(3);
}
