// DeepSeek-V4 configuration: config.json and deepseek4 GGUF metadata read to the same config, the released V4-Flash
// config's parameter counts against the published figures, cache sizes, and errors that name the field.
using SharpSeek.Formats.Gguf;
using SharpSeek.Model.V4;
using SharpSeek.Tests;
using Xunit;

namespace SharpSeek.Model.Tests;

public sealed class V4ConfigTests
{
    private static readonly string FlashConfig = Path.Combine(Fixtures.Root, "configs", "deepseek-v4-flash.json");
    private static readonly string TinyDir = Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4");

    [Fact]
    public void V4_flash_has_284B_parameters_and_13B_active()
    {
        V4Config c = V4Config.Load(FlashConfig);
        V4Stats s = V4Stats.Compute(c);
        Assert.Equal(43, c.NumHiddenLayers);
        Assert.Equal((2, 21, 20), (s.WindowLayers, s.CsaLayers, s.HcaLayers));
        Assert.InRange(s.ParametersTotal / 284e9, 0.99, 1.01);
        Assert.InRange(s.ParametersActive / 13e9, 0.96, 1.04);
        Assert.True(s.MtpParameters > 0);
    }

    [Fact]
    public void V4_flash_caches_a_tenth_of_V3s_latent_per_token_at_1M()
    {
        V4Config c = V4Config.Load(FlashConfig);
        double perToken = V4Stats.CacheBytesPerToken(c, 1 << 20);
        // 21 ratio-4 layers: (512 + 128) values per 4 tokens; 20 ratio-128 layers: 512 per 128 tokens; bf16
        double rows = 21 * (512 + 128) * 2 / 4.0 + 20 * 512 * 2 / 128.0;
        Assert.InRange(perToken, rows, rows * 1.01); // plus the windows and compressor states, negligible at 1M
        Assert.InRange(61.0 * 576 * 2 / perToken, 9, 11);
    }

    [Fact]
    public void Config_json_and_gguf_metadata_of_the_fixture_agree()
    {
        V4Config json = V4Config.Load(TinyDir);
        using GgufFile f = GgufFile.Open(Path.Combine(TinyDir, "model.gguf"));
        V4Config gguf = V4Gguf.ReadConfig(f);
        Assert.Equal(json.CompressRatios, gguf.CompressRatios);
        Assert.Equal(json.SwigluLimitRouted, gguf.SwigluLimitRouted);
        Assert.Equal(json.SwigluLimitShared, gguf.SwigluLimitShared);
        Assert.Equal((float)json.RmsNormEps, (float)gguf.RmsNormEps); // GGUF stores float32
        Assert.Equal((float)json.HcEps, (float)gguf.HcEps);
        Assert.Equal(json with { CompressRatios = [], SwigluLimitRouted = [], SwigluLimitShared = [], EosTokenIds = [], BosTokenId = null, MaxPositionEmbeddings = 0, HcEps = 0, RmsNormEps = 0 },
                     gguf with { CompressRatios = [], SwigluLimitRouted = [], SwigluLimitShared = [], EosTokenIds = [], BosTokenId = null, MaxPositionEmbeddings = 0, HcEps = 0, RmsNormEps = 0 });
    }

    [Theory]
    [InlineData("\"compress_ratios\": [0, 0, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 0]",
                "\"compress_ratios\": [0, 0, 4, 64, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 128, 4, 0]",
                "compress_ratios")]
    [InlineData("\"o_groups\": 8", "\"o_groups\": 7", "o_groups")]
    [InlineData("\"scoring_func\": \"sqrtsoftplus\"", "\"scoring_func\": \"sigmoid\"", "scoring_func")]
    [InlineData("\"hc_mult\": 4", "\"hc_mult\": 0", "hc_mult")]
    [InlineData("\"num_hash_layers\": 3", "\"num_hash_layers\": 44", "num_hash_layers")]
    public void Bad_fields_are_named(string from, string to, string field)
    {
        string json = File.ReadAllText(FlashConfig);
        Assert.Contains(from, json);
        var e = Assert.Throws<InvalidDataException>(() => V4Config.Parse(json.Replace(from, to), "flash.json"));
        Assert.Contains("flash.json", e.Message);
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void ModelConfig_points_v4_configs_to_V4Config()
    {
        var e = Assert.Throws<InvalidDataException>(() => ModelConfig.Load(FlashConfig));
        Assert.Contains("V4Config", e.Message);
    }
}

/// <summary>The reference's FP8/FP4 round trips (kernel.py act_quant / fp4_act_quant with inplace=True) and their use.</summary>
public sealed class V4QuantizationTests
{
    [Theory]
    [InlineData(0.25f, 0f)] // ties to the even code
    [InlineData(0.75f, 1f)]
    [InlineData(1.25f, 1f)]
    [InlineData(1.75f, 2f)]
    [InlineData(2.5f, 2f)]
    [InlineData(3.5f, 4f)]
    [InlineData(5f, 4f)]
    [InlineData(5.1f, 6f)]
    [InlineData(-2.6f, -3f)]
    [InlineData(0.3f, 0.5f)]
    public void E2M1_rounds_to_nearest_even(float v, float want) => Assert.Equal(want, V4Quantization.RoundE2M1(v));

    [Fact]
    public void Fp4_blocks_use_a_power_of_two_scale_and_the_e2m1_grid()
    {
        var rng = new Random(2);
        float[] x = Enumerable.Range(0, 64).Select(_ => (float)(rng.NextDouble() * 10 - 5)).ToArray();
        float[] y = (float[])x.Clone();
        V4Quantization.Fp4RoundTrip(y);
        for (int b = 0; b < 2; b++)
        {
            float amax = x.Skip(b * 32).Take(32).Max(MathF.Abs);
            float s = MathF.Pow(2, MathF.Ceiling(MathF.Log2(amax / 6)));
            for (int i = b * 32; i < b * 32 + 32; i++)
            {
                float q = y[i] / s;
                Assert.Contains(MathF.Abs(q), new[] { 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f });
                Assert.True(MathF.Abs(x[i] - y[i]) <= s + 1e-6f, $"{x[i]} -> {y[i]} (scale {s})");
            }
        }
    }

    [Fact]
    public void Fp8_round_trip_matches_the_v32_indexer_quantizer()
    {
        var rng = new Random(3);
        float[] x = Enumerable.Range(0, 128).Select(_ => (float)(rng.NextDouble() * 3 - 1)).ToArray();
        float[] a = (float[])x.Clone();
        V4Quantization.Fp8RoundTrip(a, 128);
        var b = new float[128];
        Tensors.IndexerKernels.QuantizeDequantize(x, b);
        Assert.Equal(b, a);
    }

    [Fact]
    public void Reference_precision_moves_the_logits_a_little_and_mostly_agrees_across_chunks()
    {
        string dir = Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4");
        using V4Weights w = V4Gguf.Load(Path.Combine(dir, "model.gguf"));
        int[] ids = File.ReadAllText(Path.Combine(dir, "ids.txt")).Trim().Split(',').Select(int.Parse).ToArray();
        var reference = new V4Transformer(w, precision: V4Precision.Reference);
        float[] f32 = new V4Transformer(w).Logits(ids), r = reference.Logits(ids);
        int V = w.Config.VocabSize, T = ids.Length;
        // FP8 rows and FP4 indexer operands move the numbers (and flip some near-tied top-k choices), not the model
        double median = Enumerable.Range(0, T).Select(t => Numerics.MaxAbsDiff(f32.AsSpan(t * V, V), r.AsSpan(t * V, V))).Order().ElementAt(T / 2);
        int same = Enumerable.Range(0, T).Count(t => Numerics.ArgMax(f32.AsSpan(t * V, V)) == Numerics.ArgMax(r.AsSpan(t * V, V)));
        Assert.InRange(median, 1e-4, 0.3);
        Assert.True(same >= T * 8 / 10, $"argmax agrees at {same} of {T}");
        V4Cache cache = reference.CreateCache();
        var chunked = new float[T * V];
        for (int s = 0; s < T; s += 41)
        {
            int n = Math.Min(41, T - s);
            reference.Forward(ids.AsSpan(s, n), cache, Enumerable.Range(0, n).ToArray(), chunked.AsSpan(s * V, n * V));
        }
        // rounding to FP4 turns 1e-7 differences of summation order (one-shot vs chunked products) into whole FP4 steps at
        // rare values on a boundary: the two agree at most positions, not all
        int close = Enumerable.Range(0, T).Count(t => Numerics.MaxAbsDiff(r.AsSpan(t * V, V), chunked.AsSpan(t * V, V)) < 1e-3);
        Assert.True(close >= T * 8 / 10, $"chunked and one-shot prefill agree within 1e-3 at {close} of {T} positions");
    }
}

public sealed class V4AttentionTilesTests
{
    [Fact]
    public void Tiled_heads_compute_what_the_per_head_loops_do()
    {
        // 16 heads of 64 (two 8-head groups through the tiled kernels), window 16, compression 0/4/128, 300 tokens
        V4Config c = V4Config.Load(Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4")) with { NumAttentionHeads = 16, OGroups = 4 };
        using V4Weights w = V4Synthetic.Create(c, seed: 7);
        int[] ids = Enumerable.Range(0, 300).Select(i => (i * 37 + 11) % c.VocabSize).ToArray();
        float[] tiled = new V4Transformer(w).Logits(ids);
        float[] loops = new V4Transformer(w) { HeadTiles = false }.Logits(ids);
        Numerics.AssertClose(loops, tiled, 1e-3, "tiled 8-head attention vs per-head loops");
        // and in decode, one token at a time after a prompt
        var model = new V4Transformer(w);
        V4Cache cache = model.CreateCache();
        var logits = new float[c.VocabSize];
        model.Forward(ids.AsSpan(0, 200), cache, [], []);
        for (int t = 200; t < 300; t++)
            model.Forward(ids.AsSpan(t, 1), cache, [0], logits);
        Numerics.AssertClose(loops.AsSpan(299 * c.VocabSize, c.VocabSize), logits, 1e-3, "tiled decode vs per-head prefill");
    }
}

public sealed class V4ParallelExpertsTests
{
    [Fact]
    public void Experts_in_parallel_on_two_threads_compute_what_one_thread_does()
    {
        // 6 of 16 experts per token: a decode step has 6 chosen experts, enough to run them in parallel on 2 workers
        V4Config c = V4Config.Load(Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4")) with { NRoutedExperts = 16, NumExpertsPerTok = 6 };
        using V4Weights w = V4Synthetic.Create(c, seed: 9);
        int[] ids = Enumerable.Range(0, 160).Select(i => (i * 53 + 7) % c.VocabSize).ToArray();
        float[] one = new V4Transformer(w).Logits(ids);
        using var be = new Tensors.ThreadedBackend(2);
        var model = new V4Transformer(w, be);
        V4Cache cache = model.CreateCache();
        var logits = new float[ids.Length * c.VocabSize];
        model.Forward(ids.AsSpan(0, 100), cache, Enumerable.Range(0, 100).ToArray(), logits);
        for (int t = 100; t < ids.Length; t++)
            model.Forward(ids.AsSpan(t, 1), cache, [0], logits.AsSpan(t * c.VocabSize, c.VocabSize));
        Numerics.AssertClose(one, logits, 1e-4, "two threads (parallel experts in decode) vs one");
    }
}
