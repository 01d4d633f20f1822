// SwiGLU activation of DeepSeek's MLPs: h = silu(g) ⊙ u with silu(g) = g·σ(g). Forward computes exactly what
// Ops.SiluMul does ((g·σ(g))·u), keeping g and u for Backward:
// dg = dh·u·σ(g)·(1 + g·(1 − σ(g))), du = dh·g·σ(g). Large arrays run in parallel chunks of 16K elements.
using System.Numerics;
using System.Numerics.Tensors;
using SharpSeek.Tensors;
using SharpSeek.Training.Kernels;

namespace SharpSeek.Training.Layers;

/// <summary>SwiGLU gating and its backward pass.</summary>
public static unsafe class SwiGlu
{
    private const int Chunk = 1 << 14;

    /// <summary>g [n], u [n] → h [n].</summary>
    public static void Forward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> h) => Forward(null, g, u, h);

    /// <summary>g [n], u [n] → h [n], in parallel chunks.</summary>
    public static void Forward(ComputeBackend? be, ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> h)
    {
        int n = h.Length;
        if (g.Length < n || u.Length < n)
            throw new ArgumentException("SwiGlu: g and u must be as long as h");
        fixed (float* pg = g, pu = u, ph = h)
            Rows.For(be, n, Chunk, new FwdJob(pg, pu, ph));
    }

    /// <summary>dh [n], g [n], u [n] → dg [n], du [n] (overwritten).</summary>
    public static void Backward(ReadOnlySpan<float> dh, ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> dg, Span<float> du) =>
        Backward(null, dh, g, u, dg, du);

    /// <summary>dh [n], g [n], u [n] → dg [n], du [n] (overwritten), in parallel chunks.</summary>
    public static void Backward(ComputeBackend? be, ReadOnlySpan<float> dh, ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> dg, Span<float> du)
    {
        int n = dh.Length;
        if (g.Length < n || u.Length < n || dg.Length < n || du.Length < n)
            throw new ArgumentException("SwiGlu: operands shorter than dh");
        fixed (float* pdh = dh, pg = g, pu = u, pdg = dg, pdu = du)
            Rows.For(be, n, Chunk, new BwdJob(pdh, pg, pu, pdg, pdu));
    }

    private readonly struct FwdJob(float* g, float* u, float* h) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            int n = r1 - r0;
            var gs = new ReadOnlySpan<float>(g + r0, n);
            var hs = new Span<float>(h + r0, n);
            TensorPrimitives.Sigmoid(gs, hs);
            TensorPrimitives.Multiply(gs, hs, hs);
            TensorPrimitives.Multiply(hs, new ReadOnlySpan<float>(u + r0, n), hs);
        }
    }

    private readonly struct BwdJob(float* dh, float* g, float* u, float* dg, float* du) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            int n = r1 - r0;
            float* pdh = dh + r0, pg = g + r0, pu = u + r0, pdg = dg + r0, pdu = du + r0;
            TensorPrimitives.Sigmoid(new ReadOnlySpan<float>(pg, n), new Span<float>(pdu, n)); // σ(g), parked in du
            int i = 0, w = Vector<float>.Count;
            var one = Vector<float>.One;
            for (; i <= n - w; i += w)
            {
                Vector<float> d = Vector.Load(pdh + i), gi = Vector.Load(pg + i), sig = Vector.Load(pdu + i);
                Vector.Store(d * gi * sig, pdu + i);
                Vector.Store(d * Vector.Load(pu + i) * sig * (one + gi * (one - sig)), pdg + i);
            }
            for (; i < n; i++)
            {
                float d = pdh[i], gi = pg[i], sig = pdu[i];
                pdu[i] = d * gi * sig;
                pdg[i] = d * pu[i] * sig * (1f + gi * (1f - sig));
            }
        }
    }
}
