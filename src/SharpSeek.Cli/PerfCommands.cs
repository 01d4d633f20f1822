// Measurement verbs: synth (random-weight checkpoints of any DeepSeek shape) and bench (prefill/decode
// throughput against the bandwidth and arithmetic rooflines measured in the same run).
using System.CommandLine;
using System.Text.Json;
using SharpSeek.Model;
using SharpSeek.Tensors;

namespace SharpSeek.Cli;

internal static class PerfCommands
{
    public static IEnumerable<Command> Create() => [Synth(), Bench()];

    private static Command Synth()
    {
        var config = new Option<string>("--config") { Description = "config.json describing the shape", Required = true };
        var output = new Option<string>("--out") { Description = "Output directory", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 1 };
        var cmd = new Command("synth", "Write a random-weight checkpoint (bf16, Hugging Face layout) of any DeepSeek shape") { config, output, seed };
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            ModelConfig c = ModelConfig.Load(pr.GetValue(config)!);
            ModelStats s = ModelStats.Compute(c);
            Console.Error.WriteLine($"writing {s.ParametersTotal + s.MtpParameters:N0} parameters to {pr.GetValue(output)}");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            SyntheticModel.Write(c, pr.GetValue(output)!, pr.GetValue(seed));
            Console.Error.WriteLine($"done in {sw.Elapsed.TotalSeconds:0.0} s");
            return 0;
        }));
        return cmd;
    }

    internal static Option<string> DtypeOption() => new("--dtype") { Description = "In-memory weight format: stored (default), f32, bf16, fp8, q8_0, q4_k" };

    /// <summary>The --cache-type option of the generating verbs.</summary>
    internal static Option<string> CacheTypeOption(string defaultType) =>
        new("--cache-type") { Description = "Latent cache element type: f32, bf16 or int8 (8 bits and two scales per token: half of bf16, lossy)", DefaultValueFactory = _ => defaultType };

    /// <summary>Parses --cache-type; anything else is an error naming the option.</summary>
    internal static CacheType ParseCacheType(string? name) => name switch
    {
        "f32" => CacheType.F32,
        "bf16" => CacheType.BF16,
        "int8" => CacheType.Int8,
        _ => throw new ArgumentException($"--cache-type must be f32, bf16 or int8, got '{name}'"),
    };

    internal static LoadOptions LoadOptionsFor(string? dtype) =>
        new() { Dtype = dtype is null or "stored" ? null : WeightConversion.ParseName(dtype) };

    private static Command Bench()
    {
        var model = new Option<string>("--model") { Description = "Model directory", Required = true };
        var dtype = DtypeOption();
        var prompt = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 512 };
        var gen = new Option<int>("--gen-tokens") { DefaultValueFactory = _ => 128 };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var runs = new Option<int>("--runs") { DefaultValueFactory = _ => 3 };
        var cache = CacheTypeOption("bf16");
        var chunk = new Option<int>("--prefill-chunk") { Description = "Tokens per prefill call (0 = all)" };
        var compare = new Option<int>("--compare-context") { Description = "Also decode at this context length, alternating with the prompt's, in the same process (long-context ratio)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var skip = new Option<bool>("--skip-roofline") { Description = "Skip the bandwidth, peak and product-alone measurements (their keys are 0)" };
        var cmd = new Command("bench", "Prefill/decode throughput, weight bytes per token and the measured rooflines")
        { model, dtype, prompt, gen, threads, runs, cache, chunk, compare, json, skip };
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            int t = pr.GetValue(threads);
            if (t < 1)
                throw new ArgumentException("--threads must be >= 1");
            using ModelWeights w = ModelLoading.Load(pr.GetValue(model)!, LoadOptionsFor(pr.GetValue(dtype)));
            using var backend = new ThreadedBackend(t);
            var tr = new Transformer(w, backend);
            var opts = new BenchOptions
            {
                PromptTokens = pr.GetValue(prompt),
                GenTokens = pr.GetValue(gen),
                Runs = pr.GetValue(runs),
                Cache = ParseCacheType(pr.GetValue(cache)),
                PrefillChunk = pr.GetValue(chunk),
                CompareContext = pr.GetValue(compare),
                SkipRoofline = pr.GetValue(skip),
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
            if (r.DecodeMatvecBytesPerS > 0)
                Console.WriteLine($"          the decode matrix-vector products alone stream {r.DecodeMatvecBytesPerS / 1e9:0.0} GB/s = {r.DecodeMatvecFraction:P0} of it; {r.DecodeOtherFraction:P0} of a decode step is the rest");
            if (r.CompareContextTokens > 0)
                Console.WriteLine($"context   {r.DecodeTokensPerSShortContext,10:0.00} tok/s at {r.CompareContextTokens} tokens, {r.DecodeTokensPerSLongContext:0.00} at {r.PromptTokens}: time per token {r.LongContextTimeRatio:0.00}x (alternating rounds)");
            Console.WriteLine($"TTFT      {r.TtftMs,10:0.0} ms     peak RSS {r.PeakRssBytes / 1e6:0} MB, KV cache {r.KvCacheBytes / 1e3:0.0} kB");
            return 0;
        }));
        return cmd;
    }
}
