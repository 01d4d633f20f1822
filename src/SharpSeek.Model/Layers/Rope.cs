// Rotary position embedding on interleaved pairs with optional YaRN (docs/deepseek-architecture.md §3.4; transformers
// _compute_yarn_parameters / _compute_default_rope_parameters, computed the way they are: fp32 frequencies,
// fp32 angle = position · inv_freq, cos/sin multiplied by the attention factor).
using SharpSeek.Tensors;

namespace SharpSeek.Model.Layers;

/// <summary>Frequencies and per-position cos/sin of the decoupled RoPE part (Dr dims).</summary>
public sealed class RotaryEmbedding
{
    /// <summary>inv_freq_i for i in [0, Dr/2).</summary>
    public float[] InvFreq { get; }

    /// <summary>Multiplier on cos and sin (1 except for some YaRN configs).</summary>
    public float AttentionFactor { get; }

    public int Half => InvFreq.Length;

    public RotaryEmbedding(ModelConfig c)
    {
        int d = c.QkRopeHeadDim;
        double theta = c.Rope.Theta;
        var inv = new float[d / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            float exponent = (float)(2 * i) / d;            // torch: arange(0, d, 2).float() / d, in fp32
            float posFreq = (float)Math.Pow(theta, exponent);
            inv[i] = 1f / posFreq;
            if (c.Rope.Type == RopeType.Yarn)
            {
                float extrapolation = 1f / posFreq, interpolation = 1f / ((float)c.Rope.Factor * posFreq);
                (double low, double high) = CorrectionRange(c.Rope, d);
                if (low == high)
                    high += 0.001;
                float ramp = Math.Clamp((float)((i - low) / (high - low)), 0f, 1f);
                float extrapolationFactor = 1f - ramp;
                inv[i] = interpolation * (1f - extrapolationFactor) + extrapolation * extrapolationFactor;
            }
        }
        InvFreq = inv;
        AttentionFactor = (float)c.RopeAttentionFactor;
    }

    /// <summary>YaRN's [low, high] dimension range between full extrapolation and full interpolation.</summary>
    public static (double Low, double High) CorrectionRange(RopeConfig r, int d)
    {
        double Dim(double rotations) => d * Math.Log(r.OriginalMaxPositions / (rotations * 2 * Math.PI)) / (2 * Math.Log(r.Theta));
        double low = Dim(r.BetaFast), high = Dim(r.BetaSlow);
        if (r.Truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        return (Math.Max(low, 0), Math.Min(high, d - 1));
    }

    /// <summary>cos/sin [Half] for one position (already multiplied by the attention factor).</summary>
    public void CosSin(int position, Span<float> cos, Span<float> sin)
    {
        float p = position;
        for (int i = 0; i < InvFreq.Length; i++)
        {
            float angle = p * InvFreq[i];
            cos[i] = MathF.Cos(angle) * AttentionFactor;
            sin[i] = MathF.Sin(angle) * AttentionFactor;
        }
    }

    /// <summary>Rotates x [2·Half] in place with precomputed cos/sin.</summary>
    public static void Apply(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin) => Ops.RopeInterleaved(x, cos, sin);

    /// <summary>Backward of <see cref="Apply"/>: the map is linear, so the gradient g [2·Half] is rotated in place by its
    /// transpose, (g0, g1) → (c·g0 + s·g1, −s·g0 + c·g1).</summary>
    public static void Backward(Span<float> g, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = cos.Length;
        g = g.Slice(0, 2 * half);
        for (int i = 0; i < half; i++)
        {
            float g0 = g[2 * i], g1 = g[2 * i + 1], c = cos[i], s = sin[i];
            g[2 * i] = c * g0 + s * g1;
            g[2 * i + 1] = -s * g0 + c * g1;
        }
    }
}
