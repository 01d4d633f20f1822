// Generator on the fixture checkpoints: greedy decoding with the cache reproduces transformers' generate()
// exactly (plain, chunked prefill, MTP speculative, batched, reused prefix); stop tokens, stop strings, max
// tokens, context end, streaming, cancellation and counts on the tiny model with a tokenizer.
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model;
using SharpSeek.Tests;

namespace SharpSeek.Inference.Tests;

public class GeneratorTests
{
    private static readonly GenerationOptions Greedy24 = new() { MaxTokens = 24, Sampling = SamplingOptions.Greedy, IgnoreEos = true };

    private static (int[] Prompt, int[] Output) Reference(string dir)
    {
        using Checkpoint r = Checkpoint.FromFiles(dir, [Path.Combine(dir, "reference.safetensors")], null);
        return (r.ReadInt64("generate_prompt").Select(v => (int)v).ToArray(), r.ReadInt64("generate_output").Select(v => (int)v).ToArray());
    }

    public static IEnumerable<object[]> MtpFolders() =>
        Fixtures.HfFolders().Where(f => ModelConfig.Load(Fixtures.Hf((string)f[0])).NumNextnPredictLayers > 0);

    [Theory]
    [MemberData(nameof(Fixtures.HfFolders), MemberType = typeof(Fixtures))]
    public void GreedyMatchesTransformersGenerate(string name)
    {
        string dir = Fixtures.Hf(name);
        (int[] prompt, int[] want) = Reference(dir);
        using ModelWeights w = WeightLoader.Load(dir);
        var g = new Generator(new Transformer(w));
        GenerationResult r = g.Generate(prompt, Greedy24);
        Assert.Equal(want, r.Tokens);
        Assert.Equal(FinishReason.Length, r.FinishReason);
        Assert.Equal(8, r.Stats.PromptTokens);
        Assert.Equal(24, r.Stats.CompletionTokens);
        Assert.Equal(prompt.Concat(want.Take(23)), g.CachedTokens); // the last token is sampled, not fed
        Assert.Equal(31, g.Cache.Length);
    }

    [Theory]
    [MemberData(nameof(MtpFolders))]
    public void SpeculativeDecodingGivesTheSameGreedyTokens(string name)
    {
        string dir = Fixtures.Hf(name);
        (int[] prompt, int[] want) = Reference(dir);
        using ModelWeights w = WeightLoader.Load(dir);
        foreach (int chunk in new[] { 256, 3 })
        {
            // the measuring policy: the fixtures are small enough that their shape alone predicts drafts cannot pay
            var g = new Generator(new Transformer(w)) { Speculation = new SpeculationPolicy() };
            GenerationResult r = g.Generate(prompt, Greedy24 with { Speculative = true, PrefillChunkTokens = chunk });
            Assert.Equal(want, r.Tokens);
            Assert.True(r.Stats.DraftTokens > 0);
            Assert.InRange(r.Stats.AcceptedDraftTokens, 0, r.Stats.DraftTokens);
            // the first token comes from the prefill, each verify gives one or two, plain steps finish the budget
            Assert.True(1 + r.Stats.DraftTokens + r.Stats.AcceptedDraftTokens <= 24);
            Assert.Equal(g.CachedTokens.Count, g.Cache.Length);
            Assert.Equal(prompt.Concat(want).Take(g.Cache.Length), g.CachedTokens);
        }
    }

    // k drafts a step (the module applied recursively on its own output state): the same greedy tokens as plain
    // decoding, at most k drafts a step, caches that agree with the kept tokens, and a second call that reuses them.
    [Theory]
    [MemberData(nameof(MtpFolders))]
    public void RecursiveDraftsGiveTheSameGreedyTokens(string name)
    {
        string dir = Fixtures.Hf(name);
        (int[] prompt, int[] want) = Reference(dir);
        using ModelWeights w = WeightLoader.Load(dir);
        foreach (int k in new[] { 2, 3, 5 })
        {
            var g = new Generator(new Transformer(w)) { Speculation = new SpeculationPolicy(adaptive: false) };
            GenerationResult r = g.Generate(prompt, Greedy24 with { Speculative = true, SpeculativeTokens = k });
            Assert.Equal(want, r.Tokens);
            Assert.True(r.Stats.SpeculativeSteps > 0);
            Assert.InRange(r.Stats.DraftTokens, r.Stats.SpeculativeSteps, k * r.Stats.SpeculativeSteps);
            Assert.InRange(r.Stats.AcceptedDraftTokens, 0, r.Stats.DraftTokens);
            // every step gives its accepted drafts plus one token; the first token comes from the prefill
            Assert.Equal(24, 1 + r.Stats.SpeculativeSteps + r.Stats.AcceptedDraftTokens + r.Stats.PlainSteps);
            Assert.Equal(g.CachedTokens.Count, g.Cache.Length);
            Assert.Equal(prompt.Concat(want).Take(g.Cache.Length), g.CachedTokens);
            Assert.True(g.Cache.Layers[w.Config.NumHiddenLayers].Length <= g.Cache.Length);
            GenerationResult again = g.Generate([.. prompt, .. want.Take(7)], Greedy24 with { Speculative = true, SpeculativeTokens = k, MaxTokens = 10 });
            Assert.Equal(want.Skip(7).Take(10), again.Tokens);
        }
    }

    [Theory]
    [MemberData(nameof(MtpFolders))]
    public void SpeculativeAcceptanceFollowsTheMtpModule(string name)
    {
        // Replay the algorithm on the uncached MTP logits of the final sequence: the draft made after the token at
        // position i+1 is argmax(mtp row i) (token i+1, main hidden i); accepted when it equals token i+2, and then
        // the next draft uses row i+2, else row i+1. Drafted and accepted counts must match exactly.
        string dir = Fixtures.Hf(name);
        using ModelWeights w = WeightLoader.Load(dir);
        var t = new Transformer(w);
        (int[] prompt, _) = Reference(dir);
        // drafting on every step (the adaptive policy would mix in plain steps)
        GenerationResult r = new Generator(t) { Speculation = new SpeculationPolicy(adaptive: false) }.Generate(prompt, Greedy24 with { Speculative = true });
        int[] seq = [.. prompt, .. r.Tokens];
        int T = seq.Length, H = w.Config.HiddenSize, V = w.Config.VocabSize;
        var hidden = new float[T * H];
        t.Logits(seq, finalHidden: hidden);
        KvCache cache = t.CreateCache();
        var slots = Enumerable.Range(0, T - 1).Select(i => new SharpSeek.Model.Layers.TokenSlot(0, i, seq[i + 1])).ToArray();
        var mtp = new float[(T - 1) * V];
        t.ForwardMtp(0, slots, [cache], hidden, mtp);

        int row = prompt.Length - 1, produced = 1, drafted = 0, accepted = 0;
        while (24 - produced >= 2)
        {
            drafted++;
            if (Sampler.ArgMax(mtp.AsSpan(row * V, V)) == seq[row + 2])
            {
                accepted++;
                produced += 2;
                row += 2;
            }
            else
            {
                produced += 1;
                row += 1;
            }
        }
        Assert.Equal(drafted, r.Stats.DraftTokens);
        Assert.Equal(accepted, r.Stats.AcceptedDraftTokens);
    }

    [Fact]
    public void ChunkedPrefillAndCacheTypesAgree()
    {
        string dir = Fixtures.Hf("v3-tiny");
        (int[] prompt, int[] want) = Reference(dir);
        using ModelWeights w = WeightLoader.Load(dir);
        var t = new Transformer(w);
        foreach (int chunk in new[] { 1, 3, 8 })
            Assert.Equal(want, new Generator(t).Generate(prompt, Greedy24 with { PrefillChunkTokens = chunk }).Tokens);
        // bf16 latents round the cache; the first tokens still agree with the fp32 path
        int[] bf16 = new Generator(t, cacheType: CacheType.BF16).Generate(prompt, Greedy24).Tokens.ToArray();
        Assert.Equal(want.Take(4), bf16.Take(4));
    }

    [Fact]
    public void APromptExtendingTheLastReusesTheCache()
    {
        string dir = Fixtures.Hf("v3-tiny");
        (int[] prompt, int[] want) = Reference(dir);
        using ModelWeights w = WeightLoader.Load(dir);
        var t = new Transformer(w);
        foreach (bool spec in new[] { false, true })
        {
            var g = new Generator(t);
            GenerationResult first = g.Generate(prompt, Greedy24 with { MaxTokens = 6, Speculative = spec });
            Assert.Equal(want.Take(6), first.Tokens);
            int[] next = [.. prompt, .. first.Tokens, 5, 6];
            GenerationResult second = g.Generate(next, Greedy24 with { MaxTokens = 8, Speculative = spec });
            Assert.InRange(second.Stats.CachedPromptTokens, 8, next.Length - 1);
            GenerationResult fresh = new Generator(t).Generate(next, Greedy24 with { MaxTokens = 8 });
            Assert.Equal(fresh.Tokens, second.Tokens);
            // a prompt that diverges early truncates the cache there
            int[] other = [prompt[0], prompt[1], 7, 9];
            GenerationResult third = g.Generate(other, Greedy24 with { MaxTokens = 5, Speculative = spec });
            Assert.InRange(third.Stats.CachedPromptTokens, 1, 2);
            Assert.Equal(new Generator(t).Generate(other, Greedy24 with { MaxTokens = 5 }).Tokens, third.Tokens);
            // the same prompt again recomputes only its last token (or two with MTP)
            GenerationResult again = g.Generate(other, Greedy24 with { MaxTokens = 5, Speculative = spec });
            Assert.Equal(third.Tokens, again.Tokens);
            Assert.InRange(again.Stats.CachedPromptTokens, 2, 3);
            g.Reset();
            Assert.Equal(0, g.Cache.Length);
            Assert.Equal(0, g.Generate(other, Greedy24 with { MaxTokens = 2 }).Stats.CachedPromptTokens);
        }
    }

    [Fact]
    public void BatchedDecodingEqualsOneSequenceAtATime()
    {
        string dir = Fixtures.Hf("v3-tiny");
        (int[] prompt, int[] want) = Reference(dir);
        using ModelWeights w = WeightLoader.Load(dir);
        var t = new Transformer(w);
        IReadOnlyList<int>[] prompts = [prompt, prompt[..3], [.. prompt, .. prompt], [42]];
        var o = Greedy24 with { MaxTokens = 10, StopTokens = [want[5]], PrefillChunkTokens = 5 };
        IReadOnlyList<GenerationResult> batch = new Generator(t).GenerateBatch(prompts, o);
        Assert.Equal(prompts.Length, batch.Count);
        for (int i = 0; i < prompts.Length; i++)
        {
            GenerationResult one = new Generator(t).Generate(prompts[i], o);
            Assert.Equal(one.Tokens, batch[i].Tokens);
            Assert.Equal(one.FinishReason, batch[i].FinishReason);
            Assert.Equal(prompts[i].Count, batch[i].Stats.PromptTokens);
        }
        Assert.Equal(FinishReason.Stop, batch[0].FinishReason);
        Assert.Equal(want.Take(6), batch[0].Tokens);
        Assert.Empty(new Generator(t).GenerateBatch([], o));
    }

    // continuous batching: at most 2 (or 3) sequences in flight, each finished one replaced by the next prompt in the
    // same step sequence (prompt tokens beside decode tokens, prompts split over steps by a 3-token budget); the same
    // generator twice (its pooled caches reused); each result reported once, as its sequence ends
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ContinuousBatchingEqualsOneSequenceAtATime(int maxConcurrent)
    {
        string dir = Fixtures.Hf("v3-tiny");
        (int[] prompt, int[] want) = Reference(dir);
        using ModelWeights w = WeightLoader.Load(dir);
        var t = new Transformer(w);
        IReadOnlyList<int>[] prompts = [prompt, prompt[..3], [.. prompt, .. prompt], [42], prompt[2..], [7, 9, 11, 13, 15, 17, 19]];
        var g = new Generator(t);
        for (int round = 0; round < 2; round++)
        {
            var o = Greedy24 with { MaxTokens = 4 + 3 * round, StopTokens = [want[5]], PrefillChunkTokens = 3 };
            var seen = new List<int>();
            IReadOnlyList<GenerationResult> batch = g.GenerateBatch(prompts, o, default, maxConcurrent, (i, r) => seen.Add(i));
            Assert.Equal(Enumerable.Range(0, prompts.Length), seen.Order());
            for (int i = 0; i < prompts.Length; i++)
            {
                GenerationResult one = new Generator(t).Generate(prompts[i], o);
                Assert.Equal(one.Tokens, batch[i].Tokens);
                Assert.Equal(one.FinishReason, batch[i].FinishReason);
                Assert.Equal(one.Text, batch[i].Text);
            }
        }
        Assert.Equal(0, g.Cache.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => g.GenerateBatch(prompts, Greedy24, default, -1));
        // one call at a time: a batch started from inside another's callback is refused, and the first one goes on
        var o2 = Greedy24 with { MaxTokens = 3 };
        Exception? inner = null;
        IReadOnlyList<GenerationResult> outer = g.GenerateBatch(prompts[..2], o2, default, 1, (i, r) => inner ??= Record.Exception(() => g.GenerateBatch(prompts[..1], o2)));
        Assert.IsType<InvalidOperationException>(inner);
        Assert.Equal(new Generator(t).Generate(prompts[1], o2).Tokens, outer[1].Tokens);
        Assert.Equal(3, g.GenerateBatch(prompts[..1], o2)[0].Tokens.Count);
    }

    // lanes: the places split between threads (each lane a batch of its own on one of the backend's workers, taking the
    // next prompt as its sequences end); every sequence's output equals its generation alone on the same backend, greedy
    // and sampled (the seed plus the prompt's index, whichever lane ran it); each result reported once; cancellation
    // and the one-call-at-a-time guard as without lanes
    [Theory]
    [InlineData(2, 2, 4)]
    [InlineData(3, 3, 5)]
    [InlineData(2, 0, 16)]
    public void LanesEqualOneSequenceAtATime(int threads, int lanes, int maxConcurrent)
    {
        string dir = Fixtures.Hf("v3-tiny");
        (int[] prompt, int[] want) = Reference(dir);
        using ModelWeights w = WeightLoader.Load(dir);
        using var be = new SharpSeek.Tensors.ThreadedBackend(threads);
        var t = new Transformer(w, be);
        var prompts = new List<IReadOnlyList<int>>();
        for (int i = 0; i < 40; i++)
            prompts.Add([.. prompt.Skip(i % 3).Take(1 + i % 6), i % 50 + 3]);
        var g = new Generator(t) { BatchLanes = lanes };
        GenerationOptions[] options =
        [
            Greedy24 with { MaxTokens = 6, StopTokens = [want[5]], PrefillChunkTokens = 4 },
            new GenerationOptions { MaxTokens = 7, IgnoreEos = true, PrefillChunkTokens = 3, Sampling = new() { Temperature = 1.1f, TopP = 0.9f, Seed = 5 } },
        ];
        foreach (GenerationOptions o in options)
        {
            var seen = new List<int>();
            IReadOnlyList<GenerationResult> batch = g.GenerateBatch(prompts, o, default, maxConcurrent, (i, r) => seen.Add(i));
            Assert.Equal(Enumerable.Range(0, prompts.Count), seen.Order());
            for (int i = 0; i < prompts.Count; i++)
            {
                var alone = o.Sampling.Seed is long seed ? o with { Sampling = o.Sampling with { Seed = seed + i } } : o;
                GenerationResult one = new Generator(t).Generate(prompts[i], alone);
                Assert.Equal(one.Tokens, batch[i].Tokens);
                Assert.Equal(one.FinishReason, batch[i].FinishReason);
            }
        }
        using var cts = new CancellationTokenSource();
        int reported = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => g.GenerateBatch(prompts, Greedy24, cts.Token, maxConcurrent, (i, r) =>
        {
            if (++reported == 3)
                cts.Cancel();
        }));
        Assert.InRange(reported, 3, prompts.Count - 1);
        Assert.Equal(new Generator(t).Generate(prompts[7], Greedy24).Tokens, g.GenerateBatch(prompts, Greedy24, default, maxConcurrent)[7].Tokens);
        Assert.Throws<ArgumentOutOfRangeException>(() => g.BatchLanes = -1);
    }

    [Fact]
    public void StopTokensAndMaxTokensEndGeneration()
    {
        string dir = Fixtures.Hf("v3-tiny");
        (int[] prompt, int[] want) = Reference(dir);
        using ModelWeights w = WeightLoader.Load(dir);
        var g = new Generator(new Transformer(w));
        GenerationResult stop = g.Generate(prompt, Greedy24 with { StopTokens = [want[5]] });
        Assert.Equal(want.Take(6), stop.Tokens);
        Assert.Equal(FinishReason.Stop, stop.FinishReason);
        Assert.Equal(6, stop.Stats.CompletionTokens);

        GenerationResult length = g.Generate(prompt, Greedy24 with { MaxTokens = 1 });
        Assert.Equal(want.Take(1), length.Tokens);
        Assert.Equal(FinishReason.Length, length.FinishReason);

        // config.json's eos_token_id (1) stops unless IgnoreEos; here force it through a stop at the first token
        var eosFirst = new Generator(new Transformer(w));
        Assert.Equal([1], eosFirst.EosTokenIds);
    }

    [Fact]
    public void GenerationStopsAtTheContextEnd()
    {
        string dir = Fixtures.Hf("v3-tiny");
        using ModelWeights w = WeightLoader.Load(dir);
        var g = new Generator(new Transformer(w));
        int ctx = g.ContextLength;
        int[] prompt = Enumerable.Range(0, ctx - 3).Select(i => 2 + i % 900).ToArray();
        GenerationResult r = g.Generate(prompt, Greedy24 with { PrefillChunkTokens = 512 });
        Assert.Equal(FinishReason.Length, r.FinishReason);
        Assert.Equal(4, r.Tokens.Count); // positions ctx-3 .. ctx-1 fed, plus the token sampled from the last
        Assert.Throws<ArgumentException>(() => g.Generate(Enumerable.Repeat(2, ctx).ToArray(), Greedy24));
        GenerationResult spec = new Generator(new Transformer(w)).Generate(prompt, Greedy24 with { Speculative = true });
        Assert.Equal(r.Tokens, spec.Tokens);
        // drafts are cut to the positions left
        GenerationResult deep = new Generator(new Transformer(w)) { Speculation = new SpeculationPolicy(adaptive: false) }
            .Generate(prompt, Greedy24 with { Speculative = true, SpeculativeTokens = 6, PrefillChunkTokens = 512 });
        Assert.Equal(r.Tokens, deep.Tokens);
        Assert.Equal(FinishReason.Length, deep.FinishReason);
    }

    [Fact]
    public void BadRequestsAreRejected()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        var g = new Generator(new Transformer(w));
        Assert.Throws<ArgumentException>(() => g.Generate([]));
        Assert.Throws<ArgumentException>(() => g.Generate([5000]));
        Assert.Throws<ArgumentException>(() => g.Generate([5], new GenerationOptions { MaxTokens = 0 }));
        Assert.Throws<ArgumentException>(() => g.Generate([5], new GenerationOptions { StopStrings = ["x"] })); // no tokenizer
        Assert.Throws<ArgumentException>(() => g.Generate([5], new GenerationOptions { StopTokens = [1024] }));
        Assert.Throws<ArgumentException>(() => g.Generate([5], new GenerationOptions { Sampling = new() { TopP = 0 } }));
        using ModelWeights v2 = WeightLoader.Load(Fixtures.Hf("v2-lite-tiny"));
        Assert.Throws<NotSupportedException>(() => new Generator(new Transformer(v2)).Generate([5], new GenerationOptions { Speculative = true }));
        Assert.Throws<ArgumentException>(() => g.Generate([5], new GenerationOptions { Speculative = true, SpeculativeTokens = 0 }));
        Assert.Throws<ArgumentException>(() => g.Generate([5], new GenerationOptions { Speculative = true, SpeculativeTokens = 17 }));
    }

    [Fact]
    public void SeededSamplingIsReproducible()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        var t = new Transformer(w);
        var o = new GenerationOptions { MaxTokens = 16, IgnoreEos = true, Sampling = new() { Temperature = 1.2f, TopP = 0.95f, Seed = 77 } };
        int[] prompt = [3, 14, 15, 92, 65];
        var a = new Generator(t).Generate(prompt, o).Tokens;
        var b = new Generator(t).Generate(prompt, o).Tokens;
        var c = new Generator(t).Generate(prompt, o with { Sampling = o.Sampling with { Seed = 78 } }).Tokens;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        // speculative sampling keeps the same distribution, not the same draws; it still runs to the budget
        var spec = new Generator(t).Generate(prompt, o with { Speculative = true });
        Assert.Equal(16, spec.Tokens.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DecodingAllocatesNothingPerToken(bool speculative)
    {
        // docs/design.md: no per-token allocation on the decode path (no tokenizer here: text deltas are strings)
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        var g = new Generator(new Transformer(w));
        var o = Greedy24 with { Speculative = speculative };
        foreach (GenerationUpdate _ in g.Stream([5, 6, 7], o with { MaxTokens = 120 })) // warm-up: one-time growth
        {
        }
        long Allocated(int tokens)
        {
            g.Reset();
            using IEnumerator<GenerationUpdate> e = g.Stream([5, 6, 7], o with { MaxTokens = tokens }).GetEnumerator();
            Assert.True(e.MoveNext()); // prefill and first token
            long before = GC.GetAllocatedBytesForCurrentThread();
            while (e.MoveNext())
            {
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        long few = Allocated(20), many = Allocated(120);
        Assert.True(many - few <= 0, $"100 more tokens allocated {many - few} more bytes");
    }
}
