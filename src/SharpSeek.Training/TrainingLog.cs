// Training logs: a CSV with one row per step and a loss-curve PNG (ScottPlot).
using System.Globalization;
using System.Text;
using SharpSeek.Formats.Safetensors;

namespace SharpSeek.Training;

/// <summary>CSV and PNG outputs of a run.</summary>
public static class TrainingLog
{
    public const string CsvHeader = "step,tokens,loss,ce,mtp,bal,lr,grad_norm,tokens_per_s,expert_imbalance,indexer";

    /// <summary>One CSV row (invariant culture, round-trip precision for the losses).</summary>
    public static string CsvRow(StepResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        return string.Join(',', r.Step.ToString(inv), r.Tokens.ToString(inv), r.Loss.ToString("R", inv), r.Ce.ToString("R", inv),
                           r.Mtp.ToString("R", inv), r.Balance.ToString("R", inv), r.Lr.ToString("G6", inv), r.GradNorm.ToString("G6", inv),
                           r.TokensPerSecond.ToString("F1", inv), r.Imbalance.ToString("G4", inv), r.Indexer.ToString("R", inv));
    }

    /// <summary>Writes the whole history as CSV (atomically).</summary>
    public static void WriteCsv(string path, IEnumerable<StepResult> rows)
    {
        var sb = new StringBuilder(CsvHeader).Append('\n');
        foreach (StepResult r in rows)
            sb.Append(CsvRow(r)).Append('\n');
        AtomicFile.WriteText(path, sb.ToString());
    }

    /// <summary>Plots loss, CE and MTP loss against the step into a PNG.</summary>
    public static void WritePlot(string path, IReadOnlyList<StepResult> rows, string title = "SharpSeek training loss")
    {
        var plt = new ScottPlot.Plot();
        double[] steps = rows.Select(r => (double)r.Step).ToArray();
        var total = plt.Add.Scatter(steps, rows.Select(r => r.Loss).ToArray());
        total.LegendText = "total";
        total.MarkerSize = 0;
        var ce = plt.Add.Scatter(steps, rows.Select(r => r.Ce).ToArray());
        ce.LegendText = "cross-entropy";
        ce.MarkerSize = 0;
        if (rows.Any(r => r.Indexer != 0))
        {
            var ix = plt.Add.Scatter(steps, rows.Select(r => r.Indexer).ToArray());
            ix.LegendText = "indexer KL";
            ix.MarkerSize = 0;
        }
        if (rows.Any(r => r.Mtp != 0))
        {
            var mtp = plt.Add.Scatter(steps, rows.Select(r => r.Mtp).ToArray());
            mtp.LegendText = "MTP";
            mtp.MarkerSize = 0;
        }
        plt.Title(title);
        plt.XLabel("step");
        plt.YLabel("loss");
        plt.ShowLegend();
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp.png");
        plt.SavePng(tmp, 800, 500);
        File.Move(tmp, path, overwrite: true);
    }
}
