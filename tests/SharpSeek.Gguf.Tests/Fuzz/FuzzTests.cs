// A bounded fuzz run of every target on each test run (SHARPSEEK_FUZZ_CASES cases per target, default 300; seed from
// SHARPSEEK_FUZZ_SEED, default 1), and the regression inputs of earlier findings. bench/fuzz/run.sh runs the same
// targets for millions of cases.
using SharpSeek.Gguf.Tests.Fuzz;
using Xunit.Abstractions;

namespace SharpSeek.Gguf.Tests;

public sealed class FuzzTests(ITestOutputHelper log)
{
    public static IEnumerable<object[]> Targets() => new[] { "gguf", "safetensors", "config", "tokenizer" }.Select(t => new object[] { t });

    private static long Cases => long.TryParse(Environment.GetEnvironmentVariable("SHARPSEEK_FUZZ_CASES"), out long n) ? n : 300;

    private static ulong Seed => ulong.TryParse(Environment.GetEnvironmentVariable("SHARPSEEK_FUZZ_SEED"), out ulong s) ? s : 1;

    [Theory]
    [MemberData(nameof(Targets))]
    public void Hostile_inputs_are_refused_with_a_clear_error_never_a_crash_hang_or_huge_allocation(string name)
    {
        using var work = new TempDir();
        // findings are kept after the run (only a failing run writes there)
        string artifacts = Environment.GetEnvironmentVariable("SHARPSEEK_FUZZ_ARTIFACTS") ?? Path.Combine(Path.GetTempPath(), "sharpseek-fuzz-findings");
        FuzzReport r = Fuzzer.Run(FuzzTargets.ByName(name), Seed, Cases, work.File("case"), artifacts, log.WriteLine);
        foreach ((string refusal, int n) in r.Refusals.OrderByDescending(kv => kv.Value).Take(15))
            log.WriteLine($"  {n,6} x {refusal}");
        Assert.True(r.Findings.Count == 0, r.Summary(name) + ":\n" + string.Join("\n", r.Findings
            .GroupBy(f => f.Key).Select(g => $"  {g.Count()} x {g.Key} (first: case {g.First().Case}, {g.First().InputPath})\n    {g.First().Detail.Split('\n').Take(8).Aggregate((a, b) => a + "\n    " + b)}")));
        // the run must reach the deep code: some mutants load (a fuzzer refusing everything at the magic tests nothing)
        Assert.True(r.Accepted > 0, $"{name}: no mutated input was accepted in {r.Cases} cases");
        Assert.True(r.Refused > 0, $"{name}: no mutated input was refused in {r.Cases} cases");
    }
}
