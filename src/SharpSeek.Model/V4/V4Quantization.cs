// DeepSeek-V4's quantization-aware simulations (inference/model.py with kernel.py's act_quant and fp4_act_quant,
// inplace = quantize then dequantize): the reference rounds what its cache and indexer hold to the formats the model
// was trained with. SharpSeek applies them with V4Precision.Reference; llama.cpp (and V4Precision.F32) does not.
//   cached K=V rows and compressed rows: the non-RoPE dims in FP8 E4M3 blocks of 64 with a power-of-two scale
//     2^ceil(log2(max(amax, 1e-4) / 448));
//   the indexer's queries and compressed keys: Hadamard-rotated (orthonormal, Sylvester order), then FP4 E2M1 blocks of
//     32 with a power-of-two scale 2^ceil(log2(max(amax, 6·2^-126) / 6)), values rounded to nearest, ties to even.
using SharpSeek.Tensors;

namespace SharpSeek.Model.V4;

/// <summary>How V4 rounds its cached rows and indexer operands.</summary>
public enum V4Precision
{
    /// <summary>fp32 throughout, as llama.cpp.</summary>
    F32,
    /// <summary>DeepSeek's reference: FP8 cached rows (non-RoPE dims), Hadamard + FP4 indexer queries and keys.</summary>
    Reference,
}

/// <summary>The reference's quantize-dequantize round trips.</summary>
public static class V4Quantization
{
    /// <summary>E2M1 magnitudes by code (0..7).</summary>
    private static readonly float[] Fp4 = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f];

    /// <summary>act_quant(x, 64, ue8m0, inplace) on x: FP8 E4M3 blocks of 64 (the last block may be shorter), in place.</summary>
    public static void Fp8RoundTrip(Span<float> x, int block = 64)
    {
        Span<byte> q = stackalloc byte[block];
        for (int b = 0; b < x.Length; b += block)
        {
            Span<float> v = x.Slice(b, Math.Min(block, x.Length - b));
            float s = IndexerKernels.QuantizeBlock(v, q);
            for (int i = 0; i < v.Length; i++)
                v[i] = Fp8E4M3.ToFloat(q[i]) * s;
        }
    }

    /// <summary>fp4_act_quant(x, 32, inplace): FP4 E2M1 blocks of 32 with power-of-two scales, in place.</summary>
    public static void Fp4RoundTrip(Span<float> x, int block = 32)
    {
        for (int b = 0; b < x.Length; b += block)
        {
            Span<float> v = x.Slice(b, Math.Min(block, x.Length - b));
            float amax = 0;
            foreach (float f in v)
                amax = MathF.Max(amax, MathF.Abs(f));
            float s = IndexerKernels.PowerOfTwoCeil(MathF.Max(amax, 6 * MathF.ScaleB(1f, -126)) / 6f);
            for (int i = 0; i < v.Length; i++)
                v[i] = RoundE2M1(Math.Clamp(v[i] / s, -6f, 6f)) * s;
        }
    }

    /// <summary>The nearest E2M1 value (ties to the even code), for |v| ≤ 6.</summary>
    public static float RoundE2M1(float v)
    {
        float a = MathF.Abs(v);
        int lo = 0;
        while (lo < 7 && Fp4[lo + 1] <= a)
            lo++;
        int code = lo;
        if (lo < 7)
        {
            float dl = a - Fp4[lo], dh = Fp4[lo + 1] - a;
            code = dl < dh ? lo : dh < dl ? lo + 1 : (lo & 1) == 0 ? lo : lo + 1;
        }
        return v < 0 ? -Fp4[code] : Fp4[code];
    }

    /// <summary>rotate_activation then fp4_act_quant: the indexer's operands as the reference scores them.</summary>
    public static void RotateFp4(Span<float> x)
    {
        IndexerKernels.Hadamard(x);
        Fp4RoundTrip(x);
    }
}
