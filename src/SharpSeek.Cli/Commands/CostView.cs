// `sharpseek inspect --cost`: training compute, GPU-hours and dollars of a config next to a reported figure.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharpSeek.Inference;
using SharpSeek.Model;

namespace SharpSeek.Cli;

/// <summary>`inspect --cost`: training compute, GPU-hours and dollars next to a reported figure.</summary>
internal static class CostView
{
    public sealed class Options
    {
        public readonly Option<bool> Cost = new("--cost") { Description = "Training cost estimate (needs --tokens)" };
        public readonly Option<string> Tokens = new("--tokens") { Description = "Training tokens, e.g. 14.8T" };
        public readonly Option<double> Price = new("--gpu-hour-price") { Description = "Dollars per GPU-hour", DefaultValueFactory = _ => 2 };
        public readonly Option<string> Gpu = new("--gpu") { Description = "h800, h100, h200 or a100", DefaultValueFactory = _ => "h800" };
        public readonly Option<double> Utilization = new("--utilization") { Description = "Model FLOPs utilization (MFU) of the peak", DefaultValueFactory = _ => 0.4 };
        public readonly Option<string> Precision = new("--precision") { Description = "Peak the utilization refers to: bf16 or fp8", DefaultValueFactory = _ => "bf16" };
        public readonly Option<int> SequenceLength = new("--seq-len") { Description = "Training sequence length (attention sees half on average)", DefaultValueFactory = _ => 4096 };
        public readonly Option<string> Reported = new("--reported-gpu-hours") { Description = "Reported GPU-hours to compare with, e.g. 2.788M (default: DeepSeek-V3's for its config on H800)" };
        public readonly Option<int?> GpuCount = new("--gpu-count") { Description = "Cluster size for wall-clock and capital figures" };

        public IEnumerable<Option> All => [Cost, Tokens, Price, Gpu, Utilization, Precision, SequenceLength, Reported, GpuCount];
    }

    public static int Print(ModelConfig c, Options o, ParseResult pr, bool json)
    {
        string tokens = pr.GetValue(o.Tokens) ?? throw new UsageException("--cost needs --tokens (e.g. --tokens 14.8T)");
        var options = new TrainingCostOptions
        {
            Tokens = CliErrors.UserValue(() => TrainingCost.ParseQuantity(tokens, "--tokens")),
            Gpu = pr.GetValue(o.Gpu)!,
            GpuHourPrice = pr.GetValue(o.Price),
            Utilization = pr.GetValue(o.Utilization),
            Precision = pr.GetValue(o.Precision) switch
            {
                "bf16" => PeakPrecision.Bf16,
                "fp8" => PeakPrecision.Fp8,
                var v => throw new UserInputException($"--precision must be bf16 or fp8, got '{v}'"),
            },
            SequenceLength = pr.GetValue(o.SequenceLength),
            ReportedGpuHours = pr.GetValue(o.Reported) is string r ? CliErrors.UserValue(() => TrainingCost.ParseQuantity(r, "--reported-gpu-hours")) : null,
            GpuCount = pr.GetValue(o.GpuCount),
        };
        TrainingCost e = CliErrors.UserValue(() => TrainingCost.Estimate(c, options)); // checks the option values
        if (json)
        {
            var d = new Dictionary<string, object?>
            {
                ["tokens"] = options.Tokens,
                ["activated_matmul_parameters"] = e.ActivatedMatmulParameters,
                ["mtp_matmul_parameters"] = e.MtpMatmulParameters,
                ["matmul_flops_per_token"] = e.MatmulFlopsPerToken,
                ["attention_flops_per_token"] = e.AttentionFlopsPerToken,
                ["sequence_length"] = options.SequenceLength,
                ["average_context"] = e.AverageContext,
                ["total_flops"] = e.TotalFlops,
                ["gpu"] = e.Gpu.Name,
                ["precision"] = options.Precision.ToString().ToLowerInvariant(),
                ["peak_flops"] = e.PeakFlops,
                ["utilization"] = options.Utilization,
                ["gpu_hours"] = e.GpuHours,
                ["gpu_hour_price"] = options.GpuHourPrice,
                ["dollars"] = e.Dollars,
                ["reported_source"] = e.Reported?.Source,
                ["reported_gpu_hours"] = e.ReportedGpuHours,
                ["reported_dollars"] = e.ReportedDollars,
                ["reconciling_utilization"] = e.ReconcilingUtilization,
                ["gpu_count"] = e.GpuCount,
                ["estimated_days"] = e.EstimatedDays,
                ["cluster_gpu_capital_dollars"] = e.ClusterCapitalDollars,
                ["left_out"] = TrainingCost.LeftOut,
            };
            Console.WriteLine(JsonSerializer.Serialize(d, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return 0;
        }
        var inv = CultureInfo.InvariantCulture;
        string Q(double v) => v >= 1e12 ? (v / 1e12).ToString("0.###", inv) + "T" : v >= 1e9 ? (v / 1e9).ToString("0.###", inv) + "B"
                            : v >= 1e6 ? (v / 1e6).ToString("0.###", inv) + "M" : v >= 1e3 ? (v / 1e3).ToString("0.###", inv) + "K" : v.ToString("0.###", inv);
        string D(double v) => "$" + Q(v);
        Console.WriteLine(string.Create(inv, $"training cost of {c.ModelType} on {Q(options.Tokens)} tokens"));
        Console.WriteLine(string.Create(inv, $"  activated matmul weights  {Q(e.ActivatedMatmulParameters)} main (ModelStats.FlopsPerToken / 2: lm_head in, embedding lookup and norms out)") +
                          (e.MtpMatmulParameters > 0 ? string.Create(inv, $" + {Q(e.MtpMatmulParameters)} MTP") : ""));
        Console.WriteLine(string.Create(inv, $"  FLOPs per token           {Q(e.MatmulFlopsPerToken)} matmul (6 x weights) + {Q(e.AttentionFlopsPerToken)} attention (6 x {Q(e.AttentionFlopsPerToken / 6 / e.AverageContext)} MACs x {e.AverageContext:0} average context at sequence length {options.SequenceLength})"));
        Console.WriteLine(string.Create(inv, $"  training FLOPs            {e.TotalFlops:0.000e+00}"));
        string fp8 = e.Gpu.Fp8TeraFlops is double f8 ? FormattableString.Invariant($"{f8:0} TFLOP/s") : "none";
        Console.WriteLine(string.Create(inv, $"  GPU                       {e.Gpu.Name}: dense BF16 {e.Gpu.Bf16TeraFlops:0} TFLOP/s, FP8 {fp8}; peak used {options.Precision.ToString().ToUpperInvariant()}"));
        Console.WriteLine(string.Create(inv, $"  estimate                  {Q(e.GpuHours)} GPU-hours at {options.Utilization:0.###} utilization = {D(e.Dollars)} at ${options.GpuHourPrice:0.##}/GPU-hour"));
        if (e.ReportedGpuHours is double rh)
        {
            Console.WriteLine(string.Create(inv, $"  reported                  {Q(rh)} GPU-hours = {D(e.ReportedDollars!.Value)}") + (e.Reported is { } rep ? $" ({rep.Source})" : ""));
            Console.WriteLine(string.Create(inv, $"  reconciling utilization   {e.ReconcilingUtilization:0.000} of the {options.Precision.ToString().ToUpperInvariant()} peak " +
                                                 $"(estimate / reported = {e.GpuHours / rh:0.00})"));
        }
        if (e.GpuCount is int n)
        {
            Console.WriteLine(string.Create(inv, $"  wall clock                {e.EstimatedDays:0.0} days on {n} GPUs (estimate)") +
                              (e.ReportedGpuHours is double rh2 ? string.Create(inv, $", {rh2 / n / 24:0.0} days (reported)") : ""));
            if (e.ClusterCapitalDollars is double capital)
                Console.WriteLine(string.Create(inv, $"  cluster GPUs alone        {n} x ~{D(e.Gpu.UnitPriceDollars!.Value)} = ~{D(capital)} to buy (not in the GPU-hour figure)"));
        }
        Console.WriteLine("  not included:");
        foreach (string item in TrainingCost.LeftOut)
            Console.WriteLine("    - " + item);
        return 0;
    }
}
