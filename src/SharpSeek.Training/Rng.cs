// Deterministic random numbers for initialization and sampling: SplitMix64 (Steele, Lea, Flood 2014), normals by
// Box-Muller in double precision. The whole state is one ulong, saved in checkpoints.
namespace SharpSeek.Training;

/// <summary>SplitMix64 generator with uniform and normal draws.</summary>
public sealed class Rng
{
    public Rng(ulong seed) => State = seed;

    /// <summary>The generator state (save and restore it to resume a stream exactly).</summary>
    public ulong State { get; set; }

    /// <summary>The SplitMix64 output function.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A stable 64-bit hash of a string (FNV-1a), to derive per-tensor streams from names.</summary>
    public static ulong Hash(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in s)
        {
            h ^= ch;
            h *= 1099511628211UL;
        }
        return h;
    }

    public ulong NextUInt64()
    {
        State += 0x9E3779B97F4A7C15UL;
        return Mix(State);
    }

    /// <summary>Uniform in [0, 1) with 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Standard normal (Box-Muller, one value per two uniforms).</summary>
    public double NextNormal()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Fills <paramref name="dst"/> with N(0, std²).</summary>
    public void FillNormal(Span<float> dst, double std)
    {
        for (int i = 0; i < dst.Length; i++)
            dst[i] = (float)(NextNormal() * std);
    }
}
