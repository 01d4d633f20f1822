// DeepSeek-V4 against llama.cpp (de3ff81, deepseek4) as the oracle: tests/fixtures/llama-cpp/deepseek4 holds a random
// V4 model written by gguf-py (make.py there: layers with compression 0, 4, 128, 4, 0, two hash-routed layers, a
// window of 16, an indexer keeping 8 of up to 75 compressed rows, one MTP block) and llama.cpp's logits for 300 ids:
// a 268-token prompt and llama.cpp's greedy continuation of 32 tokens.
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model.V4;
using SharpSeek.Tensors;
using SharpSeek.Tests;
using Xunit;

namespace SharpSeek.Model.Tests;

public sealed class DeepSeek4OracleTests
{
    private static readonly string Dir = Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4");
    private static readonly string Gguf = Path.Combine(Dir, "model.gguf");

    private static int[] Ids() => File.ReadAllText(Path.Combine(Dir, "ids.txt")).Trim().Split(',').Select(int.Parse).ToArray();

    private static int PromptLength() => File.Exists(Path.Combine(Dir, "prompt.txt"))
        ? File.ReadAllText(Path.Combine(Dir, "prompt.txt")).Trim().Split(',').Length
        : 268;

    private static float[] Reference(int T, int V)
    {
        using Checkpoint r = Checkpoint.FromFiles(Dir, [Path.Combine(Dir, "reference.safetensors")], null);
        return r.ReadFloats("logits", T, V);
    }

    [Fact]
    public void Prefill_logits_match_llama_cpp_at_every_position()
    {
        using V4Weights w = V4Gguf.Load(Gguf);
        int[] ids = Ids();
        float[] want = Reference(ids.Length, w.Config.VocabSize);
        Numerics.AssertClose(want, new V4Transformer(w).Logits(ids), 1e-3, "deepseek4 prefill vs llama.cpp");
    }

    [Fact]
    public void Token_by_token_decode_on_two_threads_matches_llama_cpp_and_generates_the_same()
    {
        using V4Weights w = V4Gguf.Load(Gguf);
        using var be = new ThreadedBackend(2);
        var model = new V4Transformer(w, be);
        int[] ids = Ids();
        int V = w.Config.VocabSize, prompt = PromptLength();
        float[] want = Reference(ids.Length, V);
        V4Cache cache = model.CreateCache();
        var logits = new float[ids.Length * V];
        model.Forward(ids.AsSpan(0, prompt), cache, Enumerable.Range(0, prompt).ToArray(), logits);
        var generated = new List<int>();
        for (int t = prompt; t < ids.Length; t++)
        {
            generated.Add(ArgMax(logits.AsSpan((t - 1) * V, V)));
            model.Forward(ids.AsSpan(t, 1), cache, [0], logits.AsSpan(t * V, V));
        }
        Numerics.AssertClose(want, logits, 1e-3, "deepseek4 cached decode vs llama.cpp");
        Assert.Equal(ids.Skip(prompt).ToArray(), generated.ToArray());
    }

    [Theory]
    [InlineData(37)]
    [InlineData(5)]
    [InlineData(128)]
    public void Chunked_prefill_continues_windows_and_compressor_blocks_across_chunks(int chunk)
    {
        using V4Weights w = V4Gguf.Load(Gguf);
        var model = new V4Transformer(w);
        int[] ids = Ids();
        int V = w.Config.VocabSize;
        float[] want = Reference(ids.Length, V);
        V4Cache cache = model.CreateCache();
        var logits = new float[ids.Length * V];
        for (int s = 0; s < ids.Length; s += chunk)
        {
            int n = Math.Min(chunk, ids.Length - s);
            model.Forward(ids.AsSpan(s, n), cache, Enumerable.Range(0, n).ToArray(), logits.AsSpan(s * V, n * V));
        }
        Assert.Equal(ids.Length, cache.Length);
        Numerics.AssertClose(want, logits, 1e-3, $"deepseek4 prefill in chunks of {chunk} vs llama.cpp");
    }

    [Fact]
    public void A_cloned_cache_continues_like_the_original()
    {
        using V4Weights w = V4Gguf.Load(Gguf);
        var model = new V4Transformer(w);
        int[] ids = Ids();
        int V = w.Config.VocabSize, prompt = 150; // inside a ratio-4 window and a ratio-128 block
        V4Cache a = model.CreateCache();
        var la = new float[V];
        var lb = new float[V];
        model.Forward(ids.AsSpan(0, prompt), a, [prompt - 1], la);
        V4Cache b = a.Clone();
        for (int t = prompt; t < prompt + 12; t++)
        {
            model.Forward(ids.AsSpan(t, 1), a, [0], la);
            model.Forward(ids.AsSpan(t, 1), b, [0], lb);
            Assert.Equal(la, lb);
        }
    }

    [Fact]
    public void Mtp_prefill_matches_row_by_row_and_depends_on_the_next_token()
    {
        using V4Weights w = V4Gguf.Load(Gguf);
        Assert.Single(w.Mtp);
        var model = new V4Transformer(w);
        V4Config c = w.Config;
        int[] ids = Ids();
        int T = 60, V = c.VocabSize, S = c.HcMult * c.HiddenSize;
        var streams = new float[T * S];
        V4Cache cache = model.CreateCache();
        model.Forward(ids.AsSpan(0, T), cache, [], [], streams);
        int[] next = ids.AsSpan(1, T).ToArray();
        var all = new float[T * V];
        model.ForwardMtp(0, streams, next, cache, Enumerable.Range(0, T).ToArray(), all);
        Assert.Equal(T, cache.MtpLength);

        V4Cache rowCache = model.CreateCache();
        var row = new float[T * V];
        for (int t = 0; t < T; t++)
            model.ForwardMtp(0, streams.AsSpan(t * S, S), next.AsSpan(t, 1), rowCache, [0], row.AsSpan(t * V, V));
        Numerics.AssertClose(all, row, 1e-4, "MTP in one chunk vs row by row");
        Assert.All(all, v => Assert.True(float.IsFinite(v)));

        var other = new float[V];
        next[T - 1] = (next[T - 1] + 1) % V;
        model.ForwardMtp(0, streams.AsSpan((T - 1) * S, S), next.AsSpan(T - 1, 1), model.CreateCache(), [0], other);
        Assert.True(Numerics.MaxAbsDiff(all.AsSpan((T - 1) * V, V), other) > 1e-3, "the MTP prediction must depend on the next token");
    }

    [Fact]
    public void Bad_input_is_rejected_with_a_clear_error()
    {
        using V4Weights w = V4Gguf.Load(Gguf);
        var model = new V4Transformer(w);
        var logits = new float[w.Config.VocabSize];
        Assert.Contains("vocabulary", Assert.Throws<ArgumentException>(() => model.Forward([w.Config.VocabSize], model.CreateCache(), [0], logits)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward([5, 6], model.CreateCache(), [2], logits));
        Assert.Contains("logits", Assert.Throws<ArgumentException>(() => model.Forward([5, 6], model.CreateCache(), [0, 1], logits)).Message);
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++)
        {
            if (x[i] > x[best])
                best = i;
        }
        return best;
    }
}

