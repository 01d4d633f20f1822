// Mixed-format dot products, accumulated in fp32, each with a scalar fallback.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpSeek.Tensors;

/// <summary>Dot products of stored weights with fp32 activations.</summary>
public static unsafe class Dot
{
    /// <summary>Σ x[i]·y[i] in fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float F32(ReadOnlySpan<float> x, ReadOnlySpan<float> y) => TensorPrimitives.Dot(x, y);

    /// <summary>Σ bf16(w[i])·x[i] in fp32; w and x have equal length.</summary>
    public static float Bf16(ReadOnlySpan<ushort> w, ReadOnlySpan<float> x)
    {
        if (w.Length != x.Length)
            throw new ArgumentException($"length mismatch {w.Length} vs {x.Length}");
        ref ushort wr = ref MemoryMarshal.GetReference(w);
        ref float xr = ref MemoryMarshal.GetReference(x);
        nuint n = (nuint)w.Length, i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= 32)
        {
            Vector512<float> a0 = Vector512<float>.Zero, a1 = Vector512<float>.Zero;
            for (; i + 32 <= n; i += 32)
            {
                if (Sse.IsSupported) // weights are streamed once in decode: request them 4 KB ahead
                    Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref wr, i + 2048)));
                (Vector512<uint> lo, Vector512<uint> hi) = Vector512.Widen(Vector512.LoadUnsafe(ref wr, i));
                a0 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(lo, 16).AsSingle(), Vector512.LoadUnsafe(ref xr, i), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.ShiftLeft(hi, 16).AsSingle(), Vector512.LoadUnsafe(ref xr, i + 16), a1);
            }
            sum = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 16)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                (Vector256<uint> lo, Vector256<uint> hi) = Vector256.Widen(Vector256.LoadUnsafe(ref wr, i));
                a0 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(lo, 16).AsSingle(), Vector256.LoadUnsafe(ref xr, i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.ShiftLeft(hi, 16).AsSingle(), Vector256.LoadUnsafe(ref xr, i + 8), a1);
            }
            sum = Vector256.Sum(a0 + a1);
        }
        for (; i < n; i++)
            sum += Tensors.Bf16.ToFloat(Unsafe.Add(ref wr, i)) * Unsafe.Add(ref xr, i);
        return sum;
    }
}
