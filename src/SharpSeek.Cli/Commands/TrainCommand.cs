// sharpseek train: a full run from train.json with a progress bar, CSV log, loss plot and resumable checkpoints.
using System.CommandLine;
using System.Globalization;
using SharpSeek.Training;

namespace SharpSeek.Cli;

internal static class TrainCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "train.json (model, data, schedule, checkpoints; see TrainOptions)", Required = true };
        var steps = new Option<int?>("--stop-after") { Description = "Stop after this many steps of this invocation (a later run resumes)" };
        var cmd = new Command("train", "Train or fine-tune a model from train.json, resuming from the latest checkpoint") { config, steps };
        cmd.SetAction(pr =>
        {
            TrainOptions o = TrainOptions.Load(pr.GetValue(config)!);
            using Trainer t = Trainer.Create(o);
            var inv = CultureInfo.InvariantCulture;
            Console.Error.WriteLine($"model: {t.Parameters.Config.ModelType}, {t.Parameters.Count.ToString("N0", inv)} trainable parameters; " +
                                    $"batch {o.BatchSize} x {o.SequenceLength}, {o.Steps} steps, threads {(o.Threads > 0 ? o.Threads : Environment.ProcessorCount)}");
            if (t.ResumedFrom is not null)
                Console.Error.WriteLine($"resumed from {t.ResumedFrom} at step {t.Step}");
            var bar = new ProgressBar(o.Steps, Console.IsErrorRedirected);
            t.Run(r =>
            {
                bar.Update(r);
                if (o.LogCsv is not null)
                    TrainingLog.WriteCsv(o.LogCsv, t.History);
            }, pr.GetValue(steps) ?? int.MaxValue);
            bar.Done();
            if (o.Plot is not null && t.History.Count > 0)
                TrainingLog.WritePlot(o.Plot, t.History);
            if (t.History.Count > 0)
            {
                StepResult last = t.History[^1];
                Console.Error.WriteLine($"step {last.Step}: loss {last.Loss.ToString("F4", inv)} (ce {last.Ce.ToString("F4", inv)}, mtp {last.Mtp.ToString("F4", inv)}, bal {last.Balance.ToString("G3", inv)}" +
                                        (o.Indexer is not null ? $", indexer KL {last.Indexer.ToString("F4", inv)}" : "") + ")" +
                                        (o.CheckpointDir is not null ? $"; checkpoints in {o.CheckpointDir}" : ""));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>A one-line progress bar on stderr (plain lines when stderr is redirected).</summary>
    private sealed class ProgressBar(int total, bool plain)
    {
        private DateTime _last = DateTime.MinValue;

        public void Update(StepResult r)
        {
            var inv = CultureInfo.InvariantCulture;
            string stats = $"step {r.Step}/{total} loss {r.Loss.ToString("F4", inv)}{(r.Indexer != 0 ? $" (indexer KL {r.Indexer.ToString("F4", inv)})" : "")} lr {r.Lr.ToString("G3", inv)} |g| {r.GradNorm.ToString("F3", inv)} {r.TokensPerSecond.ToString("F0", inv)} tok/s";
            if (plain)
            {
                Console.Error.WriteLine(stats);
                return;
            }
            if (DateTime.UtcNow - _last < TimeSpan.FromMilliseconds(100) && r.Step < total)
                return;
            _last = DateTime.UtcNow;
            int width = 30, filled = (int)Math.Round(width * Math.Min(1.0, (double)r.Step / total));
            Console.Error.Write($"\r[{new string('#', filled)}{new string('-', width - filled)}] {stats}   ");
        }

        public void Done()
        {
            if (!plain)
                Console.Error.WriteLine();
        }
    }
}
