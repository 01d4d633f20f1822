// Choosing between two kernels by timing them on this core: the 512-bit one-token kernels (Q4_K, Q6_K) win where the
// core has full-width 512-bit units and may lose where 512-bit work runs on fewer ports, which no CPUID flag tells.
using System.Diagnostics;

namespace SharpSeek.Tensors;

internal static class KernelChoice
{
    /// <summary>Runs <paramref name="current"/> then <paramref name="candidate"/> in 1 + <paramref name="rounds"/>
    /// alternating rounds (the first warms up) and says whether the candidate took less time in most timed rounds.</summary>
    public static bool CandidateWins(Action current, Action candidate, int rounds = 7)
    {
        var sw = new Stopwatch();
        int wins = 0;
        for (int round = 0; round <= rounds; round++)
        {
            sw.Restart();
            current();
            long currentTicks = sw.ElapsedTicks;
            sw.Restart();
            candidate();
            if (round > 0 && sw.ElapsedTicks < currentTicks)
                wins++;
        }
        return wins > rounds / 2;
    }
}
