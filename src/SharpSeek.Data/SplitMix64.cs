// SplitMix64 (Steele, Lea & Flood 2014; Vigna's splitmix64.c): a tiny, fixed pseudo-random generator, so that
// shuffles depend only on the seed and not on System.Random, whose algorithm may change between .NET versions.
namespace SharpSeek.Data;

/// <summary>The SplitMix64 pseudo-random number generator.</summary>
public struct SplitMix64
{
    private ulong _state;

    /// <summary>Starts the sequence at <paramref name="seed"/>.</summary>
    public SplitMix64(ulong seed) => _state = seed;

    /// <summary>Returns the next 64 random bits.</summary>
    public ulong Next()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Returns a uniform integer in [0, <paramref name="bound"/>), without modulo bias (Lemire 2019, rejection on the low word).</summary>
    public ulong NextBelow(ulong bound)
    {
        if (bound == 0)
            throw new ArgumentOutOfRangeException(nameof(bound), "bound must be positive");
        ulong threshold = (0UL - bound) % bound;
        while (true)
        {
            ulong high = Math.BigMul(Next(), bound, out ulong low);
            if (low >= threshold)
                return high;
        }
    }

    /// <summary>SplitMix64's output function: a bijective 64-bit mix.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
