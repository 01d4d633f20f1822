// The training loop (llm.c train_gpt2.c main): per step zero the gradients, forward+backward one batch, clip and
// apply AdamW at the scheduled learning rate, move the router biases (aux-loss-free balancing), log, and
// checkpoint every N steps. Resuming restores weights, biases, optimizer moments, step, RNG and data position, so
// a resumed run continues with exactly the numbers an uninterrupted run would produce (same thread count).
using System.Diagnostics;
using SharpSeek.Model;
using SharpSeek.Model.Layers;
using SharpSeek.Tensors;

namespace SharpSeek.Training;

/// <summary>One logged training step.</summary>
/// <param name="Step">Steps completed (1 for the first).</param>
/// <param name="Tokens">Training tokens consumed so far.</param>
/// <param name="Indexer">The attention variant's loss (V3.2 indexer KL, mean over layers); 0 when none is trained.</param>
public sealed record StepResult(long Step, long Tokens, double Loss, double Ce, double Mtp, double Balance, double Lr,
                                double GradNorm, double TokensPerSecond, double Imbalance, double Indexer = 0);

/// <summary>Runs training as configured by <see cref="TrainOptions"/>.</summary>
public sealed class Trainer : IDisposable
{
    private readonly ITrainingData _data;
    private readonly ComputeBackend _be;
    private readonly IDisposable? _ownedBackend;
    private readonly int[] _inputs, _targets;
    private readonly List<StepResult> _history = [];
    private readonly Rng _rng;

    private Trainer(TrainOptions o, ModelParameters p, ITrainingData data)
    {
        Options = o;
        Parameters = p;
        _data = data;
        int threads = o.Threads > 0 ? o.Threads : Environment.ProcessorCount;
        if (threads > 1)
        {
            var tb = new ThreadedBackend(threads);
            _be = tb;
            _ownedBackend = tb;
        }
        else
        {
            _be = ComputeBackend.Cpu;
        }
        Model = new TrainingModel(p, new TrainingModelOptions
        {
            BatchSize = o.BatchSize,
            SequenceLength = o.SequenceLength,
            Recompute = o.Recompute,
            MtpLambda = o.MtpLambda,
            BalanceAlpha = o.BalanceAlpha,
            Backend = _be,
            Variant = o.Indexer,
        });
        if (o.Indexer is { Stage: VariantStage.Warmup })
        {
            // warm-up: only the indexer learns
            var own = new HashSet<Parameter>(p.VariantParameters);
            Optimizer = new AdamW(p.Trainable, o.Optimizer, own.Contains);
        }
        else
        {
            Optimizer = new AdamW(p.Trainable, o.Optimizer);
        }
        _inputs = new int[o.BatchSize * o.SequenceLength];
        _targets = new int[_inputs.Length];
        _rng = new Rng(Rng.Mix(o.Seed ^ 0x7261696E));
    }

    public TrainOptions Options { get; }
    public ModelParameters Parameters { get; }
    public TrainingModel Model { get; }
    public AdamW Optimizer { get; }

    /// <summary>Steps completed.</summary>
    public long Step { get; private set; }

    /// <summary>Tokens consumed.</summary>
    public long Tokens { get; private set; }

    /// <summary>Every step logged so far (including those before a resume).</summary>
    public IReadOnlyList<StepResult> History => _history;

    /// <summary>The checkpoint this run resumed from, if any.</summary>
    public string? ResumedFrom { get; private set; }

    /// <summary>
    /// Builds the model (random init, or from <see cref="TrainOptions.InitFrom"/>), the data source and the optimizer,
    /// and resumes from the latest checkpoint when <see cref="TrainOptions.Resume"/> is set and one exists.
    /// </summary>
    public static Trainer Create(TrainOptions o, ITrainingData? data = null)
    {
        ModelParameters p = o.InitFrom is not null
            ? ModelParameters.Load(o.InitFrom)
            : ModelParameters.Random(o.Model!, o.Seed, o.InitStd);
        if (o.Indexer is not null && p.Config.Indexer is null)
            throw new InvalidDataException($"train.json: field 'indexer' needs a model with a lightning indexer (deepseek_v32), not {p.Config.ModelType}");
        if (data is null)
        {
            IReadOnlyList<string> shards = o.Shards;
            if (o.TextFile is not null)
            {
                string dir = o.CheckpointDir ?? Path.GetDirectoryName(o.TextFile)!;
                Directory.CreateDirectory(dir);
                string shard = Path.Combine(dir, Path.GetFileNameWithoutExtension(o.TextFile) + ".tokens");
                ShardData.TokenizeText(o.TextFile, o.Tokenizer!, shard, p.Config.VocabSize);
                shards = [shard];
            }
            data = new ShardData(shards, o.BatchSize, o.SequenceLength, o.Seed, p.Config.VocabSize);
        }
        var t = new Trainer(o, p, data);
        try
        {
            TrainCheckpoint.Open(o.CheckpointDir, o.Resume, t.Resume);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>Restores everything from checkpoint directory <paramref name="dir"/>.</summary>
    public void Resume(string dir)
    {
        TrainerState s = TrainCheckpoint.Load(dir, Parameters, Optimizer);
        Step = s.Step;
        Tokens = s.Tokens;
        _rng.State = s.RngState;
        _data.RestoreState(s.DataState);
        _history.Clear();
        _history.AddRange(s.History);
        ResumedFrom = dir;
    }

    /// <summary>Runs one optimizer step and returns its log row.</summary>
    public StepResult TrainStep()
    {
        var sw = Stopwatch.StartNew();
        _data.NextBatch(_inputs, _targets);
        Parameters.ZeroGrad(_be);
        LossBreakdown loss = Model.ForwardBackward(_inputs, _targets);
        double lr = Options.Schedule.At(Step);
        double norm = Optimizer.Update(_be, lr, Options.Clip);
        if (Options.Indexer is not { Stage: VariantStage.Warmup }) // warm-up: the main model (router biases too) is frozen
            LoadBalancing.UpdateBiases(Model, Options.BiasGamma);
        double imbalance = LoadBalancing.MeanMaxViolation(Model);
        Step++;
        Tokens += Options.TokensPerStep;
        double seconds = sw.Elapsed.TotalSeconds;
        var r = new StepResult(Step, Tokens, loss.Total, loss.Ce, loss.Mtp, loss.Balance, lr, norm,
                               Options.TokensPerStep / Math.Max(seconds, 1e-9), imbalance, loss.Variant);
        _history.Add(r);
        return r;
    }

    /// <summary>
    /// Trains until <see cref="TrainOptions.Steps"/> (or <paramref name="maxSteps"/> more steps, to stop early),
    /// checkpointing every <see cref="TrainOptions.CheckpointInterval"/> steps and at the end.
    /// </summary>
    public void Run(Action<StepResult>? onStep = null, int maxSteps = int.MaxValue, CancellationToken cancel = default)
    {
        int done = 0;
        while (Step < Options.Steps && done < maxSteps)
        {
            cancel.ThrowIfCancellationRequested();
            StepResult r = TrainStep();
            done++;
            onStep?.Invoke(r);
            bool last = Step == Options.Steps;
            if (Options.CheckpointDir is not null && (last || (Options.CheckpointInterval > 0 && Step % Options.CheckpointInterval == 0)))
                SaveCheckpoint();
        }
    }

    /// <summary>Writes a checkpoint of the current state; returns its directory.</summary>
    public string SaveCheckpoint()
    {
        string root = Options.CheckpointDir ?? throw new InvalidOperationException("no checkpoint_dir configured");
        var state = new TrainerState
        {
            Step = Step,
            Tokens = Tokens,
            OptimizerStep = Optimizer.Step,
            RngState = _rng.State,
            DataState = _data.SaveState(),
            History = _history.ToArray(),
        };
        int trained = Math.Max(Options.SequenceLength, Options.InitFrom is null ? 0 : Inference.ModelSession.ReadTrainedLength(Options.InitFrom) ?? 0);
        return TrainCheckpoint.Save(root, Parameters, Optimizer, state, Options.Tokenizer, Options.KeepCheckpoints, trained);
    }

    public void Dispose()
    {
        _data.Dispose();
        _ownedBackend?.Dispose();
    }
}
