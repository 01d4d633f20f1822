// sharpseek grpo: reinforcement learning with rule-based rewards (GRPO) from grpo.json: one line per step, a JSONL
// log, reward and length plots, resumable checkpoints.
using System.CommandLine;
using SharpSeek.Training;

namespace SharpSeek.Cli;

internal static class GrpoCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "grpo.json (model.init_from, data.train, group size, rewards, KL, schedule; see GrpoOptions)", Required = true };
        var stopAfter = new Option<int?>("--stop-after") { Description = "Stop after this many steps of this invocation (a later run resumes)" };
        var show = new Option<bool>("--show-samples") { Description = "Print the first completion of every step" };
        var cmd = new Command("grpo", "GRPO: sample groups of completions, reward them by rule, train the policy; resumes from the latest checkpoint") { config, stopAfter, show };
        cmd.SetAction(pr =>
        {
            GrpoOptions o = GrpoOptions.Load(pr.GetValue(config)!);
            using GrpoTrainer g = GrpoTrainer.Create(o);
            TrainOptions t = o.Train;
            Console.Error.WriteLine($"grpo: {o.PromptsPerStep} prompts x {o.GroupSize} completions per step, up to {o.MaxCompletionTokens} tokens, " +
                                    $"beta {o.Beta}, clip {o.ClipEps}, {o.PpoEpochs} pass(es); {t.Steps} steps from {t.InitFrom}");
            if (g.ResumedFrom is not null)
                Console.Error.WriteLine($"resumed from {g.ResumedFrom} at step {g.Step}");
            bool samples = pr.GetValue(show);
            g.Run(r =>
            {
                Console.Error.WriteLine(GrpoTrainer.Describe(r, t.Steps));
                if (samples && g.LastSamples.Count > 0)
                    Console.Error.WriteLine("  sample: " + g.LastSamples[0].Text.Replace("\n", "\\n", StringComparison.Ordinal));
                if (o.LogJsonl is not null)
                    GrpoTrainer.WriteLog(o.LogJsonl, g.History);
            }, pr.GetValue(stopAfter) ?? int.MaxValue);
            if (t.Plot is not null && g.History.Count > 0)
                GrpoTrainer.WritePlots(t.Plot, g.History);
            if (t.CheckpointDir is not null)
                Console.Error.WriteLine($"checkpoints in {t.CheckpointDir}");
            return 0;
        });
        return cmd;
    }
}
