// The continuous-batching scheduler: greedy outputs of concurrent requests equal the same requests run alone (fixture
// and default model), per-request sampling, cancellation, prefix reuse (counts and outputs), a full queue, bad input,
// and the counters that show nothing leaked.
using SharpSeek.Model;
using SharpSeek.Tests;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference.Tests;

public class BatchSchedulerTests
{
    private static readonly GenerationOptions Greedy = new() { MaxTokens = 12, Sampling = SamplingOptions.Greedy, IgnoreEos = true, PrefillChunkTokens = 5 };

    // 16 prompts of 1..40 tokens, distinct from their first token
    private static int[][] Prompts(int vocab, int count = 16)
    {
        var rng = new Random(7);
        return [.. Enumerable.Range(0, count).Select(i => (int[])[2 + i, .. Enumerable.Range(0, i * 5 % 40).Select(_ => rng.Next(2, vocab))])];
    }

    private static void AssertNothingLeaked(BatchScheduler s)
    {
        BatchSchedulerStats st = s.Stats;
        Assert.Equal(0, st.Active);
        Assert.Equal(0, st.Queued);
        Assert.Equal(0, st.CachesUnaccounted);
        Assert.Equal(st.Submitted, st.Finished + st.Cancelled + st.Failed);
    }

    // threads 1: one forward per step; with several threads the step's sequences also run in lanes (each lane's
    // forward on its own thread: 2 and 3 lanes asked for, and automatic lanes, which 16 sequences on 2 threads get)
    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 2)]
    [InlineData(3, 3)]
    [InlineData(2, 0)]
    public async Task ConcurrentGreedyRequestsEqualTheSameRequestsAlone(int threads, int lanes)
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        using var be = new SharpSeek.Tensors.ThreadedBackend(threads);
        int[][] prompts = Prompts(w.Config.VocabSize);
        // a small step budget makes steps mix prefill chunks of new requests with decode slots of running ones
        var options = new BatchSchedulerOptions { MaxParallel = 16, MaxStepTokens = 24, PrefillChunkTokens = 5, PrefixCacheBytes = 0, Lanes = lanes };
        var steps = new List<BatchStep>();
        using var s = new BatchScheduler(new Transformer(w, be), null, options with { StepCompleted = steps.Add });
        GenerationResult[] together = await Task.WhenAll(prompts.Select(p => s.GenerateAsync(p, Greedy with { MaxTokens = 8 + p.Length % 7 })));
        var alone = new Generator(new Transformer(w, be));
        for (int i = 0; i < prompts.Length; i++)
        {
            GenerationOptions o = Greedy with { MaxTokens = 8 + prompts[i].Length % 7 };
            GenerationResult want = alone.Generate(prompts[i], o);
            alone.Reset();
            Assert.Equal(want.Tokens, together[i].Tokens);
            Assert.Equal(want.FinishReason, together[i].FinishReason);
            Assert.Equal(prompts[i].Length, together[i].Stats.PromptTokens);
        }
        lock (steps)
        {
            Assert.Contains(steps, st => st.DecodeSlots > 0 && st.PrefillSlots > 0); // mixed steps happened
            Assert.Contains(steps, st => st.DecodeSlots >= 8);                     // and wide decode steps
            Assert.All(steps, st => Assert.True(st.DecodeSlots + st.PrefillSlots <= 24 || st.PrefillSlots <= 5));
        }
        AssertNothingLeaked(s);
        Assert.Equal(16, s.Stats.Finished);
    }

    [Fact]
    public async Task DefaultModelChatsBatchedEqualAlone()
    {
        string dir = Fixtures.ShippedModel("sharpseek-mini");
        using ModelSession session = ModelSession.Open(dir, new ModelSessionOptions { Tokenizer = TokenizerLoad.Required });
        string[] questions = ["Who was Anne Elliot?", "It was a fine morning, and", "In the beginning", "The captain said",
                              "What is the weather like?", "Tell me a story.", "Lady Russell", "Sir Walter Elliot, of Kellynch Hall",
                              "A truth universally acknowledged", "Where is the ship?", "He walked into the room", "Why?",
                              "Count to ten.", "The Lord is my shepherd", "Emma Woodhouse, handsome, clever, and rich", "Goodbye"];
        int[][] prompts = [.. questions.Select(q => session.Tokenizer!.Encode(session.Template!.Render([ChatMessage.User(q)], addGenerationPrompt: true)))];
        var o = new GenerationOptions { MaxTokens = 24, Sampling = SamplingOptions.Greedy };
        using var s = new BatchScheduler(session.CreateTransformer(), session.Tokenizer, new BatchSchedulerOptions { PrefixCacheBytes = 0 });
        GenerationResult[] together = await Task.WhenAll(prompts.Select(p => s.GenerateAsync(p, o)));
        Generator alone = session.CreateGenerator();
        for (int i = 0; i < prompts.Length; i++)
        {
            GenerationResult want = alone.Generate(prompts[i], o);
            alone.Reset();
            Assert.Equal(want.Tokens, together[i].Tokens);
            Assert.Equal(want.Text, together[i].Text);
        }
        AssertNothingLeaked(s);
    }

    [Fact]
    public async Task EachRequestSamplesWithItsOwnOptions()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        int[][] prompts = Prompts(w.Config.VocabSize, 6);
        GenerationOptions Sampled(int i) => Greedy with
        {
            MaxTokens = 10,
            Sampling = new SamplingOptions { Temperature = 0.5f + 0.25f * i, TopP = 0.95f, TopK = i == 3 ? 5 : 0, Seed = 100 + i, PresencePenalty = i == 2 ? 1 : 0 },
        };
        using var s = new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { PrefillChunkTokens = 5 });
        GenerationResult[] together = await Task.WhenAll(prompts.Select((p, i) => s.GenerateAsync(p, Sampled(i))));
        var alone = new Generator(new Transformer(w));
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(alone.Generate(prompts[i], Sampled(i)).Tokens, together[i].Tokens);
            alone.Reset();
        }
        // a different seed gives a different draw
        GenerationResult other = await s.GenerateAsync(prompts[5], Sampled(5) with { Sampling = Sampled(5).Sampling with { Seed = 1 } });
        Assert.NotEqual(together[5].Tokens, other.Tokens);
        AssertNothingLeaked(s);
    }

    [Fact]
    public async Task CancelledRequestsLeaveAndTheOthersFinish()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        int[][] prompts = Prompts(w.Config.VocabSize, 4);
        using var s = new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { PrefillChunkTokens = 5 });
        var o = Greedy with { MaxTokens = 200 };
        Task<GenerationResult>[] others = [.. prompts.Skip(1).Select(p => s.GenerateAsync(p, o with { MaxTokens = 30 }))];
        // cancelled after its third update; the scheduler does not wait for readers, so on a loaded machine a victim
        // can finish all its tokens before this reader sees three of them: then a new victim is tried
        int seen = 0, attempts = 0;
        bool cancelled = false;
        while (!cancelled && attempts++ < 5)
        {
            using var cts = new CancellationTokenSource();
            ScheduledGeneration victim = s.Submit(prompts[0], o, cts.Token);
            seen = 0;
            try
            {
                await foreach (GenerationUpdate _ in victim.ReadAllAsync())
                {
                    if (++seen == 3)
                        cts.Cancel();
                }
            }
            catch (OperationCanceledException)
            {
                cancelled = true;
            }
        }
        Assert.True(cancelled, $"no victim of {attempts - 1} was cancelled before it finished");
        Assert.InRange(seen, 3, 199);
        foreach (Task<GenerationResult> t in others)
            Assert.Equal(30, (await t).Tokens.Count);
        // an abandoned enumeration cancels its request too
        await foreach (GenerationUpdate _ in s.StreamAsync(prompts[1], o))
            break;
        for (int i = 0; i < 100 && s.Stats.Active > 0; i++)
            await Task.Delay(10);
        AssertNothingLeaked(s);
        Assert.Equal(2, s.Stats.Cancelled);
    }

    [Fact]
    public async Task PrefixReuseComputesOnlyTheNewTokensAndGivesTheSameOutput()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        int[] system = [.. Enumerable.Range(10, 30)];
        using var s = new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { PrefillChunkTokens = 8 });
        var alone = new Generator(new Transformer(w));
        int[] turn = [.. system, 50, 51, 52];
        var o = Greedy with { MaxTokens = 6, PrefillChunkTokens = 8 };
        int cached = 0;
        for (int k = 0; k < 5; k++)
        {
            GenerationResult r = await s.GenerateAsync(turn, o);
            alone.Reset();
            Assert.Equal(alone.Generate(turn, o).Tokens, r.Tokens);
            Assert.Equal(cached, r.Stats.CachedPromptTokens);
            // the next turn: everything so far (the last sampled token was never fed), then a new user message
            cached = turn.Length + r.Tokens.Count - 1;
            turn = [.. turn, .. r.Tokens, 60 + k, 61 + k];
        }
        Assert.True(s.Stats.CachedTokens > 0);
        // another conversation with the same system prompt copies the shared rows and leaves the entry in place
        int entries = s.Stats.PrefixEntries;
        GenerationResult b = await s.GenerateAsync([.. system, 70, 71], o);
        Assert.Equal(system.Length, b.Stats.CachedPromptTokens);
        alone.Reset();
        Assert.Equal(alone.Generate([.. system, 70, 71], o).Tokens, b.Tokens);
        Assert.Equal(entries + 1, s.Stats.PrefixEntries);
        AssertNothingLeaked(s);
    }

    [Fact]
    public async Task PrefixCacheStaysUnderItsBudget()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        long oneCache = (long)w.Config.NumHiddenLayers * LatentCache.BlockTokens * w.Config.LatentDim * sizeof(float);
        using var s = new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { PrefixCacheBytes = 3 * oneCache, MaxParallel = 2 });
        for (int i = 0; i < 8; i++)
            await s.GenerateAsync([3 + i, 5, 7], Greedy with { MaxTokens = 3 });
        BatchSchedulerStats st = s.Stats;
        Assert.Equal(3, st.PrefixEntries);
        Assert.True(st.PrefixBytes <= 3 * oneCache);
        Assert.InRange(st.Caches, 3, 3 + 2);
        AssertNothingLeaked(s);
    }

    [Fact]
    public async Task FullQueueAndBadInputAreRefused()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        using var s = new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { MaxParallel = 1, MaxQueue = 1 });
        Assert.Throws<ArgumentException>(() => s.Submit([]));
        Assert.Throws<ArgumentException>(() => s.Submit(new int[s.ContextLength]));
        Assert.Throws<ArgumentException>(() => s.Submit([5, 100_000]));
        Assert.Throws<ArgumentException>(() => s.Submit([5], Greedy with { StopStrings = ["x"] })); // no tokenizer
        Assert.Throws<ArgumentException>(() => s.Submit([5], Greedy with { MaxTokens = 0 }));
        Assert.Throws<ArgumentException>(() => new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { MaxParallel = 0 }));
        using var cts = new CancellationTokenSource();
        var longRun = Greedy with { MaxTokens = 400 };
        ScheduledGeneration a = s.Submit([5, 6], longRun, cts.Token);
        await a.Updates.WaitToReadAsync(); // a is running
        ScheduledGeneration b = s.Submit([5, 7], longRun, cts.Token);
        Assert.Throws<SchedulerFullException>(() => s.Submit([5, 8], longRun));
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => { await foreach (GenerationUpdate _ in b.ReadAllAsync()) { } });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => { await foreach (GenerationUpdate _ in a.ReadAllAsync()) { } });
        Assert.Equal(3, (await s.GenerateAsync([5, 9], Greedy with { MaxTokens = 3 })).Tokens.Count);
        AssertNothingLeaked(s);
    }

    // A token cancelled while the scheduler drops the cancelled request from its queue: the token's callback (flag the
    // request, wake the scheduler under its lock) must not wait for the scheduler, nor the scheduler, ending the request
    // under that lock, for the callback (a deadlock that stopped the scheduler for good, seen about once in six runs of
    // FullQueueAndBadInputAreRefused).
    [Fact]
    public async Task CancellingQueuedRequestsWhileTheSchedulerDropsThemDoesNotDeadlock()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        // not disposed when deadlocked (its Dispose would wait for the stuck scheduler thread)
        var s = new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { MaxParallel = 1, MaxQueue = 8 });
        var longRun = Greedy with { MaxTokens = 400 };
        for (int i = 0; i < 3000; i++)
        {
            using var cts = new CancellationTokenSource();
            ScheduledGeneration a = s.Submit([5, 6], longRun, cts.Token);
            await a.Updates.WaitToReadAsync(); // a is running, the others wait in the queue
            var queued = new List<ScheduledGeneration>();
            for (int q = 0; q < 4; q++)
                queued.Add(s.Submit([5, 7 + q], longRun, cts.Token));
            Task cancel = Task.Run(cts.Cancel); // the callbacks run on the cancelling thread: a deadlock holds it, not the test
            Assert.True(await Task.WhenAny(cancel, Task.Delay(TimeSpan.FromSeconds(20))) == cancel,
                        $"iteration {i}: cancelling did not return within 20 s (the token's callback and the scheduler deadlocked)");
            foreach (ScheduledGeneration g in queued.Prepend(a))
            {
                Task drain = Task.Run(async () => { await foreach (GenerationUpdate _ in g.ReadAllAsync()) { } });
                Task first = await Task.WhenAny(drain, Task.Delay(TimeSpan.FromSeconds(20)));
                Assert.True(first == drain, $"iteration {i}: a cancelled request did not end within 20 s (scheduler deadlocked)");
                try
                {
                    await drain; // a request the scheduler finished before the cancel reached it ends normally
                }
                catch (OperationCanceledException)
                {
                }
            }
        }
        Assert.Equal(3, (await s.GenerateAsync([5, 9], Greedy with { MaxTokens = 3 })).Tokens.Count);
        AssertNothingLeaked(s);
        s.Dispose();
    }

    // a token cancelled before Submit: its callback runs inside Submit, before the request is queued; the request ends
    // cancelled (counted once) and the scheduler goes on serving
    [Fact]
    public async Task ARequestWhoseTokenIsAlreadyCancelledEndsCancelled()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        using var s = new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { MaxParallel = 2 });
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        ScheduledGeneration g = s.Submit([5, 6], Greedy with { MaxTokens = 50 }, cts.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => { await foreach (GenerationUpdate _ in g.ReadAllAsync()) { } });
        Assert.Equal(3, (await s.GenerateAsync([5, 9], Greedy with { MaxTokens = 3 })).Tokens.Count);
        AssertNothingLeaked(s);
        Assert.Equal(1, s.Stats.Cancelled);
    }

    [Fact]
    public async Task ContextEndStopsWithLengthAndDisposeEndsWaitingRequests()
    {
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf("v3-tiny"));
        using (var short20 = new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { ContextLength = 20 }))
        {
            GenerationResult r = await short20.GenerateAsync([5, 6, 7], Greedy with { MaxTokens = 100 });
            Assert.Equal(FinishReason.Length, r.FinishReason);
            Assert.Equal(20 - 3 + 1, r.Tokens.Count); // the last token is sampled at the context's end, not fed
        }
        var s = new BatchScheduler(new Transformer(w), null, new BatchSchedulerOptions { MaxParallel = 1 });
        ScheduledGeneration running = s.Submit([5, 6], Greedy with { MaxTokens = 10_000 });
        ScheduledGeneration waiting = s.Submit([5, 7], Greedy);
        s.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => { await foreach (GenerationUpdate _ in waiting.ReadAllAsync()) { } });
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => { await foreach (GenerationUpdate _ in running.ReadAllAsync()) { } });
        Assert.Throws<ObjectDisposedException>(() => s.Submit([5]));
    }
}
