// AdamW with decoupled weight decay, as torch.optim.AdamW (Loshchilov & Hutter 2019):
//   p ← p − lr·wd·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   p ← p − (lr / (1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
// plus gradient clipping by the global L2 norm (torch.nn.utils.clip_grad_norm_: scale by max/(norm + 1e-6)
// when the norm exceeds max). Moments are fp32 like the masters; bias corrections in double.
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
    private readonly IReadOnlyList<Parameter> _params;
    private readonly AdamWOptions _o;
    private readonly float[][] _m, _v;
    private readonly double[] _sq;
    private readonly Action<int> _update, _norm;
    private float _lr, _step1, _bc2Sqrt, _clipScale;

    public AdamW(IReadOnlyList<Parameter> parameters, AdamWOptions options)
    {
        _params = parameters;
        _o = options;
        _m = parameters.Select(p => new float[p.Length]).ToArray();
        _v = parameters.Select(p => new float[p.Length]).ToArray();
        _sq = new double[parameters.Count];
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

    /// <summary>Global L2 norm of all gradients (fp64 sums per tensor, added in parameter order).</summary>
    public double GradNorm(ComputeBackend be)
    {
        be.For(_params.Count, _norm);
        double s = 0;
        foreach (double x in _sq)
            s += x;
        return Math.Sqrt(s);
    }

    private void NormOne(int i)
    {
        double s = 0;
        foreach (float g in _params[i].Grad)
            s += (double)g * g;
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
        be.For(_params.Count, _update);
        return norm;
    }

    private void UpdateOne(int i)
    {
        Parameter prm = _params[i];
        Span<float> p = prm.Values, g = prm.Grad;
        float[] m = _m[i], v = _v[i];
        float b1 = (float)_o.Beta1, b2 = (float)_o.Beta2, eps = (float)_o.Eps;
        float decay = prm.IsVector && !_o.DecayVectors ? 1f : 1f - _lr * (float)_o.WeightDecay;
        float clip = _clipScale, step = _step1, bc2 = _bc2Sqrt;
        for (int j = 0; j < p.Length; j++)
        {
            float gj = g[j] * clip;
            float mj = m[j] = b1 * m[j] + (1f - b1) * gj;
            float vj = v[j] = b2 * v[j] + (1f - b2) * gj * gj;
            float denom = MathF.Sqrt(vj) / bc2 + eps;
            p[j] = p[j] * decay - step * (mj / denom);
        }
    }
}
