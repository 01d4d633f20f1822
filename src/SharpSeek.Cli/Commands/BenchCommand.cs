// sharpseek bench: prefill/decode throughput against the bandwidth and arithmetic rooflines measured in the same run.
using System.CommandLine;
using System.Text.Json;
using SharpSeek.Inference;
using SharpSeek.Model;

namespace SharpSeek.Cli;

internal static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory", Required = true };
        var dtype = CliOptions.Dtype();
        var indexer = CliOptions.IndexerPrecision();
        var prompt = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 512 };
        var gen = new Option<int>("--gen-tokens") { DefaultValueFactory = _ => 128 };
        var threads = CliOptions.Threads();
        var runs = new Option<int>("--runs") { DefaultValueFactory = _ => 3 };
        var cache = CliOptions.CacheType("bf16");
        var chunk = new Option<int>("--prefill-chunk") { Description = "Tokens per prefill call (0 = all)" };
        var compare = new Option<int>("--compare-context") { Description = "Also decode at this context length, alternating with the prompt's, in the same process (long-context ratio)" };
        var batch = new Option<int>("--batch") { Description = "Also decode this many sequences together (one token of each per step) against one alone, in alternating rounds" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var skip = new Option<bool>("--skip-roofline") { Description = "Skip the bandwidth, peak and product-alone measurements (their keys are 0)" };
        var cmd = new Command("bench", "Prefill/decode throughput, weight bytes per token and the measured rooflines")
        { model, dtype, indexer, prompt, gen, threads, runs, cache, chunk, compare, batch, json, skip };
        cmd.SetAction(pr =>
        {
            if (V4Inspect.IsV4(pr.GetValue(model)!))
                return V4BenchView(pr.GetValue(model)!, pr.GetValue(prompt), pr.GetValue(gen), pr.GetValue(runs), pr.GetValue(threads), pr.GetValue(indexer), pr.GetValue(json));
            var options = new ModelSessionOptions
            {
                Dtype = CliOptions.ParseDtype(pr.GetValue(dtype)),
                IndexerPrecision = CliOptions.ParseIndexerPrecision(pr.GetValue(indexer)),
                Threads = CliOptions.PositiveThreads(pr.GetValue(threads)),
                Tokenizer = TokenizerLoad.None,
            };
            foreach ((Option<int> o, int v) in new[] { (prompt, pr.GetValue(prompt)), (gen, pr.GetValue(gen)), (runs, pr.GetValue(runs)) })
            {
                if (v < 1)
                    throw new UserInputException($"{o.Name} must be >= 1, got {v}");
            }
            int batchN = pr.GetValue(batch);
            if (batchN < 0 || batchN > 1024)
                throw new UserInputException($"--batch must be between 0 and 1024, got {batchN}");
            CacheType cacheType = CliOptions.ParseCacheType(pr.GetValue(cache));
            using ModelSession session = CliOptions.OpenSession(pr.GetValue(model)!, options);
            Transformer tr = session.CreateTransformer();
            var opts = new BenchOptions
            {
                PromptTokens = pr.GetValue(prompt),
                GenTokens = pr.GetValue(gen),
                Runs = pr.GetValue(runs),
                Cache = cacheType,
                PrefillChunk = pr.GetValue(chunk),
                CompareContext = pr.GetValue(compare),
                SkipRoofline = pr.GetValue(skip),
                BatchSequences = batchN,
            };
            BenchResult r = ModelBench.Run(tr, opts, m => Console.Error.WriteLine(m));
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(r, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
                return 0;
            }
            Console.WriteLine($"dtype {r.Dtype}, threads {r.Threads}, prompt {r.PromptTokens}, generated {r.GenTokens}");
            Console.WriteLine($"prefill   {r.PrefillTokensPerS,10:0.0} tok/s   {r.PrefillGflops:0.0} GFLOP/s = {r.PrefillPeakFraction:P0} of {r.PeakGflops:0} G {r.PeakKind}");
            Console.WriteLine($"matmuls   {r.MatmulGflops,10:0.0} GFLOP/s = {r.MatmulPeakFraction:P0} of the peak, {r.MatmulFmaPeakFraction:P0} of {r.FmaPeakGflops:0} G fp32 FMA FLOP/s (prefill matrix products alone)");
            Console.WriteLine($"decode    {r.DecodeTokensPerS,10:0.00} tok/s   {r.WeightBytesPerToken / 1e6:0.0} MB weights/token = {r.RooflineFraction:P0} of {r.ReadBandwidthBytesPerS / 1e9:0.0} GB/s");
            if (r.RooflineFractionPaired > 0)
                Console.WriteLine($"          paired rounds (decode between two bandwidth passes): median {r.RooflineFractionPaired:P0} of the roofline " +
                                  $"[{string.Join(", ", r.RooflineFractionPairedRounds.Select(f => f.ToString("P0")))}] at " +
                                  $"{r.ReadBandwidthPairedRounds.Min() / 1e9:0.0}-{r.ReadBandwidthPairedRounds.Max() / 1e9:0.0} GB/s");
            if (r.DecodeMatvecBytesPerS > 0)
                Console.WriteLine($"          the decode matrix-vector products alone stream {r.DecodeMatvecBytesPerS / 1e9:0.0} GB/s = {r.DecodeMatvecFraction:P0} of it; {r.DecodeOtherFraction:P0} of a decode step is the rest");
            if (r.CompareContextTokens > 0)
                Console.WriteLine($"context   {r.DecodeTokensPerSShortContext,10:0.00} tok/s at {r.CompareContextTokens} tokens, {r.DecodeTokensPerSLongContext:0.00} at {r.PromptTokens}: time per token {r.LongContextTimeRatio:0.00}x (alternating rounds)");
            if (r.BatchSequences > 0)
                Console.WriteLine($"batch     {r.BatchDecodeTokensPerS,10:0.00} tok/s   {r.BatchSequences} sequences decoding together, {r.BatchSingleDecodeTokensPerS:0.00} tok/s alone: {r.BatchSpeedup:0.00}x (alternating rounds)");
            Console.WriteLine($"TTFT      {r.TtftMs,10:0.0} ms     peak RSS {r.PeakRssBytes / 1e6:0} MB, KV cache {r.KvCacheBytes / 1e3:0.0} kB");
            return 0;
        });
        return cmd;
    }

    // DeepSeek-V4 (deepseek4 GGUF): prefill and decode throughput through V4Transformer
    private static int V4BenchView(string path, int prompt, int gen, int runs, int threads, string? precision, bool json)
    {
        if (prompt < 1 || gen < 1 || runs < 1)
            throw new UserInputException("--prompt-tokens, --gen-tokens and --runs must be >= 1");
        using V4Model m = V4Model.Open(path, threads, precision);
        Model.V4.V4BenchResult r = Model.V4.V4Bench.Run(m.Transformer, prompt, gen, runs, m.Backend.Workers);
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(r, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            return 0;
        }
        Console.WriteLine($"deepseek_v4, {m.Transformer.Precision} precision, threads {r.Threads}, prompt {r.PromptTokens}, generated {r.GenTokens}, runs {r.Runs}");
        Console.WriteLine($"prefill   {r.PrefillTokensPerS,10:0.0} tok/s");
        Console.WriteLine($"decode    {r.DecodeTokensPerS,10:0.00} tok/s   {r.WeightBytesPerToken / 1e6:0.0} MB weights/token ({r.DecodeTokensPerS * r.WeightBytesPerToken / 1e9:0.0} GB/s)");
        Console.WriteLine($"cache     {r.CacheBytes / 1e3:0.0} kB after {r.PromptTokens + r.GenTokens} tokens");
        return 0;
    }
}
