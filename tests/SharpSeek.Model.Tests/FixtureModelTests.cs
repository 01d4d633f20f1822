// End-to-end checks against the Hugging Face transformers fixtures (tests/fixtures/hf/*, README there):
// every folder in that format is checked, not a fixed list.
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model;
using SharpSeek.Model.Layers;
using SharpSeek.Tests;

namespace SharpSeek.Model.Tests;

public sealed class FixtureModelTests
{
    public static IEnumerable<object[]> Folders() => Fixtures.HfFolders();

    private static (ModelWeights W, Checkpoint Ref) Open(string name)
    {
        string dir = Fixtures.Hf(name);
        return (WeightLoader.Load(dir), Checkpoint.FromFiles(dir, [Path.Combine(dir, "reference.safetensors")], null));
    }

    private static int[] Ints(Checkpoint r, string name) => r.ReadInt64(name).Select(v => (int)v).ToArray();

    [Theory]
    [MemberData(nameof(Folders))]
    public void Logits_match_reference(string name)
    {
        (ModelWeights w, Checkpoint r) = Open(name);
        using (w)
        using (r)
        {
            int[] ids = Ints(r, "input_ids");
            float[] want = r.ReadFloats("logits", ids.Length, w.Config.VocabSize);
            foreach (AttentionMode mode in new[] { AttentionMode.Naive, AttentionMode.Absorbed })
            {
                float[] got = new Transformer(w).Logits(ids, new ForwardOptions { Attention = mode });
                Numerics.AssertClose(want, got, 1e-3, $"{name} logits ({mode})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Naive_and_absorbed_agree_on_a_long_causal_prompt(string name)
    {
        // 37 tokens: the naive path's query blocks of 8 (four full, one of 5) and position tiles of 8 with a ragged
        // causal edge inside every tile; logits of every position are compared
        // (the reference file plays no part: both sides are ours)
        using ModelWeights w = WeightLoader.Load(Fixtures.Hf(name));
        var rng = new Random(7);
        int[] ids = Enumerable.Range(0, 37).Select(_ => rng.Next(w.Config.VocabSize)).ToArray();
        float[] naive = new Transformer(w).Logits(ids, new ForwardOptions { Attention = AttentionMode.Naive });
        float[] absorbed = new Transformer(w).Logits(ids, new ForwardOptions { Attention = AttentionMode.Absorbed });
        Numerics.AssertClose(absorbed, naive, 1e-3, $"{name} naive vs absorbed logits over 37 tokens");
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Hidden_states_match_reference(string name)
    {
        (ModelWeights w, Checkpoint r) = Open(name);
        using (w)
        using (r)
        {
            int[] ids = Ints(r, "input_ids");
            int T = ids.Length, H = w.Config.HiddenSize, L = w.Config.NumHiddenLayers;
            float[] hs = r.ReadFloats("hidden_states", L + 1, T, H);
            var seen = new float[L + 1][];
            var postnorm = new float[T * H];
            new Transformer(w).Logits(ids, new ForwardOptions { Observer = (l, x) => seen[l + 1] = x.ToArray() }, postnorm);
            // [0] embeddings, [l] after layer l-1 for l < L, [L] after the final norm (reference.json hidden_states_layout)
            for (int l = 0; l < L; l++)
                Numerics.AssertClose(hs.AsSpan(l * T * H, T * H), seen[l], 1e-4, $"{name} hidden_states[{l}]");
            Numerics.AssertClose(hs.AsSpan(L * T * H, T * H), postnorm, 1e-4, $"{name} hidden_states[{L}] (post-norm)");
            Numerics.AssertClose(r.ReadFloats("final_hidden_prenorm", T, H), seen[L], 1e-4, $"{name} final_hidden_prenorm");
            Numerics.AssertClose(r.ReadFloats("final_hidden_postnorm", T, H), postnorm, 1e-4, $"{name} final_hidden_postnorm");
        }
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Greedy_generation_with_cache_matches_reference(string name)
    {
        (ModelWeights w, Checkpoint r) = Open(name);
        using (w)
        using (r)
        {
            int[] prompt = Ints(r, "generate_prompt");
            int[] want = Ints(r, "generate_output");
            int V = w.Config.VocabSize;
            var model = new Transformer(w);
            KvCache cache = model.CreateCache();
            var all = prompt.ToList();
            var decodeLogits = new List<float>();
            var logits = new float[V];
            // prefill the prompt in one chunk, then one token at a time
            TokenSlot[] pre = prompt.Select((tok, i) => new TokenSlot(0, i, tok)).ToArray();
            model.Forward(pre, [cache], [pre.Length - 1], logits);
            var generated = new List<int>();
            for (int step = 0; step < want.Length; step++)
            {
                int next = ArgMax(logits);
                generated.Add(next);
                all.Add(next);
                if (step == want.Length - 1)
                    break;
                model.Forward([new TokenSlot(0, all.Count - 1, next)], [cache], [0], logits);
                decodeLogits.AddRange(logits);
            }
            Assert.Equal(want, generated.ToArray());

            // decode-path logits (positions P..P+22) against generate_logits of one uncached pass
            float[] ref32 = r.ReadFloats("generate_logits", prompt.Length + want.Length, V);
            Numerics.AssertClose(ref32.AsSpan(prompt.Length * V, decodeLogits.Count), decodeLogits.ToArray(), 1e-3, $"{name} cached decode logits");
        }
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Token_by_token_decoding_equals_one_full_pass(string name)
    {
        (ModelWeights w, Checkpoint r) = Open(name);
        using (w)
        using (r)
        {
            int[] ids = Ints(r, "input_ids").Take(24).ToArray();
            int V = w.Config.VocabSize;
            var model = new Transformer(w);
            float[] full = model.Logits(ids);
            foreach (CacheType ct in new[] { CacheType.F32, CacheType.BF16 })
            {
                KvCache cache = model.CreateCache(ct);
                var step = new float[ids.Length * V];
                for (int t = 0; t < ids.Length; t++)
                    model.Forward([new TokenSlot(0, t, ids[t])], [cache], [0], step.AsSpan(t * V, V));
                if (ct == CacheType.F32)
                    Numerics.AssertClose(full, step, 1e-4, $"{name} incremental (F32 cache)");
                else // bf16 keeps 8 significant bits of each latent: about 0.4% per value, through every layer
                    Numerics.AssertRelRms(full, step, 1e-2, $"{name} incremental (BF16 cache)");
                Assert.Equal(ids.Length * (long)w.Config.LatentDim * (ct == CacheType.F32 ? 4 : 2) * w.Config.NumHiddenLayers, cache.Bytes);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Batch_of_independent_sequences_matches_separate_runs(string name)
    {
        (ModelWeights w, Checkpoint r) = Open(name);
        using (w)
        using (r)
        {
            int[] ids = Ints(r, "input_ids");
            int V = w.Config.VocabSize;
            int[] a = ids.Take(10).ToArray(), b = ids.Skip(10).Take(7).ToArray(), c = ids.Skip(20).Take(13).ToArray();
            var model = new Transformer(w);
            float[] ra = model.Logits(a), rb = model.Logits(b), rc = model.Logits(c);
            // interleave the three prompts in one batch, then decode one token of each in a second batch
            var slots = new List<TokenSlot>();
            int[][] seqs = [a, b, c];
            for (int t = 0; t < 13; t++)
            {
                for (int s = 0; s < 3; s++)
                {
                    if (t < seqs[s].Length - 1)
                        slots.Add(new TokenSlot(s, t, seqs[s][t]));
                }
            }
            KvCache[] caches = [model.CreateCache(), model.CreateCache(), model.CreateCache()];
            int[] rows = Enumerable.Range(0, slots.Count).ToArray();
            var logits = new float[slots.Count * V];
            model.Forward(slots.ToArray(), caches, rows, logits);
            for (int i = 0; i < slots.Count; i++)
            {
                float[] want = slots[i].Sequence switch { 0 => ra, 1 => rb, _ => rc };
                Numerics.AssertClose(want.AsSpan(slots[i].Position * V, V), logits.AsSpan(i * V, V), 1e-4, $"{name} batched prefill slot {i}");
            }
            TokenSlot[] last = seqs.Select((sq, s) => new TokenSlot(s, sq.Length - 1, sq[^1])).ToArray();
            var dec = new float[3 * V];
            model.Forward(last, caches, [0, 1, 2], dec);
            for (int s = 0; s < 3; s++)
            {
                float[] want = s switch { 0 => ra, 1 => rb, _ => rc };
                Numerics.AssertClose(want.AsSpan((seqs[s].Length - 1) * V, V), dec.AsSpan(s * V, V), 1e-4, $"{name} batched decode seq {s}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Mtp_logits_match_reference_postnorm(string name)
    {
        (ModelWeights w, Checkpoint r) = Open(name);
        using (w)
        using (r)
        {
            if (w.Config.NumNextnPredictLayers == 0)
            {
                Assert.False(r.Contains("mtp_logits_postnorm"), "fixture has MTP logits but config has no MTP layer");
                return;
            }
            int[] ids = Ints(r, "input_ids");
            int T = ids.Length, H = w.Config.HiddenSize, V = w.Config.VocabSize;
            var model = new Transformer(w);
            var hidden = new float[T * H];
            model.Logits(ids, null, hidden);
            // row i pairs the main hidden state at i with token i+1, at RoPE position i
            TokenSlot[] slots = Enumerable.Range(0, T - 1).Select(i => new TokenSlot(0, i, ids[i + 1])).ToArray();
            var logits = new float[(T - 1) * V];
            KvCache cache = model.CreateCache();
            model.ForwardMtp(0, slots, [cache], hidden, logits);
            float[] want = r.ReadFloats("mtp_logits_postnorm", T - 1, V);
            Numerics.AssertClose(want, logits, 1e-3, $"{name} MTP logits (postnorm)");
            float[] pre = r.ReadFloats("mtp_logits_prenorm", T - 1, V);
            Assert.True(Numerics.MaxAbsDiff(pre, logits) > 1e-2, "MTP logits should differ from the prenorm convention");
        }
    }

    internal static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++)
        {
            if (v[i] > v[best])
                best = i;
        }
        return best;
    }
}
