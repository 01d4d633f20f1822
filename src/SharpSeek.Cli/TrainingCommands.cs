// Training verbs: grads (loss and every weight gradient of a batch, for checking against a reference) and train
// (a full run from train.json with a progress bar, CSV log, loss plot and resumable checkpoints).
using System.CommandLine;
using System.Globalization;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Training;

namespace SharpSeek.Cli;

internal static class TrainingCommands
{
    public static IEnumerable<Command> Create() => [Grads(), Train(), TrainBench()];

    private static Command Grads()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + safetensors, any weight format)", Required = true };
        var ids = new Option<string>("--ids") { Description = "safetensors file with I64 'input_ids' [B, T]", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors: F32 'loss' [1] and 'grad.NAME' per weight", Required = true };
        var threads = new Option<int>("--threads") { Description = "Worker threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var cmd = new Command("grads", "Mean next-token cross-entropy of a batch and its gradient for every weight (fp32)") { model, ids, output, threads };
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            string idsPath = pr.GetValue(ids)!;
            long[] raw;
            long[] shape;
            using (Checkpoint f = Checkpoint.FromFiles(Path.GetDirectoryName(Path.GetFullPath(idsPath))!, [idsPath], weightMap: null))
            {
                if (!f.Contains("input_ids"))
                    throw new InvalidDataException($"{idsPath}: no tensor 'input_ids'");
                shape = f.Info("input_ids").Shape;
                raw = f.ReadInt64("input_ids");
            }
            if (shape.Length is not (1 or 2))
                throw new InvalidDataException($"{idsPath}: input_ids has shape [{string.Join(", ", shape)}], expected [B, T]");
            int B = shape.Length == 2 ? (int)shape[0] : 1, T = (int)shape[^1];
            ModelParameters p = ModelParameters.Load(pr.GetValue(model)!);
            int[] inputs = raw.Select(v => (int)v).ToArray();
            var targets = new int[inputs.Length];
            for (int b = 0; b < B; b++)
            {
                for (int t = 0; t < T; t++)
                    targets[b * T + t] = t + 1 < T ? inputs[b * T + t + 1] : -1;
            }
            int n = pr.GetValue(threads) > 0 ? pr.GetValue(threads) : Environment.ProcessorCount;
            using var be = new Tensors.ThreadedBackend(n);
            var tm = new TrainingModel(p, new TrainingModelOptions { BatchSize = B, SequenceLength = T, Backend = be });
            p.ZeroGrad();
            LossBreakdown loss = tm.ForwardBackward(inputs, targets);
            var w = new SafetensorsWriter();
            w.AddF32("loss", [1], [(float)loss.Ce]);
            int L = p.Config.NumHiddenLayers;
            foreach (Parameter t in p.Trainable)
            {
                if (IsMtp(t.Name, L))
                    continue; // the MTP layer is not part of this loss
                w.AddF32("grad." + t.Name, t.Shape, t.Grad.ToArray());
            }
            w.Save(pr.GetValue(output)!);
            Console.Error.WriteLine($"loss {loss.Ce.ToString("G9", CultureInfo.InvariantCulture)}; wrote gradients to {pr.GetValue(output)}");
            return 0;
        }));
        return cmd;
    }

    private static bool IsMtp(string name, int layers)
    {
        const string prefix = "model.layers.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal))
            return false;
        int dot = name.IndexOf('.', prefix.Length);
        return int.TryParse(name.AsSpan(prefix.Length, dot - prefix.Length), out int l) && l >= layers;
    }

    private static Command Train()
    {
        var config = new Option<string>("--config") { Description = "train.json (model, data, schedule, checkpoints; see TrainOptions)", Required = true };
        var steps = new Option<int?>("--stop-after") { Description = "Stop after this many steps of this invocation (a later run resumes)" };
        var cmd = new Command("train", "Train or fine-tune a model from train.json, resuming from the latest checkpoint") { config, steps };
        cmd.SetAction(pr => CliErrors.Run(() =>
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
                Console.Error.WriteLine($"step {last.Step}: loss {last.Loss.ToString("F4", inv)} (ce {last.Ce.ToString("F4", inv)}, mtp {last.Mtp.ToString("F4", inv)}, bal {last.Balance.ToString("G3", inv)})" +
                                        (o.CheckpointDir is not null ? $"; checkpoints in {o.CheckpointDir}" : ""));
            }
            return 0;
        }));
        return cmd;
    }

    private static Command TrainBench()
    {
        var config = new Option<string>("--config") { Description = "Model config.json (random init) or a checkpoint directory", Required = true };
        var batch = new Option<int>("--batch") { Description = "Sequences per step", DefaultValueFactory = _ => 4 };
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "Timed steps", DefaultValueFactory = _ => 5 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first", DefaultValueFactory = _ => 2 };
        var threads = new Option<int>("--threads") { Description = "Worker threads (0: one per core)", DefaultValueFactory = _ => 0 };
        var mtp = new Option<float>("--mtp-lambda") { Description = "MTP loss weight (0: no MTP)", DefaultValueFactory = _ => 0.3f };
        var balance = new Option<float>("--balance-alpha") { Description = "Sequence-wise balance loss weight (0: none)", DefaultValueFactory = _ => 0f };
        var saveModel = new Option<string?>("--save-model") { Description = "Write the benchmarked initial model here (HF layout) for other frameworks" };
        var ids = new Option<string?>("--save-ids") { Description = "Write the benchmark batch (I64 input_ids [B, T+1]) here" };
        var cmd = new Command("bench-train", "Training throughput (tokens/s) and MFU against a measured FMA peak") { config, batch, seq, steps, warmup, threads, mtp, balance, saveModel, ids };
        cmd.SetAction(pr => CliErrors.Run(() =>
        {
            string src = pr.GetValue(config)!;
            ModelParameters p = File.Exists(Path.Combine(src, "model.safetensors")) || File.Exists(Path.Combine(src, "model.safetensors.index.json"))
                ? ModelParameters.Load(src) : ModelParameters.Random(Model.ModelConfig.Load(src), 1234, 0.02);
            int B = pr.GetValue(batch), T = pr.GetValue(seq);
            int n = pr.GetValue(threads) > 0 ? pr.GetValue(threads) : Environment.ProcessorCount;
            var rng = new Rng(99);
            long[] window = new long[B * (T + 1)];
            for (int i = 0; i < window.Length; i++)
                window[i] = (long)(rng.NextUInt64() % (ulong)p.Config.VocabSize);
            int[] inputs = new int[B * T], targets = new int[B * T];
            for (int b = 0; b < B; b++)
            {
                for (int t = 0; t < T; t++)
                {
                    inputs[b * T + t] = (int)window[b * (T + 1) + t];
                    targets[b * T + t] = (int)window[b * (T + 1) + t + 1];
                }
            }
            if (pr.GetValue(saveModel) is string dir)
                TrainCheckpoint.WriteModel(dir, p, tokenizer: null);
            if (pr.GetValue(ids) is string idsPath)
            {
                var w = new SafetensorsWriter();
                w.AddI64("input_ids", [B, T + 1], window);
                w.Save(idsPath);
            }
            double peak = TrainingBench.MeasureFmaPeak(n);
            using var be = new Tensors.ThreadedBackend(n);
            TrainingBenchResult r = TrainingBench.Run(p, new TrainingModelOptions { BatchSize = B, SequenceLength = T, MtpLambda = pr.GetValue(mtp), BalanceAlpha = pr.GetValue(balance), Backend = be },
                                                      pr.GetValue(warmup), pr.GetValue(steps), inputs, targets, peak);
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["framework"] = "sharpseek",
                ["threads"] = n,
                ["batch"] = B,
                ["seq"] = T,
                ["tokens_per_s"] = Math.Round(r.TokensPerSecond, 1),
                ["s_per_step"] = Math.Round(r.SecondsPerStep, 4),
                ["best_s_per_step"] = Math.Round(r.BestSecondsPerStep, 4),
                ["tokens_per_s_best"] = Math.Round(B * T / r.BestSecondsPerStep, 1),
                ["alloc_bytes_per_step"] = Math.Round(r.AllocatedBytesPerStep),
                ["flops_per_token"] = r.FlopsPerToken,
                ["fma_peak_gflops"] = Math.Round(r.PeakFlops / 1e9, 1),
                ["mfu"] = Math.Round(r.Mfu, 4),
                ["first_loss"] = r.FirstLoss,
                ["last_loss"] = r.LastLoss,
            }));
            return 0;
        }));
        return cmd;
    }

    /// <summary>A one-line progress bar on stderr (plain lines when stderr is redirected).</summary>
    private sealed class ProgressBar(int total, bool plain)
    {
        private DateTime _last = DateTime.MinValue;

        public void Update(StepResult r)
        {
            var inv = CultureInfo.InvariantCulture;
            string stats = $"step {r.Step}/{total} loss {r.Loss.ToString("F4", inv)} lr {r.Lr.ToString("G3", inv)} |g| {r.GradNorm.ToString("F3", inv)} {r.TokensPerSecond.ToString("F0", inv)} tok/s";
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
