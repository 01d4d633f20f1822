// Rotary embedding on interleaved pairs (spec §3.4): forward is Ops.RopeInterleaved with cos/sin from
// Model's RotaryEmbedding (YaRN frequencies and attention factor included). The map is linear, so the
// backward pass applies its transpose: (g0, g1) → (c·g0 + s·g1, −s·g0 + c·g1).
namespace SharpSeek.Training.Layers;

/// <summary>Backward of the interleaved-pair rotation.</summary>
public static class Rope
{
    /// <summary>Rotates the gradient g [2·cos.Length] in place by the transpose of the forward rotation.</summary>
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
