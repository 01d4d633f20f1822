// sharpseek bench-train: training throughput (tokens/s) and MFU against a measured FMA peak.
using System.CommandLine;
using System.Globalization;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Training;

namespace SharpSeek.Cli;

internal static class BenchTrainCommand
{
    public static Command Create()
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
        cmd.SetAction(pr =>
        {
            string src = pr.GetValue(config)!;
            ModelParameters p = File.Exists(Path.Combine(src, "model.safetensors")) || File.Exists(Path.Combine(src, "model.safetensors.index.json"))
                ? ModelParameters.Load(src) : ModelParameters.Random(Model.ModelConfig.Load(src), 1234, 0.02);
            int B = pr.GetValue(batch), T = pr.GetValue(seq);
            if (B < 1 || T < 1)
                throw new UserInputException($"--batch and --seq must be >= 1, got {B} and {T}");
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
        });
        return cmd;
    }
}
