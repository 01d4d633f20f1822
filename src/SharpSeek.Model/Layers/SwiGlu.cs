// SwiGLU activation of DeepSeek's MLPs: h = silu(g) ⊙ u with silu(g) = g·σ(g). Forward computes exactly what
// Ops.SiluMul does ((g·σ(g))·u), keeping g and u for Backward:
// dg = dh·u·σ(g)·(1 + g·(1 − σ(g))), du = dh·g·σ(g). One fused pass each way (σ with FastExp); large
// arrays run in parallel chunks of 16K elements.
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

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
            RowOps.SiluMul(g + r0, u + r0, h + r0, r1 - r0);
        }
    }

    private readonly struct BwdJob(float* dh, float* g, float* u, float* dg, float* du) : IRowJob
    {
        public void Run(int block, int r0, int r1)
        {
            RowOps.SiluMulBackward(dh + r0, g + r0, u + r0, dg + r0, du + r0, r1 - r0);
        }
    }
}
