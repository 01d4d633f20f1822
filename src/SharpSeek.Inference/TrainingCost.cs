// Back-of-envelope training cost from a config (Kaplan et al. 2020, arXiv:2001.08361, §2.1: C ≈ 6 N per token for
// forward + backward; Chowdhery et al. 2022, PaLM App. B, for the attention term and model FLOPs utilization):
//   matmul FLOPs / token    = 6 · N, N = activated matmul weights = ModelStats.FlopsPerToken / 2 (every active
//                             weight matrix incl. lm_head; not the embedding lookup, norms or unchosen experts),
//                             plus the MTP modules as trained (one more MoE block, eh_proj and its head each);
//   attention FLOPs / token = 6 · (ModelStats.AttentionFlopsPerContextToken / 2) · S / 2: the naive-form score and
//                             value products against on average S/2 earlier tokens of a causal sequence of length S;
//   GPU-hours               = tokens · FLOPs/token / (peak · utilization) / 3600;  dollars = GPU-hours · price.
// Peaks are dense (no 2:4 sparsity) tensor-core figures from NVIDIA's data sheets.
using System.Globalization;
using SharpSeek.Model;

namespace SharpSeek.Inference;

/// <summary>Arithmetic precision whose peak rate the utilization is measured against.</summary>
public enum PeakPrecision
{
    /// <summary>Dense BF16 tensor-core peak (the usual MFU convention).</summary>
    Bf16,

    /// <summary>Dense FP8 tensor-core peak (DeepSeek-V3 ran its GEMMs in FP8).</summary>
    Fp8,
}

/// <summary>An accelerator: dense peak rates and an indicative unit price.</summary>
/// <param name="Name">Display name.</param>
/// <param name="Bf16TeraFlops">Dense BF16 peak, TFLOP/s.</param>
/// <param name="Fp8TeraFlops">Dense FP8 peak, TFLOP/s, or null without FP8 tensor cores.</param>
/// <param name="UnitPriceDollars">Indicative purchase price of one GPU, or null when none is assumed.</param>
public sealed record GpuSpec(string Name, double Bf16TeraFlops, double? Fp8TeraFlops, double? UnitPriceDollars)
{
    /// <summary>The table: H800 and H100 SXM 989 / 1979 TFLOP/s (H800 is an H100 with cut interconnect), H200 the
    /// same silicon, A100 312 BF16 and no FP8. Prices are rough 2023-24 market figures (about $30k an H800/H100).</summary>
    public static IReadOnlyDictionary<string, GpuSpec> Known { get; } = new Dictionary<string, GpuSpec>(StringComparer.OrdinalIgnoreCase)
    {
        ["h800"] = new("H800 SXM", 989, 1979, 30_000),
        ["h100"] = new("H100 SXM", 989, 1979, 30_000),
        ["h200"] = new("H200 SXM", 989, 1979, null),
        ["a100"] = new("A100 SXM", 312, null, null),
    };

    /// <summary>Looks up <see cref="Known"/> by key (h800, h100, h200, a100).</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static GpuSpec Find(string name) =>
        Known.TryGetValue(name ?? "", out GpuSpec? g) ? g
            : throw new ArgumentException($"unknown GPU '{name}'; known: {string.Join(", ", Known.Keys)}");

    /// <summary>Peak FLOP/s at a precision.</summary>
    /// <exception cref="NotSupportedException">The GPU has no FP8 tensor cores.</exception>
    public double PeakFlops(PeakPrecision precision) => precision == PeakPrecision.Bf16
        ? Bf16TeraFlops * 1e12
        : (Fp8TeraFlops ?? throw new NotSupportedException($"{Name} has no FP8 tensor cores")) * 1e12;
}

/// <summary>A published training cost to set an estimate against.</summary>
/// <param name="Model">Which model.</param>
/// <param name="ParametersTotal">Its total parameter count (how a config is recognised).</param>
/// <param name="Gpu">Key of the GPU in <see cref="GpuSpec.Known"/>.</param>
/// <param name="GpuHours">Reported GPU-hours.</param>
/// <param name="GpuCount">Cluster size.</param>
/// <param name="Tokens">Training tokens.</param>
/// <param name="PricePerGpuHour">Rental price assumed by the report.</param>
/// <param name="Source">Where the figures come from.</param>
public sealed record ReportedCost(string Model, long ParametersTotal, string Gpu, double GpuHours, int GpuCount, double Tokens,
                                  double PricePerGpuHour, string Source)
{
    /// <summary>DeepSeek-V3 technical report (arXiv:2412.19437), Table 1: 2.664M pre-training + 119K context extension
    /// + 5K post-training = 2.788M H800 GPU-hours on 2048 GPUs, $5.576M at $2 per GPU-hour, 14.8T tokens.</summary>
    public static ReportedCost DeepSeekV3 { get; } = new("DeepSeek-V3", 671_026_404_352, "h800", 2.788e6, 2048, 14.8e12, 2,
        "DeepSeek-V3 technical report, Table 1: 2.664M pre-training + 0.119M context extension + 0.005M post-training");

    /// <summary>Reported dollars: GPU-hours times price.</summary>
    public double Dollars => GpuHours * PricePerGpuHour;
}

/// <summary>Inputs of <see cref="TrainingCost.Estimate"/>.</summary>
public sealed record TrainingCostOptions
{
    /// <summary>Training tokens.</summary>
    public required double Tokens { get; init; }

    /// <summary>Key in <see cref="GpuSpec.Known"/>. Default h800.</summary>
    public string Gpu { get; init; } = "h800";

    /// <summary>Rental price of one GPU-hour in dollars. Default 2.</summary>
    public double GpuHourPrice { get; init; } = 2;

    /// <summary>Model FLOPs utilization: achieved / peak. Default 0.4.</summary>
    public double Utilization { get; init; } = 0.4;

    /// <summary>The peak the utilization refers to. Default BF16.</summary>
    public PeakPrecision Precision { get; init; } = PeakPrecision.Bf16;

    /// <summary>Training sequence length S; attention sees S/2 earlier tokens on average. Default 4096.</summary>
    public int SequenceLength { get; init; } = 4096;

    /// <summary>Reported GPU-hours to compare with; null takes DeepSeek-V3's when the config has its parameter count
    /// and the GPU is the H800.</summary>
    public double? ReportedGpuHours { get; init; }

    /// <summary>Cluster size for wall-clock time and capital cost; null takes the report's.</summary>
    public int? GpuCount { get; init; }
}

/// <summary>An estimate of the compute, GPU-hours and dollars of one training run, next to a reported figure.</summary>
public sealed record TrainingCost
{
    /// <summary>What a GPU-hour figure of a training run leaves out.</summary>
    public static IReadOnlyList<string> LeftOut { get; } =
    [
        "research, ablation and failed runs before the final one (the V3 report excludes them explicitly)",
        "data acquisition, cleaning, deduplication and synthetic data (e.g. R1-generated reasoning data for post-training)",
        "staff: researchers and engineers",
        "the cluster's capital cost if owned rather than rented: GPUs, servers, InfiniBand/NVLink networking, storage",
        "power, cooling and data-centre facilities, and the cluster's idle and maintenance time",
        "inference serving after release",
    ];

    /// <summary>Activated matmul weights per token of the main model (ModelStats.FlopsPerToken / 2).</summary>
    public required double ActivatedMatmulParameters { get; init; }

    /// <summary>Activated matmul weights of the MTP modules (0 without).</summary>
    public required double MtpMatmulParameters { get; init; }

    /// <summary>6 · (main + MTP activated matmul weights).</summary>
    public required double MatmulFlopsPerToken { get; init; }

    /// <summary>6 · AttentionFlopsPerContextToken / 2 · S / 2 (MTP layers included).</summary>
    public required double AttentionFlopsPerToken { get; init; }

    /// <summary>Average attended context, S / 2.</summary>
    public required double AverageContext { get; init; }

    /// <summary>Tokens · (matmul + attention FLOPs per token).</summary>
    public required double TotalFlops { get; init; }

    /// <summary>The GPU.</summary>
    public required GpuSpec Gpu { get; init; }

    /// <summary>Peak FLOP/s at the chosen precision.</summary>
    public required double PeakFlops { get; init; }

    /// <summary>The options used.</summary>
    public required TrainingCostOptions Options { get; init; }

    /// <summary>TotalFlops / (peak · utilization) / 3600.</summary>
    public required double GpuHours { get; init; }

    /// <summary>GpuHours · price.</summary>
    public double Dollars => GpuHours * Options.GpuHourPrice;

    /// <summary>The published figure compared against, when there is one.</summary>
    public ReportedCost? Reported { get; init; }

    /// <summary>Reported GPU-hours (the report's or <see cref="TrainingCostOptions.ReportedGpuHours"/>), or null.</summary>
    public double? ReportedGpuHours { get; init; }

    /// <summary>Reported GPU-hours times the price, or null.</summary>
    public double? ReportedDollars => ReportedGpuHours * Options.GpuHourPrice;

    /// <summary>The utilization at which the estimate equals the reported GPU-hours, or null.</summary>
    public double? ReconcilingUtilization => ReportedGpuHours is double h ? TotalFlops / (h * 3600 * PeakFlops) : null;

    /// <summary>Cluster size used for wall-clock and capital figures, or null.</summary>
    public int? GpuCount { get; init; }

    /// <summary>Days of wall-clock at <see cref="GpuCount"/> GPUs for the estimated GPU-hours, or null.</summary>
    public double? EstimatedDays => GpuCount is int n ? GpuHours / n / 24 : null;

    /// <summary>GPU purchase cost of the cluster (count · unit price), or null.</summary>
    public double? ClusterCapitalDollars => GpuCount is int n && Gpu.UnitPriceDollars is double p ? n * p : null;

    /// <summary>Computes the estimate.</summary>
    /// <exception cref="ArgumentException">An option is out of range or the GPU is unknown.</exception>
    public static TrainingCost Estimate(ModelConfig config, TrainingCostOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        if (!(options.Tokens > 0))
            throw new ArgumentException($"tokens must be > 0, got {options.Tokens}");
        if (!(options.Utilization > 0 && options.Utilization <= 1))
            throw new ArgumentException($"utilization must be in (0, 1], got {options.Utilization}");
        if (!(options.GpuHourPrice >= 0))
            throw new ArgumentException($"GPU-hour price must be >= 0, got {options.GpuHourPrice}");
        if (options.SequenceLength < 1)
            throw new ArgumentException($"sequence length must be >= 1, got {options.SequenceLength}");
        if (options.ReportedGpuHours is double rh && !(rh > 0))
            throw new ArgumentException($"reported GPU-hours must be > 0, got {rh}");
        if (options.GpuCount is int gc && gc < 1)
            throw new ArgumentException($"GPU count must be >= 1, got {gc}");
        GpuSpec gpu = GpuSpec.Find(options.Gpu);
        double peak = gpu.PeakFlops(options.Precision);

        ModelStats s = ModelStats.Compute(config);
        double n = s.FlopsPerToken / 2.0;
        // an MTP module as trained: one more MoE decoder block (the difference of one more layer), eh_proj [H, 2H]
        // and its own output head [V, H]
        double mtpOne = 0, mtpAttention = 0;
        if (config.NumNextnPredictLayers > 0)
        {
            ModelStats plusOne = ModelStats.Compute(config with { NumHiddenLayers = config.NumHiddenLayers + 1 });
            mtpOne = (plusOne.FlopsPerToken - s.FlopsPerToken) / 2.0
                     + 2.0 * config.HiddenSize * config.HiddenSize + (double)config.VocabSize * config.HiddenSize;
            mtpAttention = (plusOne.AttentionFlopsPerContextToken - s.AttentionFlopsPerContextToken) / 2.0;
        }
        double mtp = config.NumNextnPredictLayers * mtpOne;
        double avgContext = options.SequenceLength / 2.0;
        double attentionMacs = s.AttentionFlopsPerContextToken / 2.0 + config.NumNextnPredictLayers * mtpAttention;
        double matmulFlops = 6 * (n + mtp), attentionFlops = 6 * attentionMacs * avgContext;
        double total = options.Tokens * (matmulFlops + attentionFlops);

        ReportedCost? reported = ReportedCost.DeepSeekV3.ParametersTotal == s.ParametersTotal
                                 && string.Equals(options.Gpu, ReportedCost.DeepSeekV3.Gpu, StringComparison.OrdinalIgnoreCase)
            ? ReportedCost.DeepSeekV3 : null;
        return new TrainingCost
        {
            ActivatedMatmulParameters = n,
            MtpMatmulParameters = mtp,
            MatmulFlopsPerToken = matmulFlops,
            AttentionFlopsPerToken = attentionFlops,
            AverageContext = avgContext,
            TotalFlops = total,
            Gpu = gpu,
            PeakFlops = peak,
            Options = options,
            GpuHours = total / (peak * options.Utilization) / 3600,
            Reported = options.ReportedGpuHours is null ? reported : null,
            ReportedGpuHours = options.ReportedGpuHours ?? reported?.GpuHours,
            GpuCount = options.GpuCount ?? (options.ReportedGpuHours is null ? reported?.GpuCount : null),
        };
    }

    /// <summary>Parses a count with an optional suffix: K (1e3), M (1e6), B or G (1e9), T (1e12); "14.8T", "2.788M",
    /// "2048", "1.5e12".</summary>
    /// <exception cref="FormatException">Not a positive number.</exception>
    public static double ParseQuantity(string text, string what = "value")
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().Replace("_", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal);
        double scale = 1;
        if (t.Length > 0)
        {
            scale = char.ToUpperInvariant(t[^1]) switch { 'K' => 1e3, 'M' => 1e6, 'B' or 'G' => 1e9, 'T' => 1e12, _ => 1 };
            if (scale != 1)
                t = t[..^1];
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0) || double.IsInfinity(v))
            throw new FormatException($"{what}: '{text}' is not a positive number (suffixes K, M, B, T allowed)");
        return v * scale;
    }
}
