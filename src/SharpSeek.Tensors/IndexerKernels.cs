// Kernels of DeepSeek-V3.2's lightning indexer (DeepSeek Sparse Attention; DeepSeek-V3.2-Exp inference/model.py Indexer and
// kernel.py act_quant / fp8_index): the Hadamard rotation, FP8 e4m3 activation quantization with power-of-two (ue8m0)
// block scales, half-split RoPE, and the index score of one query over cached keys,
//   score(s) = Σ_h w_h · relu(q_h · k_s),
// with the keys stored in groups of 16 positions, dimension-major ([group][d][16]), so that a group's 16 scores of a head
// are 16-lane vectors. Each kernel has its scalar reference beside it (tests compare them).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Kernels of the V3.2 indexer.</summary>
public static class IndexerKernels
{
    /// <summary>Positions per key group of the cache layout.</summary>
    public const int Group = 16;

    /// <summary>Values per FP8 scale block (kernel.py's group_size), or the whole row when it is shorter.</summary>
    public const int QuantBlock = 128;

    /// <summary>The scale block of a row of <paramref name="width"/> values.</summary>
    public static int BlockOf(int width) => Math.Min(QuantBlock, width);

    /// <summary>
    /// In-place Walsh–Hadamard transform of x (length a power of two) in Sylvester order, scaled by length^-1/2
    /// (fast_hadamard_transform's hadamard_transform(x, scale=n^-0.5), an orthogonal rotation).
    /// </summary>
    public static void Hadamard(Span<float> x)
    {
        int n = x.Length;
        if (n == 0 || (n & (n - 1)) != 0)
            throw new ArgumentException($"Hadamard transform needs a power-of-two length, got {n}", nameof(x));
        for (int h = 1; h < n; h *= 2)
        {
            for (int i = 0; i < n; i += 2 * h)
            {
                Span<float> a = x.Slice(i, h), b = x.Slice(i + h, h);
                for (int j = 0; j < h; j++)
                {
                    float u = a[j], v = b[j];
                    a[j] = u + v;
                    b[j] = u - v;
                }
            }
        }
        TensorPrimitives.Multiply(x, 1f / MathF.Sqrt(n), x);
    }

    /// <summary>
    /// RoPE on pairs (i, i + half) of x[0 .. 2·half) (non-interleaved, "rotate_half" order): the indexer's rotation,
    /// where MLA's pairs are interleaved.
    /// </summary>
    public static void RopeHalfSplit(Span<float> x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = cos.Length;
        for (int i = 0; i < half; i++)
        {
            float a = x[i], b = x[i + half];
            x[i] = a * cos[i] - b * sin[i];
            x[i + half] = a * sin[i] + b * cos[i];
        }
    }

    /// <summary>
    /// kernel.py act_quant with round_scale (scale_fmt ue8m0) for one block: amax = max(|x|, 1e-4), scale = 2^ceil(log2(amax/448)),
    /// q = e4m3(clamp(x / scale, ±448)). Returns the scale.
    /// </summary>
    public static float QuantizeBlock(ReadOnlySpan<float> x, Span<byte> q)
    {
        float amax = Math.Max(TensorPrimitives.MaxMagnitude(x) is var m && float.IsNaN(m) ? 0 : MathF.Abs(m), 1e-4f);
        float scale = PowerOfTwoCeil(amax * (1f / Fp8E4M3.MaxValue));
        for (int i = 0; i < x.Length; i++)
            q[i] = Fp8E4M3.FromFloat(Math.Clamp(x[i] / scale, -Fp8E4M3.MaxValue, Fp8E4M3.MaxValue));
        return scale;
    }

    /// <summary>2^ceil(log2(v)) for positive normal v, from the bits as kernel.py's fast_log2_ceil / fast_pow2.</summary>
    public static float PowerOfTwoCeil(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        int e = (int)((bits >> 23) & 0xFF) - 127 + ((bits & 0x7FFFFF) != 0 ? 1 : 0);
        return BitConverter.UInt32BitsToSingle((uint)(e + 127) << 23);
    }

    /// <summary>
    /// Quantizes a row to FP8 blocks of <see cref="BlockOf"/>(row length) and writes the dequantized values (q · scale)
    /// to <paramref name="dequantized"/>; returns nothing else (used for the queries, which are not cached).
    /// </summary>
    public static void QuantizeDequantize(ReadOnlySpan<float> x, Span<float> dequantized)
    {
        int bs = BlockOf(x.Length);
        Span<byte> q = stackalloc byte[QuantBlock];
        for (int b = 0; b < x.Length; b += bs)
        {
            float s = QuantizeBlock(x.Slice(b, bs), q);
            for (int i = 0; i < bs; i++)
                dequantized[b + i] = Fp8E4M3.ToFloat(q[i]) * s;
        }
    }

    /// <summary>
    /// Index scores of one query over the positions of a run of whole key groups (f32 keys, layout [group][d][16]):
    /// scores[s] = Σ_h w[h] · relu(Σ_d q[h·D + d] · k[s][d]) for every position s of the groups. q [Hi·D], w [Hi],
    /// keys: <paramref name="groups"/>·D·16 floats, scores: groups·16.
    /// </summary>
    public static void ScoresF32(ReadOnlySpan<float> q, ReadOnlySpan<float> w, int D, ReadOnlySpan<float> keys, int groups, Span<float> scores)
    {
        int Hi = w.Length;
        for (int g = 0; g < groups; g++)
            ScoreGroup(q, w, Hi, D, keys.Slice(g * D * Group, D * Group), scores.Slice(g * Group, Group));
    }

    /// <summary>
    /// <see cref="ScoresF32"/> over FP8 keys: bytes [group][d][16] with scales [group][D/block][16] (one per position and
    /// block), dequantized a group at a time into <paramref name="tile"/> (D·16 floats).
    /// </summary>
    public static void ScoresFp8(ReadOnlySpan<float> q, ReadOnlySpan<float> w, int D, ReadOnlySpan<byte> keys, ReadOnlySpan<float> scales,
                                 int groups, Span<float> tile, Span<float> scores)
    {
        int Hi = w.Length, bs = BlockOf(D), nb = D / bs;
        for (int g = 0; g < groups; g++)
        {
            DequantizeGroup(keys.Slice(g * D * Group, D * Group), scales.Slice(g * nb * Group, nb * Group), D, bs, tile);
            ScoreGroup(q, w, Hi, D, tile, scores.Slice(g * Group, Group));
        }
    }

    // one group's dimension-major fp8 keys -> fp32 (value · its position's block scale)
    private static unsafe void DequantizeGroup(ReadOnlySpan<byte> k, ReadOnlySpan<float> s, int D, int bs, Span<float> tile)
    {
        if (Avx2.IsSupported)
        {
            fixed (byte* kp = k)
            fixed (float* sp = s, tp = tile)
            {
                Vector256<int> mag = Vector256.Create(0x7F), sign = Vector256.Create(0x80);
                Vector256<float> pow120 = Vector256.Create(BitConverter.UInt32BitsToSingle((127 + 120) << 23));
                for (int d = 0; d < D; d++)
                {
                    float* scale = sp + d / bs * Group;
                    for (int j = 0; j < Group; j += 8)
                    {
                        // e4m3 -> fp32: the 7 magnitude bits moved to fp32's exponent/mantissa place are the value · 2^-120
                        // (normals and subnormals alike), the sign bit to bit 31
                        Vector256<int> b = Avx2.ConvertToVector256Int32(kp + d * Group + j);
                        Vector256<float> v = (((b & mag) << 20) | ((b & sign) << 24)).AsSingle() * pow120;
                        (v * Vector256.Load(scale + j)).Store(tp + d * Group + j);
                    }
                }
            }
            return;
        }
        for (int d = 0; d < D; d++)
        {
            for (int j = 0; j < Group; j++)
                tile[d * Group + j] = Fp8E4M3.ToFloat(k[d * Group + j]) * s[d / bs * Group + j];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void ScoreGroup(ReadOnlySpan<float> q, ReadOnlySpan<float> w, int Hi, int D, ReadOnlySpan<float> k, Span<float> scores)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            ScoreGroupScalar(q, w, Hi, D, k, scores);
            return;
        }
        fixed (float* qp = q, wp = w, kp = k, op = scores)
        {
            Vector256<float> o0 = Vector256<float>.Zero, o1 = Vector256<float>.Zero;
            int h = 0;
            for (; h + 2 <= Hi; h += 2)
            {
                // two heads at a time, 16 positions each: four accumulators over the dimensions
                Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero, b0 = Vector256<float>.Zero, b1 = Vector256<float>.Zero;
                float* qa = qp + h * D, qb = qa + D;
                for (int d = 0; d < D; d++)
                {
                    Vector256<float> k0 = Vector256.Load(kp + d * Group), k1 = Vector256.Load(kp + d * Group + 8);
                    Vector256<float> x = Vector256.Create(qa[d]), y = Vector256.Create(qb[d]);
                    a0 = Vector256.FusedMultiplyAdd(x, k0, a0);
                    a1 = Vector256.FusedMultiplyAdd(x, k1, a1);
                    b0 = Vector256.FusedMultiplyAdd(y, k0, b0);
                    b1 = Vector256.FusedMultiplyAdd(y, k1, b1);
                }
                Vector256<float> wa = Vector256.Create(wp[h]), wb = Vector256.Create(wp[h + 1]);
                o0 += wa * Vector256.Max(a0, Vector256<float>.Zero) + wb * Vector256.Max(b0, Vector256<float>.Zero);
                o1 += wa * Vector256.Max(a1, Vector256<float>.Zero) + wb * Vector256.Max(b1, Vector256<float>.Zero);
            }
            for (; h < Hi; h++)
            {
                Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero;
                for (int d = 0; d < D; d++)
                {
                    Vector256<float> x = Vector256.Create(qp[h * D + d]);
                    a0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(kp + d * Group), a0);
                    a1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(kp + d * Group + 8), a1);
                }
                Vector256<float> wa = Vector256.Create(wp[h]);
                o0 += wa * Vector256.Max(a0, Vector256<float>.Zero);
                o1 += wa * Vector256.Max(a1, Vector256<float>.Zero);
            }
            o0.Store(op);
            o1.Store(op + 8);
        }
    }

    /// <summary>Scalar reference of a group's scores (keys [d][16] fp32).</summary>
    public static void ScoreGroupScalar(ReadOnlySpan<float> q, ReadOnlySpan<float> w, int Hi, int D, ReadOnlySpan<float> k, Span<float> scores)
    {
        for (int j = 0; j < Group; j++)
        {
            float total = 0;
            for (int h = 0; h < Hi; h++)
            {
                float dot = 0;
                for (int d = 0; d < D; d++)
                    dot = MathF.FusedMultiplyAdd(q[h * D + d], k[d * Group + j], dot);
                total += w[h] * Math.Max(dot, 0f);
            }
            scores[j] = total;
        }
    }

    /// <summary>
    /// The <paramref name="k"/> highest of scores[0 .. n) as positions in ascending order (equal scores: the lower
    /// position first); <paramref name="work"/> holds n floats of scratch. Returns the count (min(k, n)).
    /// </summary>
    public static int TopK(ReadOnlySpan<float> scores, int k, Span<int> positions, Span<float> work)
    {
        int n = scores.Length;
        if (k >= n)
        {
            for (int i = 0; i < n; i++)
                positions[i] = i;
            return n;
        }
        // the k-th largest value by quickselect on a copy, then every position above it and the first ties
        Span<float> a = work.Slice(0, n);
        scores.CopyTo(a);
        float threshold = Select(a, n - k);
        int above = 0;
        foreach (float v in scores)
        {
            if (v > threshold)
                above++;
        }
        int ties = k - above, count = 0;
        for (int i = 0; i < n; i++)
        {
            float v = scores[i];
            if (v > threshold || (v == threshold && ties-- > 0))
                positions[count++] = i;
        }
        return count;
    }

    // the value of rank r (0 = smallest) of a, reordering a (Hoare quickselect, median-of-three pivots); NaN sorts lowest
    private static float Select(Span<float> a, int r)
    {
        for (int i = 0; i < a.Length; i++)
        {
            if (float.IsNaN(a[i]))
                a[i] = float.NegativeInfinity;
        }
        int lo = 0, hi = a.Length - 1;
        while (lo < hi)
        {
            int mid = lo + (hi - lo) / 2;
            float x = a[lo], y = a[mid], z = a[hi];
            float pivot = Math.Max(Math.Min(x, y), Math.Min(Math.Max(x, y), z));
            int i = lo, j = hi;
            while (i <= j)
            {
                while (a[i] < pivot)
                    i++;
                while (a[j] > pivot)
                    j--;
                if (i <= j)
                {
                    (a[i], a[j]) = (a[j], a[i]);
                    i++;
                    j--;
                }
            }
            if (r <= j)
                hi = j;
            else if (r >= i)
                lo = i;
            else
                return a[r];
        }
        return a[r];
    }
}
