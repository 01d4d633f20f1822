// Token embedding (no scaling, docs/deepseek-architecture.md §3.1): x[t] = E[ids[t]]; backward dE[ids[t]] += dx[t] in token order. Lookups run
// in parallel over rows; the backward splits the table into fixed id ranges, each adding its tokens in token order,
// so every row of dE sees the same additions in the same order on any number of threads.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>Embedding lookup and its backward pass.</summary>
public static unsafe class Embedding
{
    private const int Ranges = 16;

    /// <summary>ids [N] → x [N, H] from table [V, H].</summary>
    public static void Forward(ReadOnlySpan<int> ids, F32Matrix table, Span<float> x) => Forward(null, ids, table, x);

    /// <summary>ids [N] → x [N, H] from table [V, H], rows in parallel.</summary>
    public static void Forward(ComputeBackend? be, ReadOnlySpan<int> ids, F32Matrix table, Span<float> x)
    {
        int H = table.Cols;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)table.Rows)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} outside the vocabulary of {table.Rows}");
        }
        if (x.Length < (long)ids.Length * H)
            throw new ArgumentException($"x must hold {ids.Length} x {H}", nameof(x));
        fixed (int* pi = ids)
        fixed (float* pt = table.Data, px = x)
            Rows.For(be, ids.Length, 64, new LookupJob(pi, pt, px, H));
    }

    private readonly struct LookupJob(int* ids, float* table, float* x, int H) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            for (int t = r0; t < r1; t++)
                Buffer.MemoryCopy(table + (long)ids[t] * H, x + (long)t * H, H * 4L, H * 4L);
        }
    }

    /// <summary>dx [N, H] → dtable [V, H] (+=).</summary>
    public static void Backward(ReadOnlySpan<int> ids, ReadOnlySpan<float> dx, Span<float> dtable, int H) => Backward(null, ids, dx, dtable, H);

    /// <summary>dx [N, H] → dtable [V, H] (+=), id ranges in parallel.</summary>
    public static void Backward(ComputeBackend? be, ReadOnlySpan<int> ids, ReadOnlySpan<float> dx, Span<float> dtable, int H)
    {
        int V = dtable.Length / H;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)V)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} outside the vocabulary of {V}");
        }
        if (dx.Length < (long)ids.Length * H)
            throw new ArgumentException($"dx must hold {ids.Length} x {H}", nameof(dx));
        int per = (V + Ranges - 1) / Ranges;
        fixed (int* pi = ids)
        fixed (float* pdx = dx, pt = dtable)
            Rows.For(be, Ranges, 1, new ScatterJob(pi, ids.Length, pdx, pt, H, per));
    }

    private readonly struct ScatterJob(int* ids, int n, float* dx, float* table, int H, int per) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            int lo = r0 * per, hi = lo + per;
            for (int t = 0; t < n; t++)
            {
                int id = ids[t];
                if (id >= lo && id < hi)
                {
                    float* row = table + (long)id * H;
                    Vec.Add(row, dx + (long)t * H, row, H);
                }
            }
        }
    }
}
