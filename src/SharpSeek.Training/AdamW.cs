// AdamW with decoupled weight decay, as torch.optim.AdamW (Loshchilov & Hutter 2019):
//   p ← p − lr·wd·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   p ← p − (lr / (1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
// plus gradient clipping by the global L2 norm (torch.nn.utils.clip_grad_norm_: scale by max/(norm + 1e-6)
// when the norm exceeds max). Moments are fp32 like the masters; bias corrections in double. The update and the norm run
// over fixed chunks of 16K values (vectorized, spread over the backend's workers); the norm adds the chunks' fp64 sums in
// order, so the result does not depend on the thread count.
using System.Numerics;
using SharpSeek.Tensors;

namespace SharpSeek.Training;

/// <summary>AdamW hyper-parameters.</summary>
public sealed record AdamWOptions
{
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double Eps { get; init; } = 1e-8;
    public double WeightDecay { get; init; } = 0.1;
    /// <summary>Apply weight decay to 1-D tensors (norm weights) too (torch's default when all parameters share one group).</summary>
    public bool DecayVectors { get; init; } = true;
}

/// <summary>AdamW state (first and second moments per parameter, step count) and update.</summary>
public sealed class AdamW
{
    private const int Chunk = 1 << 14;
    private readonly IReadOnlyList<Parameter> _params;
    private readonly AdamWOptions _o;
    private readonly float[][] _m, _v;
    private readonly double[] _sq;
    private readonly (int Param, int Start, int Length)[] _chunks;
    private readonly Action<int> _update, _norm;
    private float _lr, _step1, _bc2Sqrt, _clipScale;

    /// <param name="updates">The parameters it updates (and whose gradients the norm covers); null: all. The others keep
    /// their values and zero moments (frozen, as the main model in the indexer's warm-up).</param>
    public AdamW(IReadOnlyList<Parameter> parameters, AdamWOptions options, Func<Parameter, bool>? updates = null)
    {
        _params = parameters;
        _o = options;
        _m = parameters.Select(p => new float[p.Length]).ToArray();
        _v = parameters.Select(p => new float[p.Length]).ToArray();
        var chunks = new List<(int, int, int)>();
        for (int i = 0; i < parameters.Count; i++)
        {
            if (updates is not null && !updates(parameters[i]))
                continue;
            for (int s = 0; s < parameters[i].Length; s += Chunk)
                chunks.Add((i, s, Math.Min(Chunk, parameters[i].Length - s)));
        }
        _chunks = chunks.ToArray();
        _sq = new double[_chunks.Length];
        _update = UpdateOne;
        _norm = NormOne;
    }

    /// <summary>Completed updates (t of the bias correction).</summary>
    public long Step { get; set; }

    public AdamWOptions Options => _o;

    /// <summary>First moments, one array per parameter (checkpointing).</summary>
    public IReadOnlyList<float[]> M => _m;

    /// <summary>Second moments, one array per parameter (checkpointing).</summary>
    public IReadOnlyList<float[]> V => _v;

    /// <summary>Global L2 norm of all gradients (fp64 sums per chunk, added in parameter order).</summary>
    public double GradNorm(ComputeBackend be)
    {
        be.For(_chunks.Length, _norm);
        double s = 0;
        foreach (double x in _sq)
            s += x;
        return Math.Sqrt(s);
    }

    private void NormOne(int i)
    {
        (int prm, int start, int n) = _chunks[i];
        ReadOnlySpan<float> g = _params[prm].Grad.Slice(start, n);
        int j = 0, w = Vector<float>.Count;
        Vector<double> a0 = Vector<double>.Zero, a1 = Vector<double>.Zero;
        for (; j <= n - w; j += w)
        {
            Vector.Widen(new Vector<float>(g.Slice(j, w)), out Vector<double> lo, out Vector<double> hi);
            a0 += lo * lo;
            a1 += hi * hi;
        }
        double s = Vector.Sum(a0 + a1);
        for (; j < n; j++)
            s += (double)g[j] * g[j];
        _sq[i] = s;
    }

    /// <summary>
    /// Clips the gradients to global norm <paramref name="maxNorm"/> (0: no clipping), then applies one AdamW update
    /// with learning rate <paramref name="lr"/>. Returns the norm before clipping.
    /// </summary>
    public double Update(ComputeBackend be, double lr, double maxNorm)
    {
        double norm = GradNorm(be);
        _clipScale = maxNorm > 0 && norm > maxNorm ? (float)(maxNorm / (norm + 1e-6)) : 1f;
        Step++;
        _lr = (float)lr;
        _step1 = (float)(lr / (1 - Math.Pow(_o.Beta1, Step)));
        _bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(_o.Beta2, Step));
        be.For(_chunks.Length, _update);
        return norm;
    }

    private void UpdateOne(int i)
    {
        (int idx, int start, int n) = _chunks[i];
        Parameter prm = _params[idx];
        Span<float> p = prm.Values.Slice(start, n), g = prm.Grad.Slice(start, n);
        Span<float> m = _m[idx].AsSpan(start, n), v = _v[idx].AsSpan(start, n);
        float b1 = (float)_o.Beta1, b2 = (float)_o.Beta2, eps = (float)_o.Eps;
        float decay = prm.IsVector && !_o.DecayVectors ? 1f : 1f - _lr * (float)_o.WeightDecay;
        float clip = _clipScale, step = _step1, bc2 = _bc2Sqrt;
        int j = 0, w = Vector<float>.Count;
        // the same operations as the scalar tail, lane by lane
        Vector<float> vb1 = new(b1), vc1 = new(1f - b1), vb2 = new(b2), vc2 = new(1f - b2), veps = new(eps);
        Vector<float> vdecay = new(decay), vclip = new(clip), vstep = new(step), vbc2 = new(bc2);
        for (; j <= n - w; j += w)
        {
            Vector<float> gj = new Vector<float>(g.Slice(j, w)) * vclip;
            Vector<float> mj = vb1 * new Vector<float>(m.Slice(j, w)) + vc1 * gj;
            Vector<float> vj = vb2 * new Vector<float>(v.Slice(j, w)) + vc2 * gj * gj;
            mj.CopyTo(m.Slice(j, w));
            vj.CopyTo(v.Slice(j, w));
            Vector<float> denom = Vector.SquareRoot(vj) / vbc2 + veps;
            (new Vector<float>(p.Slice(j, w)) * vdecay - vstep * (mj / denom)).CopyTo(p.Slice(j, w));
        }
        for (; j < n; j++)
        {
            float gj = g[j] * clip;
            float mj = m[j] = b1 * m[j] + (1f - b1) * gj;
            float vj = v[j] = b2 * v[j] + (1f - b2) * gj * gj;
            float denom = MathF.Sqrt(vj) / bc2 + eps;
            p[j] = p[j] * decay - step * (mj / denom);
        }
    }
}
