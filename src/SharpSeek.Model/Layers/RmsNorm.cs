// RMSNorm as in DeepSeek-V3 model.py: y = x · rstd · weight, rstd = 1 / sqrt(mean(x²) + eps), statistics in fp32.
// Forward is Ops.RmsNorm row by row (so training and inference normalize identically); Backward below it. Rows run in
// parallel in fixed blocks of 32; the weight gradient is summed per block and the blocks are added in order, so the bits
// do not depend on the thread count. Strided overloads address rows that live inside wider rows (latents, MTP input).
using System.Numerics;
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>Row-wise RMSNorm with its backward pass.</summary>
public static unsafe class RmsNorm
{
    private const int Block = 32;

    /// <summary>x [T, C], weight [C] → rstd [T] (saved for Backward), y [T, C]. y may alias x.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> rstd, Span<float> y, int T) =>
        Forward(null, x, weight.Length, weight, eps, rstd, y, weight.Length, T);

    /// <summary>As <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, float, Span{float}, Span{float}, int)"/>, rows in parallel.</summary>
    public static void Forward(ComputeBackend? be, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> rstd, Span<float> y, int T) =>
        Forward(be, x, weight.Length, weight, eps, rstd, y, weight.Length, T);

    /// <summary>Rows of x and y <paramref name="ldx"/> and <paramref name="ldy"/> floats apart (C = weight.Length of each normalized).</summary>
    public static void Forward(ComputeBackend? be, ReadOnlySpan<float> x, int ldx, ReadOnlySpan<float> weight, float eps, Span<float> rstd,
                               Span<float> y, int ldy, int T)
    {
        int C = weight.Length;
        if (T <= 0)
            return;
        Check(x.Length, ldx, C, T, nameof(x));
        Check(y.Length, ldy, C, T, nameof(y));
        if (rstd.Length < T)
            throw new ArgumentException("rstd too small", nameof(rstd));
        fixed (float* px = x, pw = weight, pr = rstd, py = y)
            Rows.For(be, T, Block, new FwdJob(px, ldx, pw, C, eps, pr, py, ldy));
    }

    /// <summary>sum = a + b, then y = RMSNorm(sum) (rows of C = weight.Length), in one pass over the rows.</summary>
    public static void AddForward(ComputeBackend? be, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> sum, ReadOnlySpan<float> weight,
                                  float eps, Span<float> rstd, Span<float> y, int T)
    {
        int C = weight.Length;
        if (T <= 0)
            return;
        Check(a.Length, C, C, T, nameof(a));
        Check(b.Length, C, C, T, nameof(b));
        Check(sum.Length, C, C, T, nameof(sum));
        Check(y.Length, C, C, T, nameof(y));
        if (rstd.Length < T)
            throw new ArgumentException("rstd too small", nameof(rstd));
        fixed (float* pa = a, pb = b, ps = sum, pw = weight, pr = rstd, py = y)
            Rows.For(be, T, Block, new AddFwdJob(pa, pb, ps, pw, C, eps, pr, py));
    }

    private readonly struct AddFwdJob(float* a, float* b, float* sum, float* w, int C, float eps, float* rstd, float* y) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            var ws = new ReadOnlySpan<float>(w, C);
            for (int t = r0; t < r1; t++)
            {
                long o = (long)t * C;
                Vec.Add(a + o, b + o, sum + o, C);
                rstd[t] = Ops.RmsNorm(new ReadOnlySpan<float>(sum + o, C), ws, eps, new Span<float>(y + o, C));
            }
        }
    }

    private readonly struct FwdJob(float* x, int ldx, float* w, int C, float eps, float* rstd, float* y, int ldy) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            var ws = new ReadOnlySpan<float>(w, C);
            for (int t = r0; t < r1; t++)
                rstd[t] = Ops.RmsNorm(new ReadOnlySpan<float>(x + (long)t * ldx, C), ws, eps, new Span<float>(y + (long)t * ldy, C));
        }
    }

    /// <summary>dy [T, C], x [T, C], weight [C], rstd [T] → dx [T, C] (+=), dweight [C] (+=).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
                                ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dweight, int T)
    {
        int C = weight.Length;
        Backward(null, dy, C, x, C, weight, rstd, dx, C, dweight, T);
    }

    /// <summary>As <see cref="Backward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, int)"/>, rows in parallel.</summary>
    public static void Backward(ComputeBackend? be, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
                                ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dweight, int T)
    {
        int C = weight.Length;
        Backward(be, dy, C, x, C, weight, rstd, dx, C, dweight, T);
    }

    /// <summary>Strided backward: rows of dy, x, dx are lddy, ldx, lddx floats apart; dx is overwritten unless <paramref name="accumulate"/>.</summary>
    public static void Backward(ComputeBackend? be, ReadOnlySpan<float> dy, int lddy, ReadOnlySpan<float> x, int ldx, ReadOnlySpan<float> weight,
                                ReadOnlySpan<float> rstd, Span<float> dx, int lddx, Span<float> dweight, int T, bool accumulate = true)
    {
        int C = weight.Length;
        if (T <= 0)
            return;
        Check(dy.Length, lddy, C, T, nameof(dy));
        Check(x.Length, ldx, C, T, nameof(x));
        Check(dx.Length, lddx, C, T, nameof(dx));
        if (rstd.Length < T || dweight.Length < C)
            throw new ArgumentException("rstd or dweight too small");
        int blocks = Rows.Blocks(T, Block);
        float[] partial = Partials(blocks * C);
        fixed (float* pdy = dy, px = x, pw = weight, pr = rstd, pdx = dx, pdw = dweight, pp = partial)
        {
            Rows.For(be, T, Block, new BwdJob(pdy, lddy, px, ldx, pw, C, pr, pdx, lddx, pp, accumulate));
            // dweight += Σ_blocks partial, blocks in order
            for (int b = 0; b < blocks; b++)
                Vec.Add(pdw, pp + (long)b * C, pdw, C);
        }
    }

    [ThreadStatic] private static float[]? t_partial;

    private static float[] Partials(int n) => t_partial is { } p && p.Length >= n ? p : (t_partial = new float[Math.Max(n, 4096)]);

    private static void Check(int length, int ld, int C, int T, string name)
    {
        if (ld < C || length < (long)(T - 1) * ld + C)
            throw new ArgumentException($"{name}: {length} floats cannot hold {T} rows of {C} with stride {ld}");
    }

    private readonly struct BwdJob(float* dy, int lddy, float* x, int ldx, float* w, int C, float* rstd, float* dx, int lddx, float* partial, bool acc) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            float* dw = partial + (long)block * C;
            new Span<float>(dw, C).Clear();
            for (int t = r0; t < r1; t++)
                Row(dy + (long)t * lddy, x + (long)t * ldx, w, rstd[t], dx + (long)t * lddx, dw, C, acc);
        }
    }

    // dw += dy·x·s; dot = Σ w·dy·x; dx (+)= s·w·dy − (s³·dot/C)·x
    private static void Row(float* dy, float* x, float* w, float s, float* dx, float* dw, int C, bool acc)
    {
        int c = 0, n = Vector<float>.Count;
        var sv = new Vector<float>(s);
        Vector<float> dotv = Vector<float>.Zero;
        float dot = 0f;
        for (; c <= C - n; c += n)
        {
            Vector<float> g = Vector.Load(dy + c) * Vector.Load(x + c);
            Vector.Store(Vector.Load(dw + c) + g * sv, dw + c);
            dotv += Vector.Load(w + c) * g;
        }
        for (; c < C; c++)
        {
            float g = dy[c] * x[c];
            dw[c] += g * s;
            dot += w[c] * g;
        }
        dot += Vector.Sum(dotv);
        float k = s * s * s * dot / C;
        var kv = new Vector<float>(k);
        if (acc)
        {
            for (c = 0; c <= C - n; c += n)
                Vector.Store(Vector.Load(dx + c) + (sv * Vector.Load(w + c) * Vector.Load(dy + c) - kv * Vector.Load(x + c)), dx + c);
            for (; c < C; c++)
                dx[c] += s * w[c] * dy[c] - k * x[c];
        }
        else
        {
            for (c = 0; c <= C - n; c += n)
                Vector.Store(sv * Vector.Load(w + c) * Vector.Load(dy + c) - kv * Vector.Load(x + c), dx + c);
            for (; c < C; c++)
                dx[c] = s * w[c] * dy[c] - k * x[c];
        }
    }
}
