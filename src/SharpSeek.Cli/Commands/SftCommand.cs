// sharpseek sft: supervised fine-tuning on chat-format examples (loss on the assistant reply only) from sft.json,
// on the pre-training trainer: progress, CSV log, loss plot and resumable checkpoints.
using System.CommandLine;
using System.Globalization;
using SharpSeek.Training;

namespace SharpSeek.Cli;

internal static class SftCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "sft.json (model.init_from, data.train, batch, schedule, checkpoints; see SftOptions)", Required = true };
        var stopAfter = new Option<int?>("--stop-after") { Description = "Stop after this many steps of this invocation (a later run resumes)" };
        var cmd = new Command("sft", "Supervised fine-tuning on chat examples (loss on assistant tokens), resuming from the latest checkpoint") { config, stopAfter };
        cmd.SetAction(pr =>
        {
            SftOptions s = SftOptions.Load(pr.GetValue(config)!);
            (TrainOptions o, SftData data) = s.Prepare();
            using Trainer t = Trainer.Create(o, data);
            var inv = CultureInfo.InvariantCulture;
            Console.Error.WriteLine($"sft: {data.Count.ToString("N0", inv)} examples ({data.CompletionTokens.ToString("N0", inv)} reply tokens) packed into " +
                                    $"{data.BatchesPerEpoch} batches of {o.BatchSize} x {o.SequenceLength} per epoch; {o.Steps} steps from {o.InitFrom}");
            if (t.ResumedFrom is not null)
                Console.Error.WriteLine($"resumed from {t.ResumedFrom} at step {t.Step}");
            int? max = pr.GetValue(stopAfter);
            t.Run(r =>
            {
                Console.Error.WriteLine($"step {r.Step}/{o.Steps} loss {r.Ce.ToString("F4", inv)} lr {r.Lr.ToString("G3", inv)} |g| {r.GradNorm.ToString("F3", inv)} {r.TokensPerSecond.ToString("F0", inv)} tok/s");
                if (o.LogCsv is not null)
                    TrainingLog.WriteCsv(o.LogCsv, t.History);
            }, max ?? int.MaxValue);
            if (o.Plot is not null && t.History.Count > 0)
                TrainingLog.WritePlot(o.Plot, t.History, "SharpSeek SFT loss (reply tokens)");
            if (o.CheckpointDir is not null)
                Console.Error.WriteLine($"checkpoints in {o.CheckpointDir}");
            return 0;
        });
        return cmd;
    }
}
