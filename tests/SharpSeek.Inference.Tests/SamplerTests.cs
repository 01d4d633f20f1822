// Sampler: each distribution checked by a chi-square test of many seeded draws against a reference computed here
// in double precision from the definitions (softmax(l / T), top-k, then top-p on the renormalized top-k
// distribution, then min-p); penalties on hand-computed cases; seeds; greedy; no allocation per draw.
using SharpSeek.Inference;

namespace SharpSeek.Inference.Tests;

public class SamplerTests
{
    private static readonly float[] Logits = [1.2f, -0.3f, 2.5f, 0.0f, 2.4f, -1.7f, 0.9f, 3.1f, 0.4f, -0.8f, 1.9f, 2.0f];

    // Reference: the kept tokens and their probabilities, by definition.
    private static Dictionary<int, double> Expected(float[] logits, SamplingOptions o)
    {
        int V = logits.Length;
        double T = o.Temperature, max = logits.Max();
        var p = logits.Select((l, i) => (Id: i, P: Math.Exp((l - max) / T))).OrderByDescending(x => x.P).ThenBy(x => x.Id).ToList();
        if (o.TopK > 0)
            p = p.Take(o.TopK).ToList();
        double z = p.Sum(x => x.P);
        p = p.Select(x => (x.Id, x.P / z)).ToList();
        if (o.TopP < 1)
        {
            double cum = 0;
            int n = 0;
            while (n < p.Count && cum < o.TopP - 1e-12)
                cum += p[n++].P;
            p = p.Take(Math.Max(1, n)).ToList();
        }
        if (o.MinP > 0)
        {
            double top = p[0].P;
            p = p.Where(x => x.P >= o.MinP * top).ToList();
        }
        z = p.Sum(x => x.P);
        return p.ToDictionary(x => x.Id, x => x.P / z);
    }

    // Wilson-Hilferty approximation of the chi-square quantile at 0.9999 (z = 3.719).
    private static double ChiSquareCritical(int df)
    {
        double k = df, z = 3.719;
        return k * Math.Pow(1 - 2 / (9 * k) + z * Math.Sqrt(2 / (9 * k)), 3);
    }

    private static void AssertDrawsFollow(float[] logits, SamplingOptions o, int draws = 40_000, int drawable = 0)
    {
        Dictionary<int, double> want = Expected(drawable > 0 ? logits[..drawable] : logits, o);
        var sampler = new Sampler(o, logits.Length, drawable);
        var counts = new int[logits.Length];
        for (int i = 0; i < draws; i++)
            counts[sampler.Sample(logits)]++;
        for (int id = 0; id < logits.Length; id++)
        {
            if (!want.ContainsKey(id))
                Assert.True(counts[id] == 0, $"token {id} is outside the kept set {string.Join(",", want.Keys)} but was drawn {counts[id]} times");
        }
        if (want.Count == 1)
        {
            Assert.Equal(draws, counts[want.Keys.Single()]);
            return;
        }
        double chi2 = want.Sum(kv => Math.Pow(counts[kv.Key] - draws * kv.Value, 2) / (draws * kv.Value));
        double critical = ChiSquareCritical(want.Count - 1);
        Assert.True(chi2 < critical, $"chi-square {chi2:F1} >= {critical:F1} (df {want.Count - 1}) for {o}");
    }

    [Fact]
    public void TemperatureOneDrawsTheSoftmax() => AssertDrawsFollow(Logits, new SamplingOptions { Seed = 1 });

    [Fact]
    public void LowTemperatureSharpens() => AssertDrawsFollow(Logits, new SamplingOptions { Temperature = 0.5f, Seed = 2 });

    [Fact]
    public void HighTemperatureFlattens() => AssertDrawsFollow(Logits, new SamplingOptions { Temperature = 2.5f, Seed = 3 });

    [Fact]
    public void TopKKeepsTheKMostLikely() => AssertDrawsFollow(Logits, new SamplingOptions { TopK = 4, Temperature = 0.8f, Seed = 4 });

    [Fact]
    public void TopPKeepsTheSmallestNucleus() => AssertDrawsFollow(Logits, new SamplingOptions { TopP = 0.8f, Seed = 5 });

    [Fact]
    public void MinPKeepsTokensAboveAFractionOfTheMax() => AssertDrawsFollow(Logits, new SamplingOptions { MinP = 0.3f, Seed = 6 });

    [Fact]
    public void FiltersCombineInOrder() =>
        AssertDrawsFollow(Logits, new SamplingOptions { TopK = 7, TopP = 0.9f, MinP = 0.1f, Temperature = 1.3f, Seed = 7 });

    [Theory]
    [InlineData(0, 1f, 0f, 1f)]
    [InlineData(4, 1f, 0f, 0.8f)]
    [InlineData(0, 0.8f, 0f, 1f)]
    [InlineData(0, 1f, 0.3f, 1f)]
    public void IdsPastTheDrawableOnesAreNeverDrawn(int topK, float topP, float minP, float temperature)
    {
        // Logits' argmax (id 7) is past the 7 drawable ids: the draws follow the distribution over ids 0..6
        var o = new SamplingOptions { TopK = topK, TopP = topP, MinP = minP, Temperature = temperature, Seed = 11 };
        AssertDrawsFollow(Logits, o, drawable: 7);
        var greedy = new Sampler(SamplingOptions.Greedy, Logits.Length, drawableTokens: 7);
        Assert.Equal(2, greedy.Sample(Logits));
        Assert.Equal(7, greedy.DrawableTokens);
        Assert.Equal(Logits.Length, new Sampler(o, Logits.Length).DrawableTokens);
    }

    [Fact]
    public void TinyTopPLeavesOnlyTheArgmax() => AssertDrawsFollow(Logits, new SamplingOptions { TopP = 0.01f, Seed = 8 }, draws: 1000);

    [Theory]
    [InlineData(0, 0.9f, 0f)]
    [InlineData(0, 0.999f, 0f)]
    [InlineData(3000, 0.95f, 0f)]
    [InlineData(0, 1f, 0.001f)]
    [InlineData(500, 0.5f, 0.01f)]
    public void DistributionMatchesTheDefinitionOnALargeFlatVocabulary(int topK, float topP, float minP)
    {
        // a flat distribution over 20k tokens: the nucleus needs thousands of tokens, so the gather threshold drops
        var rng = new Random(123);
        float[] logits = Enumerable.Range(0, 20_000).Select(_ => (float)(rng.NextDouble() * 3)).ToArray();
        var o = new SamplingOptions { TopK = topK, TopP = topP, MinP = minP, Temperature = 0.9f, Seed = 9 };
        Dictionary<int, double> want = Expected(logits, o);
        var sampler = new Sampler(o, logits.Length);
        var ids = new int[logits.Length];
        var probs = new float[logits.Length];
        int n = sampler.Distribution(logits, ids, probs);
        Assert.Equal(want.Count, n);
        for (int i = 0; i < n; i++)
        {
            Assert.True(want.TryGetValue(ids[i], out double p), $"token {ids[i]} kept but not in the reference set");
            Assert.Equal(p, probs[i], 1e-6);
        }
    }

    [Fact]
    public void DistributionSumsToOneAndIsSorted()
    {
        var sampler = new Sampler(new SamplingOptions { Temperature = 0.7f }, Logits.Length);
        var ids = new int[Logits.Length];
        var probs = new float[Logits.Length];
        int n = sampler.Distribution(Logits, ids, probs);
        Assert.Equal(Logits.Length, n);
        Assert.Equal(1.0, probs.Take(n).Sum(p => (double)p), 1e-5);
        for (int i = 1; i < n; i++)
            Assert.True(probs[i] <= probs[i - 1]);
        Assert.Equal(7, ids[0]);
    }

    [Fact]
    public void GreedyIsTheArgmaxWithFirstIndexOnTies()
    {
        var sampler = new Sampler(SamplingOptions.Greedy, Logits.Length);
        Assert.Equal(7, sampler.Sample(Logits));
        float[] tie = [0f, 5f, 1f, 5f];
        Assert.Equal(1, new Sampler(SamplingOptions.Greedy, 4).Sample(tie));
        Assert.Equal(1, new Sampler(new SamplingOptions { TopK = 1, Seed = 3 }, 4).Sample(tie));
        var rng = new Random(5);
        for (int trial = 0; trial < 50; trial++)
        {
            float[] l = Enumerable.Range(0, 1000).Select(_ => (float)rng.NextDouble()).ToArray();
            int want = Array.IndexOf(l, l.Max());
            Assert.Equal(want, new Sampler(SamplingOptions.Greedy, l.Length).Sample(l));
            // Sample's greedy shortcut (no copy of the logits) and the general path of Distribution agree, past the
            // drawable ids too
            var ids = new int[l.Length];
            var probs = new float[l.Length];
            var limited = new Sampler(SamplingOptions.Greedy, l.Length, drawableTokens: 700);
            Assert.Equal(1, limited.Distribution(l, ids, probs));
            Assert.Equal(ids[0], limited.Sample(l));
            Assert.Equal(Array.IndexOf(l, l[..700].Max()), ids[0]);
        }
    }

    [Fact]
    public void PenaltiesFollowTheirDefinitions()
    {
        var o = new SamplingOptions { RepetitionPenalty = 2f, PresencePenalty = 0.5f, FrequencyPenalty = 0.25f };
        var sampler = new Sampler(o, 5);
        sampler.AddPrompt([0]);
        sampler.Accept(1);
        sampler.Accept(1);
        sampler.Accept(3);
        float[] l = [2f, -2f, 1f, 0.5f, -1f];
        sampler.ApplyPenalties(l);
        // 0: prompt only -> repetition: 2 / 2; 1: -2 * 2 - (0.5 + 2 * 0.25); 2, 4: unseen;
        // 3: 0.5 / 2 - (0.5 + 1 * 0.25)
        Assert.Equal([1f, -5f, 1f, -0.5f, -1f], l);
        Assert.Equal(2, sampler.GeneratedCount(1));
    }

    [Fact]
    public void PenaltiesChangeTheGreedyChoice()
    {
        float[] l = [3f, 2.5f, 1f];
        var rep = new Sampler(SamplingOptions.Greedy with { RepetitionPenalty = 1.5f }, 3);
        Assert.Equal(0, rep.Sample(l));
        rep.AddPrompt([0]);
        Assert.Equal(1, rep.Sample(l)); // 3 / 1.5 = 2 < 2.5
        Assert.Equal([3f, 2.5f, 1f], l); // Sample leaves the caller's logits alone

        var presence = new Sampler(SamplingOptions.Greedy with { PresencePenalty = 1f }, 3);
        presence.AddPrompt([0]); // prompt tokens carry no presence penalty
        Assert.Equal(0, presence.Sample(l));
        presence.Accept(0);
        Assert.Equal(1, presence.Sample(l));

        var frequency = new Sampler(SamplingOptions.Greedy with { FrequencyPenalty = 0.3f }, 3);
        frequency.Accept(0);
        Assert.Equal(0, frequency.Sample(l)); // 3 - 0.3 > 2.5
        frequency.Accept(0);
        Assert.Equal(1, frequency.Sample(l)); // 3 - 0.6 < 2.5

        frequency.Reset();
        Assert.Equal(0, frequency.Sample(l));
    }

    [Fact]
    public void NegativeLogitsArePushedDownByRepetition()
    {
        var s = new Sampler(SamplingOptions.Greedy with { RepetitionPenalty = 1.3f }, 2);
        float[] l = [-1f, -1.2f];
        Assert.Equal(0, s.Sample(l));
        s.AddPrompt([0]);
        Assert.Equal(1, s.Sample(l)); // -1 * 1.3 = -1.3 < -1.2
    }

    [Fact]
    public void SameSeedSameTokensDifferentSeedDifferentTokens()
    {
        var o = new SamplingOptions { Temperature = 1.5f, TopP = 0.95f, Seed = 1234 };
        int[] a = Draws(new Sampler(o, Logits.Length), 200);
        int[] b = Draws(new Sampler(o, Logits.Length), 200);
        int[] c = Draws(new Sampler(o with { Seed = 1235 }, Logits.Length), 200);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        var again = new Sampler(o, Logits.Length);
        Draws(again, 50);
        again.Reset();
        Assert.Equal(a, Draws(again, 200));
        Assert.Equal(1234UL, again.Seed);
    }

    [Fact]
    public void NoSeedDrawsOneAndReportsIt()
    {
        var s = new Sampler(new SamplingOptions(), Logits.Length);
        int[] a = Draws(s, 100);
        int[] b = Draws(new Sampler(new SamplingOptions { Seed = (long)s.Seed }, Logits.Length), 100);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Xoshiro256MatchesTheReferenceImplementation()
    {
        // xoshiro256starstar.c seeded by four splitmix64 outputs, computed independently
        var r = new Xoshiro256(0);
        Assert.Equal(0x99ec5f36cb75f2b4UL, r.NextUInt64());
        Assert.Equal(0xbf6e1f784956452aUL, r.NextUInt64());
        Assert.Equal(0x1a5f849d4933e6e0UL, r.NextUInt64());
        Assert.Equal(0x6aa594f1262d2d2cUL, r.NextUInt64());
        var s = new Xoshiro256(42);
        Assert.Equal(0x15780b2e0c2ec716UL, s.NextUInt64());
        Assert.Equal(0x6104d9866d113a7eUL, s.NextUInt64());
        double u = s.NextDouble();
        Assert.InRange(u, 0.0, 1.0);
        Assert.Equal((0xae17533239e499a1UL >> 11) / 9007199254740992.0, u);
    }

    [Fact]
    public void DrawsDoNotAllocate()
    {
        var rng = new Random(7);
        float[] logits = Enumerable.Range(0, 4096).Select(_ => (float)rng.NextDouble() * 4).ToArray();
        foreach (SamplingOptions o in new[]
        {
            SamplingOptions.Greedy,
            new SamplingOptions { Seed = 1 },
            new SamplingOptions { TopK = 40, TopP = 0.9f, MinP = 0.05f, RepetitionPenalty = 1.1f, FrequencyPenalty = 0.2f, Seed = 1 },
        })
        {
            var s = new Sampler(o, logits.Length);
            s.Accept(s.Sample(logits)); // warm up
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 200; i++)
                s.Accept(s.Sample(logits));
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    [Theory]
    [InlineData(float.NaN, 0, 1f, 0f, 1f)]
    [InlineData(1f, -1, 1f, 0f, 1f)]
    [InlineData(1f, 0, 0f, 0f, 1f)]
    [InlineData(1f, 0, 1.5f, 0f, 1f)]
    [InlineData(1f, 0, 1f, -0.1f, 1f)]
    [InlineData(1f, 0, 1f, 0f, 0f)]
    public void OutOfRangeOptionsAreRejected(float temperature, int topK, float topP, float minP, float repetition)
    {
        var o = new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, RepetitionPenalty = repetition };
        Assert.Throws<ArgumentException>(() => new Sampler(o, 10));
    }

    [Fact]
    public void WrongLogitCountIsRejected()
    {
        var s = new Sampler(SamplingOptions.Greedy, 10);
        Assert.Throws<ArgumentException>(() => s.Sample(new float[9]));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Accept(10));
    }

    private static int[] Draws(Sampler s, int n)
    {
        var r = new int[n];
        for (int i = 0; i < n; i++)
            r[i] = s.Sample(Logits);
        return r;
    }
}
