// Training-cost arithmetic on DeepSeek-V3's config against hand-checked figures and the report's numbers.
using SharpSeek.Model;
using SharpSeek.Tests;

namespace SharpSeek.Inference.Tests;

public class TrainingCostTests
{
    private static ModelConfig V3 => ModelConfig.Load(Path.Combine(Fixtures.Root, "configs", "deepseek-v3.json"));

    [Fact]
    public void DeepSeekV3AtTheReportedScale()
    {
        ModelConfig c = V3;
        TrainingCost e = TrainingCost.Estimate(c, new TrainingCostOptions { Tokens = 14.8e12 });
        ModelStats s = ModelStats.Compute(c);

        // the report says 37B activated parameters; the matmul part (lm_head in, embedding lookup out) is close
        Assert.Equal(s.FlopsPerToken / 2.0, e.ActivatedMatmulParameters);
        Assert.InRange(e.ActivatedMatmulParameters, 36e9, 38e9);
        // MTP as trained: one MoE block (attention 187M, router 1.8M, 9 experts of 44M), eh_proj 103M, head 927M
        double moeBlock = 187_105_280 + 256 * 7168 + 9 * 3.0 * 7168 * 2048;
        Assert.Equal(moeBlock + 2.0 * 7168 * 7168 + 129280.0 * 7168, e.MtpMatmulParameters, 1e-6 * e.MtpMatmulParameters);
        Assert.Equal(6 * (e.ActivatedMatmulParameters + e.MtpMatmulParameters), e.MatmulFlopsPerToken);

        // attention: 62 layers (61 + MTP) x 128 heads x (128 + 64 + 128) MACs per context token, 2048 on average
        Assert.Equal(2048, e.AverageContext);
        Assert.Equal(6.0 * 62 * 128 * 320 * 2048, e.AttentionFlopsPerToken);
        Assert.Equal(14.8e12 * (e.MatmulFlopsPerToken + e.AttentionFlopsPerToken), e.TotalFlops);
        Assert.InRange(e.TotalFlops, 3.7e24, 4.0e24);

        Assert.Equal(989e12, e.PeakFlops);
        Assert.Equal(e.TotalFlops / (989e12 * 0.4) / 3600, e.GpuHours);
        Assert.Equal(2 * e.GpuHours, e.Dollars);

        // the report: 2.788M H800 GPU-hours = $5.576M; the utilization that reconciles them
        Assert.Same(ReportedCost.DeepSeekV3, e.Reported);
        Assert.Equal(2.788e6, e.ReportedGpuHours);
        Assert.Equal(5.576e6, e.ReportedDollars!.Value, 1e-3);
        Assert.Equal(e.TotalFlops / (2.788e6 * 3600 * 989e12), e.ReconcilingUtilization!.Value);
        Assert.InRange(e.ReconcilingUtilization!.Value, 0.35, 0.42);
        Assert.Equal(2.788e6, e.GpuHours * 0.4 / e.ReconcilingUtilization.Value, 1e-3);

        Assert.Equal(2048, e.GpuCount);
        Assert.Equal(e.GpuHours / 2048 / 24, e.EstimatedDays);
        Assert.Equal(2048 * 30_000.0, e.ClusterCapitalDollars); // about $61M in GPUs alone
        Assert.Contains(TrainingCost.LeftOut, l => l.Contains("ablation", StringComparison.Ordinal));
    }

    [Fact]
    public void Fp8PeakHalvesTheUtilizationAndOptionsApply()
    {
        TrainingCost bf16 = TrainingCost.Estimate(V3, new TrainingCostOptions { Tokens = 14.8e12 });
        TrainingCost fp8 = TrainingCost.Estimate(V3, new TrainingCostOptions { Tokens = 14.8e12, Precision = PeakPrecision.Fp8 });
        Assert.Equal(1979e12, fp8.PeakFlops);
        Assert.Equal(bf16.ReconcilingUtilization!.Value * 989 / 1979, fp8.ReconcilingUtilization!.Value, 1e-12);

        TrainingCost custom = TrainingCost.Estimate(V3, new TrainingCostOptions
        {
            Tokens = 1e12, Utilization = 0.5, GpuHourPrice = 3, SequenceLength = 8192, ReportedGpuHours = 1e5, GpuCount = 100,
        });
        Assert.Equal(4096, custom.AverageContext);
        Assert.Null(custom.Reported);
        Assert.Equal(1e5, custom.ReportedGpuHours);
        Assert.Equal(3e5, custom.ReportedDollars);
        Assert.Equal(custom.TotalFlops / (989e12 * 0.5) / 3600, custom.GpuHours);
        Assert.Equal(3 * custom.GpuHours, custom.Dollars);
        Assert.Equal(100, custom.GpuCount);
        Assert.Equal(3_000_000.0, custom.ClusterCapitalDollars);
    }

    [Fact]
    public void OtherModelsAndGpusHaveNoReportedFigure()
    {
        ModelConfig lite = ModelConfig.Load(Path.Combine(Fixtures.Root, "configs", "deepseek-v2-lite.json"));
        TrainingCost e = TrainingCost.Estimate(lite, new TrainingCostOptions { Tokens = 5.7e12 });
        Assert.Null(e.Reported);
        Assert.Null(e.ReconcilingUtilization);
        Assert.Null(e.GpuCount);
        Assert.Equal(0, e.MtpMatmulParameters);
        TrainingCost a100 = TrainingCost.Estimate(V3, new TrainingCostOptions { Tokens = 14.8e12, Gpu = "A100" });
        Assert.Null(a100.Reported);
        Assert.Equal(312e12, a100.PeakFlops);
        Assert.Null(a100.ClusterCapitalDollars);
        Assert.Throws<NotSupportedException>(() => TrainingCost.Estimate(V3, new TrainingCostOptions { Tokens = 1, Gpu = "a100", Precision = PeakPrecision.Fp8 }));
        Assert.Throws<ArgumentException>(() => TrainingCost.Estimate(V3, new TrainingCostOptions { Tokens = 1, Gpu = "tpu" }));
        Assert.Throws<ArgumentException>(() => TrainingCost.Estimate(V3, new TrainingCostOptions { Tokens = 1, Utilization = 0 }));
        Assert.Throws<ArgumentException>(() => TrainingCost.Estimate(V3, new TrainingCostOptions { Tokens = 0 }));
    }

    [Theory]
    [InlineData("14.8T", 14.8e12)]
    [InlineData("2.788M", 2.788e6)]
    [InlineData("2048", 2048)]
    [InlineData("671b", 671e9)]
    [InlineData("119K", 119e3)]
    [InlineData("1.5e12", 1.5e12)]
    [InlineData(" 1_000 ", 1000)]
    public void QuantitiesParse(string text, double want) => Assert.Equal(want, TrainingCost.ParseQuantity(text), want * 1e-15);

    [Theory]
    [InlineData("")]
    [InlineData("T")]
    [InlineData("-3M")]
    [InlineData("abc")]
    [InlineData("0")]
    public void BadQuantitiesAreRejected(string text) => Assert.Throws<FormatException>(() => TrainingCost.ParseQuantity(text, "--tokens"));
}
