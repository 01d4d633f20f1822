// Comparison helpers that report the max abs diff and the first mismatches (llm.c test_gpt2.c style).
namespace SharpSeek.Tests;

internal static class Numerics
{
    public static double MaxAbsDiff(ReadOnlySpan<float> want, ReadOnlySpan<float> got)
    {
        if (want.Length != got.Length)
            return double.PositiveInfinity;
        double m = 0;
        for (int i = 0; i < want.Length; i++)
        {
            double d = Math.Abs((double)want[i] - got[i]);
            if (double.IsNaN(d))
                return double.PositiveInfinity;
            m = Math.Max(m, d);
        }
        return m;
    }

    /// <summary>||got - want|| / ||want|| (normalized RMS error, for bf16/fp8 paths).</summary>
    public static double RelRms(ReadOnlySpan<float> want, ReadOnlySpan<float> got)
    {
        double num = 0, den = 0;
        for (int i = 0; i < want.Length; i++)
        {
            double d = (double)got[i] - want[i];
            num += d * d;
            den += (double)want[i] * want[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    public static void AssertRelRms(ReadOnlySpan<float> want, ReadOnlySpan<float> got, double tol, string what)
    {
        if (want.Length != got.Length)
            Xunit.Assert.Fail($"{what}: length {got.Length}, expected {want.Length}");
        double e = RelRms(want, got);
        if (!(e <= tol))
            Xunit.Assert.Fail($"{what}: relative RMS error {e:G4} > {tol:G3} (max abs diff {MaxAbsDiff(want, got):G4})");
    }

    public static void AssertClose(ReadOnlySpan<float> want, ReadOnlySpan<float> got, double tol, string what)
    {
        if (want.Length != got.Length)
            Xunit.Assert.Fail($"{what}: length {got.Length}, expected {want.Length}");
        double max = MaxAbsDiff(want, got);
        if (max <= tol)
            return;
        var sb = new System.Text.StringBuilder($"{what}: max abs diff {max:G4} > {tol:G3}; first mismatches:");
        int shown = 0;
        for (int i = 0; i < want.Length && shown < 5; i++)
        {
            if (!(Math.Abs((double)want[i] - got[i]) <= tol))
            {
                sb.Append($" [{i}] want {want[i]:G6} got {got[i]:G6};");
                shown++;
            }
        }
        Xunit.Assert.Fail(sb.ToString());
    }

    /// <summary>The first index of the largest value.</summary>
    public static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++)
        {
            if (x[i] > x[best])
                best = i;
        }
        return best;
    }

    /// <summary>
    /// Logits [T, V] that differ by discrete flips (a near-tied routing or top-k choice) rather than everywhere: the median
    /// over positions of the per-position max |diff| is below <paramref name="medianTol"/> and the argmax agrees at a
    /// fraction <paramref name="sameArgMax"/> of the positions. Reports both numbers on failure.
    /// </summary>
    public static void AssertMostlyClose(ReadOnlySpan<float> want, ReadOnlySpan<float> got, int V, double medianTol, double sameArgMax, string what)
    {
        int T = want.Length / V;
        var diffs = new double[T];
        int same = 0;
        for (int t = 0; t < T; t++)
        {
            diffs[t] = MaxAbsDiff(want.Slice(t * V, V), got.Slice(t * V, V));
            same += ArgMax(want.Slice(t * V, V)) == ArgMax(got.Slice(t * V, V)) ? 1 : 0;
        }
        Array.Sort(diffs);
        double median = diffs[T / 2];
        if (median >= medianTol || same < sameArgMax * T)
            Xunit.Assert.Fail($"{what}: median per-position max |diff| {median:G3} (limit {medianTol:G3}), argmax agrees at {same} of {T} positions (need {sameArgMax:P0})");
    }
}
