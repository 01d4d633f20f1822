// sharpseek inspect on a DeepSeek-V4 config.json or deepseek4 GGUF: layer kinds, parameters (total, active, MTP) and
// what the cache holds per token at a context length, next to DeepSeek-V3's MLA latent cache.
using System.Globalization;
using System.Text.Json;
using SharpSeek.Formats.Gguf;
using SharpSeek.Model.Gguf;
using SharpSeek.Model.V4;
using SharpSeek.Tokenizer;

namespace SharpSeek.Cli;

internal static class V4Inspect
{
    /// <summary>DeepSeek-V3's MLA cache per token (61 layers x (kv_lora_rank 512 + rope 64) values, bf16).</summary>
    public const long V3CacheBytesPerToken = 61L * (512 + 64) * 2;

    public static bool IsV4(string path) =>
        GgufModel.IsGgufPath(path) ? File.Exists(path) && V4Gguf.IsV4File(path) : V4Config.IsV4ConfigFile(path);

    public static V4Config Load(string path)
    {
        if (!GgufModel.IsGgufPath(path))
            return V4Config.Load(path);
        using GgufFile f = GgufFile.Open(path);
        return V4Gguf.ReadConfig(f);
    }

    public static int Print(string path, int context, bool json)
    {
        if (context <= 0)
            throw new UserInputException($"--context must be positive, got {context}");
        V4Config c = Load(path);
        V4Stats s = V4Stats.Compute(c);
        const long Million = 1 << 20;
        double atCtx = V4Stats.CacheBytesPerToken(c, context), atMillion = V4Stats.CacheBytesPerToken(c, Million);
        long mlaSameDepth = (long)c.NumHiddenLayers * (512 + 64) * 2;
        var inv = CultureInfo.InvariantCulture;
        if (json)
        {
            var o = new Dictionary<string, object?>
            {
                ["model_type"] = V4Config.ModelType,
                ["layers"] = c.NumHiddenLayers,
                ["window_layers"] = s.WindowLayers,
                ["csa_layers"] = s.CsaLayers,
                ["hca_layers"] = s.HcaLayers,
                ["hash_layers"] = c.NumHashLayers,
                ["mtp_layers"] = c.NumNextnPredictLayers,
                ["hidden_size"] = c.HiddenSize,
                ["heads"] = c.NumAttentionHeads,
                ["head_dim"] = c.HeadDim,
                ["hc_mult"] = c.HcMult,
                ["routed_experts"] = c.NRoutedExperts,
                ["experts_per_token"] = c.NumExpertsPerTok,
                ["parameters_total"] = s.ParametersTotal,
                ["parameters_active"] = s.ParametersActive,
                ["embedding_parameters"] = s.EmbeddingParameters,
                ["routed_expert_parameters"] = s.RoutedExpertParameters,
                ["mtp_parameters"] = s.MtpParameters,
                ["context"] = context,
                ["cache_bytes_per_token"] = atCtx,
                ["cache_bytes_per_token_at_1m"] = atMillion,
                ["v3_cache_bytes_per_token"] = V3CacheBytesPerToken,
                ["mla_same_depth_cache_bytes_per_token"] = mlaSameDepth,
            };
            Console.WriteLine(JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        string B(double v) => v >= 1e9 ? (v / 1e9).ToString("0.00", inv) + "B" : v >= 1e6 ? (v / 1e6).ToString("0.00", inv) + "M" : v.ToString("N0", inv);
        Console.WriteLine($"model_type         {V4Config.ModelType}");
        Console.WriteLine($"layers             {c.NumHiddenLayers}: {s.WindowLayers} sliding-window only, {s.CsaLayers} compressed sparse (ratio 4, indexer top {c.IndexTopK}), {s.HcaLayers} heavily compressed (ratio 128); {c.NumHashLayers} hash-routed; + {c.NumNextnPredictLayers} MTP");
        Console.WriteLine($"hidden / heads     {c.HiddenSize} / {c.NumAttentionHeads} x {c.HeadDim} (one K=V head, rope {c.RopeHeadDim}), window {c.SlidingWindow}, o_groups {c.OGroups} x {c.OLoraRank}");
        Console.WriteLine($"hyper-connections  {c.HcMult} streams, {c.HcSinkhornIters} Sinkhorn iterations");
        Console.WriteLine($"MoE                {c.NRoutedExperts} routed (top {c.NumExpertsPerTok}) + {c.NSharedExperts} shared, sqrtsoftplus, scale {c.RoutedScalingFactor.ToString(inv)}");
        Console.WriteLine($"parameters         {s.ParametersTotal.ToString("N0", inv)} total ({B(s.ParametersTotal)}), {s.ParametersActive.ToString("N0", inv)} active per token ({B(s.ParametersActive)}; embedding table not counted)");
        Console.WriteLine($"MTP parameters     {s.MtpParameters.ToString("N0", inv)} ({B(s.MtpParameters)})");
        Console.WriteLine($"cache / token      {atCtx.ToString("N0", inv)} bytes at {context.ToString("N0", inv)} tokens, {atMillion.ToString("N0", inv)} at 1M (bf16 rows); "
                          + $"DeepSeek-V3's MLA: {V3CacheBytesPerToken.ToString("N0", inv)} ({(V3CacheBytesPerToken / atMillion).ToString("0.0", inv)}x more at 1M)");
        return 0;
    }
}

/// <summary>A DeepSeek-V4 model opened for a verb: its weights, a backend of the given threads, the transformer.</summary>
internal sealed class V4Model : IDisposable
{
    private V4Model(V4Weights weights, BpeTokenizer? tokenizer, SharpSeek.Tensors.ThreadedBackend backend, V4Precision precision)
    {
        Weights = weights;
        Tokenizer = tokenizer;
        Backend = backend;
        Transformer = new V4Transformer(weights, backend, precision);
    }

    public V4Weights Weights { get; }
    /// <summary>The model's tokenizer (the GGUF file's, or tokenizer.json of a checkpoint directory), or null.</summary>
    public BpeTokenizer? Tokenizer { get; }
    public SharpSeek.Tensors.ThreadedBackend Backend { get; }
    public V4Transformer Transformer { get; }

    /// <summary>--indexer-precision for V4: fp8 (the default, as for V3.2) runs the reference's FP8/FP4 round trips, f32 computes as llama.cpp.</summary>
    public static V4Precision Precision(SharpSeek.Model.IndexerPrecision? p) =>
        p == SharpSeek.Model.IndexerPrecision.F32 ? V4Precision.F32 : V4Precision.Reference;

    /// <summary>Loads <paramref name="path"/> (deepseek4 GGUF or released checkpoint) with <paramref name="threads"/> threads and --indexer-precision <paramref name="precision"/>.</summary>
    public static V4Model Open(string path, int threads, string? precision)
    {
        V4Precision p = Precision(CliOptions.ParseIndexerPrecision(precision));
        int n = CliOptions.PositiveThreads(threads);
        V4Weights w;
        BpeTokenizer? tokenizer;
        if (GgufModel.IsGgufPath(path))
        {
            // one parse of the file for the tokenizer and the weights (the weights keep the mapping)
            GgufFile f = GgufFile.Open(path);
            try
            {
                tokenizer = GgufTokenizer.Load(f);
                w = V4Gguf.Load(f, V4Gguf.ReadConfig(f), f);
            }
            catch
            {
                f.Dispose();
                throw;
            }
        }
        else
        {
            w = V4Checkpoint.Load(path);
            tokenizer = File.Exists(Path.Combine(path, "tokenizer.json")) ? BpeTokenizer.LoadFromDirectory(path) : null;
        }
        try
        {
            return new V4Model(w, tokenizer, new SharpSeek.Tensors.ThreadedBackend(n), p);
        }
        catch
        {
            w.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Backend.Dispose();
        Weights.Dispose();
    }
}
