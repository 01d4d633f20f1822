// The training loop end to end: a run stopped between checkpoints and resumed continues bit for bit like an
// uninterrupted run (same thread count); checkpoints load as Hugging Face models; train.json parsing; the loss
// falls on a learnable sequence; CSV and PNG outputs.
using SharpSeek.Data;
using SharpSeek.Model;

namespace SharpSeek.Training.Tests;

public sealed class TrainerTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sharpseek-train-" + Guid.NewGuid().ToString("N"));

    public TrainerTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string Shard(int vocab, int tokens)
    {
        string path = Path.Combine(_dir, "data.tokens");
        if (File.Exists(path))
            return path;
        using TokenShardWriter w = TokenShardWriter.Create(path, vocab, 1);
        // a learnable stream: mostly a repeating pattern, some noise
        var rng = new Rng(42);
        var ids = new int[tokens];
        for (int i = 0; i < tokens; i++)
            ids[i] = rng.NextDouble() < 0.2 ? 2 + (int)(rng.NextUInt64() % (ulong)(vocab - 2)) : 2 + i % 13;
        w.Append(ids);
        w.Commit();
        return path;
    }

    private TrainOptions Options(string run, int steps, int interval) => new()
    {
        Model = TinyModels.V3(vocab: 64),
        InitStd = 0.05,
        Shards = [Shard(64, 4000)],
        BatchSize = 2,
        SequenceLength = 16,
        Steps = steps,
        Schedule = new LrSchedule { Kind = LrScheduleKind.Wsd, MaxLr = 3e-3, MinLr = 3e-4, WarmupSteps = 2, DecaySteps = 3, TotalSteps = steps },
        Clip = 1.0,
        MtpLambda = 0.3f,
        BalanceAlpha = 1e-3f,
        BiasGamma = 1e-3f,
        CheckpointDir = Path.Combine(_dir, run),
        CheckpointInterval = interval,
        KeepCheckpoints = 2,
        Threads = 2,
        Seed = 17,
    };

    [Fact]
    public void ResumedRunMatchesUninterruptedRunBitForBit()
    {
        const int steps = 7;
        double[] full;
        float[][] fullWeights;
        using (Trainer t = Trainer.Create(Options("full", steps, 3)))
        {
            t.Run();
            full = t.History.Select(r => r.Loss).ToArray();
            fullWeights = t.Parameters.Trainable.Select(p => p.Values.ToArray()).ToArray();
        }

        // stop after 5 steps: the checkpoint of step 3 survives, steps 4-5 are lost as in a crash
        using (Trainer t = Trainer.Create(Options("split", steps, 3)))
            t.Run(maxSteps: 5);
        Assert.Equal("step-00000003", File.ReadAllText(Path.Combine(_dir, "split", "latest")).Trim());
        // a half-written checkpoint left by a killed save is ignored and cleaned up
        Directory.CreateDirectory(Path.Combine(_dir, "split", ".step-00000006.123.abc.tmp"));
        using (Trainer t = Trainer.Create(Options("split", steps, 3)))
        {
            Assert.Equal(3, t.Step);
            t.Run();
            Assert.Equal(full, t.History.Select(r => r.Loss).ToArray());
            for (int i = 0; i < fullWeights.Length; i++)
                Assert.Equal(fullWeights[i], t.Parameters.Trainable[i].Values.ToArray());
        }
        Assert.Empty(Directory.GetDirectories(Path.Combine(_dir, "split"), ".step-*"));
    }

    [Fact]
    public void CheckpointLoadsAsAModelAndLossFalls()
    {
        TrainOptions o = Options("learn", 30, 0) with
        {
            Schedule = new LrSchedule { Kind = LrScheduleKind.Cosine, MaxLr = 1e-2, MinLr = 1e-3, WarmupSteps = 3, TotalSteps = 30 },
            LogCsv = Path.Combine(_dir, "learn.csv"),
            Plot = Path.Combine(_dir, "learn.png"),
        };
        using Trainer t = Trainer.Create(o);
        t.Run();
        Assert.True(t.History[^1].Ce < t.History[0].Ce - 0.5, $"loss {t.History[0].Ce} -> {t.History[^1].Ce}");
        TrainingLog.WriteCsv(o.LogCsv!, t.History);
        TrainingLog.WritePlot(o.Plot!, t.History);
        Assert.Equal(31, File.ReadAllLines(o.LogCsv!).Length);
        Assert.True(new FileInfo(o.Plot!).Length > 1000);

        // the checkpoint is a Hugging Face model directory: the inference engine loads it and agrees
        string ckpt = TrainCheckpoint.Latest(o.CheckpointDir!)!;
        using ModelWeights w = WeightLoader.Load(ckpt);
        Assert.Single(w.Mtp);
        int[] ids = TinyModels.Ids(16, 64, 1);
        float[] want = new Transformer(t.Parameters.Weights).Logits(ids), got = new Transformer(w).Logits(ids);
        Assert.Equal(want, got);
        Assert.True(File.Exists(Path.Combine(ckpt, "generation_config.json")));
    }

    [Fact]
    public void TrainJsonParses()
    {
        string json = """
            {
              "model": { "config": { "model_type": "deepseek_v3", "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,
                         "moe_intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "n_routed_experts": 4,
                         "num_experts_per_tok": 2, "n_group": 1, "topk_group": 1, "q_lora_rank": null, "kv_lora_rank": 8,
                         "qk_nope_head_dim": 4, "qk_rope_head_dim": 4, "v_head_dim": 4, "first_k_dense_replace": 1, "initializer_range": 0.01 } },
              "data": { "shards": ["a.tokens"] },
              "batch_size": 2, "seq_len": 8, "tokens": 100, "schedule": "wsd", "lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 1, "decay_steps": 2,
              "mtp_lambda": 0.3, "balance_alpha": 1e-4, "bias_gamma": 1e-3, "checkpoint_dir": "ck", "checkpoint_interval": 2, "threads": 1
            }
            """;
        TrainOptions o = TrainOptions.Parse(json, _dir);
        Assert.Equal(7, o.Steps); // ceil(100 / 16)
        Assert.Equal(0.01, o.InitStd);
        Assert.Equal(LrScheduleKind.Wsd, o.Schedule.Kind);
        Assert.Equal(Path.Combine(_dir, "a.tokens"), o.Shards[0]);
        Assert.Equal(Path.Combine(_dir, "ck"), o.CheckpointDir);
        var e = Assert.Throws<InvalidDataException>(() => TrainOptions.Parse(json.Replace("\"lr\"", "\"learning_rate\""), _dir));
        Assert.Contains("learning_rate", e.Message);
    }

    [Fact]
    public void SchedulesFollowTheirDefinitions()
    {
        var wsd = new LrSchedule { Kind = LrScheduleKind.Wsd, MaxLr = 1, MinLr = 0.1, WarmupSteps = 4, DecaySteps = 5, TotalSteps = 20 };
        Assert.Equal(0.25, wsd.At(0), 12);
        Assert.Equal(1, wsd.At(4));
        Assert.Equal(1, wsd.At(14));
        Assert.Equal(1, wsd.At(15), 12);
        Assert.Equal(0.1, wsd.At(19), 12);
        var cos = new LrSchedule { Kind = LrScheduleKind.Cosine, MaxLr = 1, MinLr = 0, WarmupSteps = 0, TotalSteps = 11 };
        Assert.Equal(0.5, cos.At(5), 12);
        Assert.Equal(0, cos.At(10), 12);
    }

    [Fact]
    public void BiasUpdateMovesTowardBalance()
    {
        ModelConfig c = TinyModels.V3(vocab: 64);
        ModelParameters p = ModelParameters.Random(c, 1, 0.1);
        var m = new TrainingModel(p, new TrainingModelOptions { BatchSize = 2, SequenceLength = 8 });
        int[] ids = TinyModels.Ids(16, 64, 2);
        m.ForwardBackward(ids, ids);
        float[] before = (float[])p.RouterBiases[0].Clone();
        int[] counts = m.ExpertCounts[0];
        LoadBalancing.UpdateBiases(m, 0.01f);
        double mean = counts.Average();
        for (int e = 0; e < counts.Length; e++)
            Assert.Equal(before[e] + 0.01f * Math.Sign(mean - counts[e]), p.RouterBiases[0][e]);
        Assert.True(LoadBalancing.Loads(m)[0].MaxViolation >= 0);
    }
}
