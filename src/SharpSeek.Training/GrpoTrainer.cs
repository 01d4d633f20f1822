// The GRPO loop (Grpo.cs has the objective). Per step:
//   1. the next prompts_per_step tasks (a shuffled order per epoch, resumable), each rendered with the R1 template;
//   2. group_size completions per prompt from the current policy through Generator.GenerateBatch (one forward per
//      decode step over every unfinished completion: the inference engine's batched path over the same fp32 weights
//      the trainer updates), seeded by (seed, step);
//   3. rewards (Tasks.Answers: accuracy of the last \boxed{} after </think>, format), group-normalised advantages;
//   4. ppo_epochs passes over the completions in micro-batches (rows sorted by length, padded to a multiple of 32
//      tokens; padding and prompt tokens have no loss): reference log-probabilities (β > 0) from the frozen initial
//      model, the per-token objective's backward through the training model, one AdamW step per pass. The old
//      policy's log-probabilities are those of the first pass (ratio 1 there, exactly);
//   With dynamic sampling (DAPO, Yu et al. 2025 §3.2), steps 1-3 repeat over further prompts until prompts_per_step
//   groups whose rewards differ are found (at most max_rounds rounds), and only those groups are trained on: a group
//   of equal rewards has zero advantage, so at high accuracy most of a plain batch carries no policy gradient;
//   With branch sampling, every group whose rewards differ also gives branches: for a completion below the group's
//   best reward, the longest token prefix it shares with a best completion ends where it went its own way (at this
//   accuracy, the slip); a new group of group_size completions is sampled from prompt + that prefix, judged on prefix +
//   continuation, and trained on (continuation tokens only) when its rewards differ. Where a slip is likely but not
//   certain, such a group contrasts continuations from the state that decides, instead of whole replies that share
//   ~all of their tokens (cf. VinePPO, Kazemnejad et al. 2024: Monte Carlo rollouts from intermediate states);
//   With greedy mining, a round's prompts are those of the next mining candidates that the policy answers wrong
//   greedily (greedy accuracy moves only where the most likely token is wrong; at ~99% accuracy the slips sampled at
//   T = 1 are mostly elsewhere), and with train_roots false only the branch groups are trained on: a wrong reply's
//   tokens before its slip are the policy's usual, right steps and get no negative advantage; with branch_from_greedy
//   the greedy (wrong) reply of each mined prompt is a branch source too, first in line: the state where it leaves
//   its group's best replies is where the argmax went wrong, which a reply sampled at T = 1 seldom passes through;
//   5. the step's log row (reward, accuracy, format rate, completion length, KL, clip fraction, tokens/s).
// Checkpoints hold weights, AdamW moments, the step, the task position and the log, so a resumed run continues
// exactly like an uninterrupted one (same thread count).
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SharpSeek.Inference;
using SharpSeek.Model;
using SharpSeek.Tensors;
using SharpSeek.Tokenizer;
using SharpSeek.Training.Tasks;

namespace SharpSeek.Training;

/// <summary>One logged GRPO step.</summary>
public sealed record GrpoStep
{
    public long Step { get; init; }
    public double Reward { get; init; }
    public double RewardStd { get; init; }
    public double Accuracy { get; init; }
    public double FormatRate { get; init; }
    public double CompletionLength { get; init; }
    /// <summary>Mean k3 KL to the reference per completion token (first pass).</summary>
    public double Kl { get; init; }
    /// <summary>Fraction of completion tokens whose clipped branch was the minimum (over all passes).</summary>
    public double ClipFraction { get; init; }
    public double Loss { get; init; }
    public double GradNorm { get; init; }
    public double Lr { get; init; }
    /// <summary>Completion tokens sampled per second.</summary>
    public double SamplingTokensPerSecond { get; init; }
    /// <summary>Sequence tokens (prompt and completion) through forward and backward per second.</summary>
    public double TrainingTokensPerSecond { get; init; }
    public double SamplingSeconds { get; init; }
    public double TrainingSeconds { get; init; }
    /// <summary>Groups sampled this step (prompts_per_step, or more with dynamic sampling).</summary>
    public int SampledGroups { get; init; }
    /// <summary>Groups trained on: all sampled, or with dynamic sampling those whose rewards differ (at most prompts_per_step).</summary>
    public int TrainedGroups { get; init; }
    /// <summary>Greedy accuracy on the validation tasks after this step (null where not evaluated; step 0: before training).</summary>
    public double? ValidationAccuracy { get; init; }
    /// <summary>Branch groups sampled (branch sampling; 0 without).</summary>
    public int BranchGroups { get; init; }
    /// <summary>Branch groups trained on (those whose rewards differ).</summary>
    public int BranchTrained { get; init; }
    /// <summary>Accuracy of the branch groups' completions (null where none was sampled).</summary>
    public double? BranchAccuracy { get; init; }
    /// <summary>Greedy mining: candidate tasks decoded greedily this step (0 without mining).</summary>
    public int MinedTasks { get; init; }
    /// <summary>Greedy mining: candidates the greedy policy answered wrong (the step's prompts come from these).</summary>
    public int MinedWrong { get; init; }
    /// <summary>Branch groups sampled from where a mined greedy reply went wrong (branch_from_greedy; part of BranchGroups).</summary>
    public int GreedyBranchGroups { get; init; }
    /// <summary>Of those, the groups trained on (rewards differ).</summary>
    public int GreedyBranchTrained { get; init; }
}

/// <summary>Runs GRPO as configured by <see cref="GrpoOptions"/>.</summary>
public sealed class GrpoTrainer : IDisposable
{
    private const int LengthBucket = 32;
    private readonly ComputeBackend _be;
    private readonly IDisposable? _ownedBackend;
    private readonly ModelParameters? _ref;
    private readonly Dictionary<int, TrainingModel> _models = [], _refModels = [];
    private readonly List<TaskExample> _tasks;
    private readonly int[][] _promptIds;
    private readonly Generator _generator;
    private readonly List<GrpoStep> _history = [];
    private readonly string _checkpointTokenizer;
    private Func<TaskExample, IReadOnlyList<int>, double>? _reward;
    private int[] _order = [];
    private long _epoch, _cursor;

    private GrpoTrainer(GrpoOptions o)
    {
        Options = o;
        TrainOptions t = o.Train;
        Tokenizer = BpeTokenizer.LoadFromDirectory(o.TokenizerDir);
        Parameters = ModelParameters.Load(t.InitFrom!);
        if (o.Beta > 0)
            _ref = ModelParameters.Load(t.InitFrom!);
        Optimizer = new AdamW(Parameters.Trainable, t.Optimizer);
        _tasks = TaskSet.Read(o.TasksFile);
        ChatTemplate template = R1Format.Template(Tokenizer);
        _promptIds = _tasks.Select(x => R1Format.EncodePrompt(Tokenizer, template, x.Prompt)).ToArray();
        int context = Math.Min(Parameters.Config.MaxPositionEmbeddings, ModelSession.ReadTrainedLength(t.InitFrom!) ?? int.MaxValue);
        for (int i = 0; i < _promptIds.Length; i++)
        {
            if (_promptIds[i].Length + o.MaxCompletionTokens > context)
                throw new InvalidDataException($"{o.TasksFile}: task {i + 1} has a prompt of {_promptIds[i].Length} tokens; with max_completion_tokens {o.MaxCompletionTokens} it passes the model's context of {context}");
        }
        // checkpoints carry the R1 chat template, so chat opens the think block the policy learns to close
        _checkpointTokenizer = t.CheckpointDir is null ? o.TokenizerDir : R1Format.WriteTokenizerDirectory(o.TokenizerDir, Path.Combine(t.CheckpointDir, "tokenizer"));
        int threads = t.Threads > 0 ? t.Threads : Environment.ProcessorCount;
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
        _generator = new Generator(new Transformer(Parameters.Weights, _be), Tokenizer, contextLength: context);
        _template = template;
        if (o.ValidationFile is not null)
        {
            List<TaskExample> v = TaskSet.Read(o.ValidationFile);
            _validation = o.ValidationLimit > 0 && v.Count > o.ValidationLimit ? v.GetRange(0, o.ValidationLimit) : v;
        }
        StartEpoch(0);
    }

    private readonly ChatTemplate _template;
    private readonly List<TaskExample>? _validation;

    /// <summary>Greedy accuracy of the current policy on the validation tasks (NaN without any).</summary>
    public double Validate(CancellationToken cancel = default) => _validation is null ? double.NaN
        : TaskEvaluator.Evaluate(_generator, _template, _validation, Options.MaxCompletionTokens, 64, cancel: cancel).Accuracy;

    public GrpoOptions Options { get; }
    public ModelParameters Parameters { get; }
    public AdamW Optimizer { get; }
    public BpeTokenizer Tokenizer { get; }

    /// <summary>Steps completed.</summary>
    public long Step { get; private set; }

    /// <summary>Every step logged so far (including those before a resume).</summary>
    public IReadOnlyList<GrpoStep> History => _history;

    /// <summary>The checkpoint this run resumed from, if any.</summary>
    public string? ResumedFrom { get; private set; }

    /// <summary>Loads the policy and the reference, and resumes from the latest checkpoint when configured.</summary>
    public static GrpoTrainer Create(GrpoOptions o) => Create(o, null);

    /// <summary>As <see cref="Create(GrpoOptions)"/>, with a reward (task, completion ids with EOS) replacing the rule-based one (tests).</summary>
    internal static GrpoTrainer Create(GrpoOptions o, Func<TaskExample, IReadOnlyList<int>, double>? reward)
    {
        var g = new GrpoTrainer(o) { _reward = reward };
        try
        {
            TrainCheckpoint.Open(o.Train.CheckpointDir, o.Train.Resume, g.Resume);
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    private void Resume(string dir)
    {
        TrainerState s = TrainCheckpoint.Load(dir, Parameters, Optimizer);
        Step = s.Step;
        long[] pos = JsonSerializer.Deserialize<long[]>(s.DataState) ?? throw new InvalidDataException($"{dir}: empty task position");
        if (pos.Length != 2)
            throw new InvalidDataException($"{dir}/trainer_state.json: task position '{s.DataState}' is not [epoch, index]");
        StartEpoch(pos[0]);
        _cursor = pos[1];
        _history.Clear();
        if (s.Extra.Length > 0)
            _history.AddRange(JsonSerializer.Deserialize<List<GrpoStep>>(s.Extra) ?? []);
        ResumedFrom = dir;
    }

    private void StartEpoch(long epoch)
    {
        _epoch = epoch;
        _cursor = 0;
        _order = Enumerable.Range(0, _tasks.Count).ToArray();
        var rng = new Rng(Rng.Mix(Options.Train.Seed ^ Rng.Mix((ulong)epoch + 0x4752504FUL)));
        for (int i = _order.Length - 1; i > 0; i--)
        {
            int j = (int)(rng.NextUInt64() % (ulong)(i + 1));
            (_order[i], _order[j]) = (_order[j], _order[i]);
        }
    }

    private int NextTask()
    {
        if (_cursor >= _order.Length)
            StartEpoch(_epoch + 1);
        return _order[_cursor++];
    }

    /// <summary>Trains until the configured steps (or <paramref name="maxSteps"/> more), checkpointing as configured.</summary>
    public void Run(Action<GrpoStep>? onStep = null, int maxSteps = int.MaxValue, CancellationToken cancel = default)
    {
        TrainOptions t = Options.Train;
        int done = 0;
        if (_validation is not null && Step == 0 && _history.Count == 0 && maxSteps > 0)
        {
            var before = new GrpoStep { Step = 0, ValidationAccuracy = Validate(cancel) };
            _history.Add(before);
            onStep?.Invoke(before);
        }
        while (Step < t.Steps && done < maxSteps)
        {
            cancel.ThrowIfCancellationRequested();
            GrpoStep r = TrainStep(cancel);
            if (_validation is not null && (Step % Options.ValidationEvery == 0 || Step == t.Steps))
            {
                r = r with { ValidationAccuracy = Validate(cancel) };
                _history[^1] = r;
            }
            done++;
            onStep?.Invoke(r);
            bool last = Step == t.Steps;
            if (t.CheckpointDir is not null && (last || (t.CheckpointInterval > 0 && Step % t.CheckpointInterval == 0)))
                SaveCheckpoint();
        }
    }

    /// <summary>Writes a checkpoint; returns its directory.</summary>
    public string SaveCheckpoint()
    {
        TrainOptions t = Options.Train;
        string root = t.CheckpointDir ?? throw new InvalidOperationException("no checkpoint_dir configured");
        var state = new TrainerState
        {
            Step = Step,
            OptimizerStep = Optimizer.Step,
            DataState = JsonSerializer.Serialize(new[] { _epoch, _cursor }),
            Extra = JsonSerializer.Serialize(_history),
        };
        return TrainCheckpoint.Save(root, Parameters, Optimizer, state, _checkpointTokenizer, t.KeepCheckpoints, Inference.ModelSession.ReadTrainedLength(t.InitFrom!));
    }

    // one sampled completion: its task, the completion tokens it was sampled after (a branch's prefix; none for a
    // reply sampled from the prompt), its sampled tokens (with EOS), the text of prefix + tokens (without EOS),
    // verdict and reward
    private sealed record Scored(int Task, int[] Prefix, IReadOnlyList<int> Tokens, string Text, Verdict Verdict, double Reward);

    /// <summary>One completion of a step, for inspection: <paramref name="PrefixTokens"/> reply tokens were given (a
    /// branch's prefix, context only), <paramref name="Tokens"/> were sampled after them and trained on.</summary>
    public sealed record Sample(int Task, string Text, int Tokens, bool Correct, bool FormatOk, double Reward, double Advantage, int PrefixTokens = 0);

    /// <summary>The completions of the last step.</summary>
    public IReadOnlyList<Sample> LastSamples { get; private set; } = [];

    /// <summary>Samples, scores and trains one step; returns its log row.</summary>
    public GrpoStep TrainStep(CancellationToken cancel = default)
    {
        GrpoOptions o = Options;
        int P = o.PromptsPerStep, G = o.GroupSize;

        // 1-3. prompts, their groups of completions, rewards and advantages; with dynamic sampling, further rounds of
        // prompts until P groups whose rewards differ are found (or the rounds run out), and only those are trained on
        var clock = Stopwatch.StartNew();
        var kept = new List<Scored>();   // the completions trained on, group after group
        int correct = 0, formatted = 0, sampled = 0, groups = 0, rounds = 0;
        long completionTokens = 0;
        double rewardSum = 0, rewardSquares = 0;
        int mined = 0, minedWrong = 0;
        var greedyWrong = new Dictionary<int, Scored>(); // mined prompt -> its greedy reply (branch_from_greedy)
        var roots = new List<Scored[]>();                 // with it, every group sampled from a prompt, trained or not
        while (groups < P && rounds < o.SamplingRounds)
        {
            int[] prompts;
            if (o.MiningCandidates > 0)
            {
                // greedy mining: the round's prompts are those of the next candidates the greedy policy answers wrong
                int[] candidates = Enumerable.Range(0, o.MiningCandidates).Select(_ => NextTask()).ToArray();
                var greedy = new GenerationOptions { MaxTokens = o.MaxCompletionTokens, SkipSpecialTokens = false, Sampling = SamplingOptions.Greedy };
                IReadOnlyList<GenerationResult> replies = _generator.GenerateBatch(candidates.Select(t => (IReadOnlyList<int>)_promptIds[t]).ToArray(), greedy, cancel);
                var wrong = new List<int>();
                for (int i = 0; i < candidates.Length; i++)
                {
                    Scored g = Score(candidates[i], [], replies[i]);
                    if (g.Verdict.Correct)
                        continue;
                    wrong.Add(candidates[i]);
                    if (o.BranchFromGreedy)
                        greedyWrong[candidates[i]] = g;
                }
                prompts = [.. wrong];
                mined += candidates.Length;
                minedWrong += prompts.Length;
                if (prompts.Length > P - groups)
                    prompts = prompts[..(P - groups)];
            }
            else
            {
                prompts = Enumerable.Range(0, P).Select(_ => NextTask()).ToArray();
            }
            int R = prompts.Length;
            if (R == 0)
            {
                rounds++;
                continue;
            }
            var roundTask = new int[R * G];
            for (int p = 0; p < R; p++)
                Array.Fill(roundTask, prompts[p], p * G, G);
            ulong seed = Rng.Mix(o.Train.Seed ^ Rng.Mix((ulong)Step + 1));
            if (rounds > 0)
                seed = Rng.Mix(seed ^ (ulong)rounds);
            IReadOnlyList<GenerationResult> round = _generator.GenerateBatch(roundTask.Select(t => (IReadOnlyList<int>)_promptIds[t]).ToArray(),
                                                                             SampledReplies(o.MaxCompletionTokens, seed), cancel);
            rounds++;
            var group = new Scored[G];
            for (int p = 0; p < R; p++)
            {
                for (int g = 0; g < G; g++)
                {
                    Scored x = Score(roundTask[p * G + g], [], round[p * G + g]);
                    group[g] = x;
                    Verdict v = x.Verdict;
                    double reward = x.Reward;
                    correct += v.Correct ? 1 : 0;
                    formatted += v.FormatOk ? 1 : 0;
                    completionTokens += x.Tokens.Count;
                    rewardSum += reward;
                    rewardSquares += reward * reward;
                    sampled++;
                }
                if (o.BranchFromGreedy)
                    roots.Add([.. group]);
                bool informative = group.Any(x => x.Reward != group[0].Reward);
                if ((o.SamplingRounds > 1 && !informative) || groups == P)
                    continue;
                groups++;
                kept.AddRange(group);
            }
        }
        (int branchGroups, int branchTrained, int branchCorrect, int greedyBranches, int greedyTrained) = o.BranchGroups > 0 ? Branch(kept, roots, greedyWrong, cancel) : (0, 0, 0, 0, 0);
        if (!o.TrainRoots)
            kept.RemoveAll(x => x.Prefix.Length == 0); // the groups sampled from the prompts only found the branch points
        double sampleSeconds = clock.Elapsed.TotalSeconds;
        int N = kept.Count;
        var adv = new double[N];
        GrpoMath.Advantages(kept.Select(x => x.Reward).ToArray(), G, adv);
        LastSamples = Enumerable.Range(0, N).Select(i => new Sample(kept[i].Task, kept[i].Text, kept[i].Tokens.Count, kept[i].Verdict.Correct,
                                                                      kept[i].Verdict.FormatOk, kept[i].Reward, adv[i], kept[i].Prefix.Length)).ToArray();

        // 4. sequences (a branch's prefix is context, like the prompt), micro-batches by length
        var seqs = new int[N][];
        var promptLen = new int[N];
        for (int i = 0; i < N; i++)
        {
            int[] prompt = _promptIds[kept[i].Task];
            promptLen[i] = prompt.Length + kept[i].Prefix.Length;
            seqs[i] = [.. prompt, .. kept[i].Prefix, .. kept[i].Tokens];
        }
        int[] byLength = Enumerable.Range(0, N).OrderBy(i => seqs[i].Length).ThenBy(i => i).ToArray();
        int M = o.MicroBatch;
        var oldLp = new float[N][];   // per sequence, per completion token: the first pass's log-probabilities
        var refLp = new float[N][];
        for (int i = 0; i < N; i++)
        {
            oldLp[i] = new float[seqs[i].Length - promptLen[i]];
            refLp[i] = new float[oldLp[i].Length];
        }
        clock.Restart();
        double lr = o.Train.Schedule.At(Step), norm = 0, loss = 0, klSum = 0;
        long clippedTokens = 0, lossTokens = 0, trainTokens = 0;
        for (int epoch = 0; epoch < o.PpoEpochs; epoch++)
        {
            Parameters.ZeroGrad(_be);
            loss = 0;
            for (int m0 = 0; m0 < N; m0 += M)
            {
                int rows = Math.Min(M, N - m0);
                int maxLen = 0;
                for (int k = 0; k < rows; k++)
                    maxLen = Math.Max(maxLen, seqs[byLength[m0 + k]].Length - 1);
                int T = (maxLen + LengthBucket - 1) / LengthBucket * LengthBucket;
                TrainingModel model = ModelFor(_models, Parameters, M, T);
                var inputs = new int[M * T];
                var targets = new int[M * T];
                Array.Fill(targets, -1);
                var rowSeq = new int[M];
                Array.Fill(rowSeq, -1);
                for (int k = 0; k < rows; k++)
                {
                    int i = byLength[m0 + k];
                    rowSeq[k] = i;
                    int[] s = seqs[i];
                    for (int t = 0; t < s.Length - 1; t++)
                    {
                        inputs[k * T + t] = s[t];
                        if (t + 1 >= promptLen[i])
                            targets[k * T + t] = s[t + 1];
                    }
                    trainTokens += s.Length - 1;
                }
                var refRow = new float[M * T];
                if (_ref is not null && epoch == 0)
                {
                    ModelFor(_refModels, _ref, M, T).LogProbs(inputs, targets, refRow);
                    for (int k = 0; k < rows; k++)
                    {
                        int i = rowSeq[k];
                        for (int j = 0; j < refLp[i].Length; j++)
                            refLp[i][j] = refRow[k * T + promptLen[i] - 1 + j];
                    }
                }
                var objective = new Objective(o, T, rowSeq, promptLen, adv, oldLp, refLp, firstPass: epoch == 0, N);
                var lp = new float[M * T];
                loss += model.ForwardBackward(inputs, targets, objective.Run, lp);
                if (epoch == 0)
                {
                    for (int k = 0; k < rows; k++)
                    {
                        int i = rowSeq[k];
                        for (int j = 0; j < oldLp[i].Length; j++)
                            oldLp[i][j] = lp[k * T + promptLen[i] - 1 + j];
                    }
                }
                foreach (byte c in objective.Clipped)
                    clippedTokens += c;
                if (epoch == 0)
                {
                    foreach (double kl in objective.Kl)
                        klSum += kl;
                }
                lossTokens += objective.Tokens;
            }
            if (N > 0)
                norm = Optimizer.Update(_be, lr, o.Train.Clip);
        }
        double trainSeconds = clock.Elapsed.TotalSeconds;
        Step++;
        double meanReward = rewardSum / sampled;
        var row = new GrpoStep
        {
            Step = Step,
            Reward = meanReward,
            RewardStd = Math.Sqrt(Math.Max(0, rewardSquares / sampled - meanReward * meanReward)),
            Accuracy = (double)correct / sampled,
            FormatRate = (double)formatted / sampled,
            CompletionLength = (double)completionTokens / sampled,
            SampledGroups = sampled / G,
            TrainedGroups = o.TrainRoots ? groups : 0,
            Kl = klSum / Math.Max(1, oldLp.Sum(x => (long)x.Length)),
            ClipFraction = (double)clippedTokens / Math.Max(1, lossTokens),
            Loss = loss,
            GradNorm = norm,
            Lr = lr,
            SamplingTokensPerSecond = completionTokens / Math.Max(sampleSeconds, 1e-9),
            TrainingTokensPerSecond = trainTokens / Math.Max(trainSeconds, 1e-9),
            SamplingSeconds = sampleSeconds,
            TrainingSeconds = trainSeconds,
            BranchGroups = branchGroups,
            BranchTrained = branchTrained,
            BranchAccuracy = branchGroups > 0 ? (double)branchCorrect / (branchGroups * G) : null,
            MinedTasks = mined,
            MinedWrong = minedWrong,
            GreedyBranchGroups = greedyBranches,
            GreedyBranchTrained = greedyTrained,
        };
        _history.Add(row);
        return row;
    }

    // How the policy's replies are sampled (special tokens kept: EOS ends a reply), seeded by seed.
    private GenerationOptions SampledReplies(int maxTokens, ulong seed) => new()
    {
        MaxTokens = maxTokens,
        SkipSpecialTokens = false,
        Sampling = new SamplingOptions { Temperature = Options.Temperature, TopP = Options.TopP, Seed = (long)(seed >> 2) },
    };

    // A completion sampled after the prompt and prefix: judged (and rewarded) as the whole reply prefix + tokens, cut
    // at max_completion_tokens of reply as a reply sampled from the prompt would be.
    private Scored Score(int task, int[] prefix, GenerationResult r)
    {
        IReadOnlyList<int> tokens = r.Tokens;
        bool eos = r.FinishReason == FinishReason.Stop;
        int room = Options.MaxCompletionTokens - prefix.Length;
        if (tokens.Count > room)
        {
            tokens = tokens.Take(room).ToArray();
            eos = false;
        }
        int[] reply = [.. prefix, .. tokens];
        string text = Tokenizer.Decode(reply.AsSpan(0, reply.Length - (eos ? 1 : 0)).ToArray());
        Verdict v = Answers.Judge(text, _tasks[task].Answer, eos);
        double reward = _reward is null ? Options.Reward.Of(v) : _reward(_tasks[task], reply);
        return new Scored(task, prefix, tokens, text, v, reward);
    }

    // Branch sampling (see the top of the file): from the groups in kept (consecutive, group_size each), at most
    // branch_groups branch points, a group sampled from each, those whose rewards differ appended to kept. The greedy
    // replies of mined prompts (branch_from_greedy) give their points first, against the best replies of their
    // prompt's group (roots: trained or not; all right is the clearest case): the state where the most likely reply
    // goes wrong is the one greedy accuracy depends on.
    private (int Sampled, int Trained, int Correct, int FromGreedy, int FromGreedyTrained) Branch(List<Scored> kept, List<Scored[]> roots, IReadOnlyDictionary<int, Scored> greedy, CancellationToken cancel)
    {
        int G = Options.GroupSize;
        var points = new List<(int Task, int[] Prefix)>();
        void Add(Scored w, IEnumerable<Scored> best)
        {
            int shared = 0;
            foreach (Scored b in best)
            {
                int n = 0;
                while (n < w.Tokens.Count && n < b.Tokens.Count && w.Tokens[n] == b.Tokens[n])
                    n++;
                shared = Math.Max(shared, n);
            }
            // a branch point past the first token (before it, a branch is another group from the prompt) with a reply
            // token left to sample within the budget
            if (shared > 0 && shared < w.Tokens.Count && w.Prefix.Length + shared < Options.MaxCompletionTokens && points.Count < Options.BranchGroups)
                points.Add((w.Task, [.. w.Prefix, .. w.Tokens.Take(shared)]));
        }
        foreach (Scored[] group in roots)
        {
            double best = group.Max(x => x.Reward);
            if (greedy.TryGetValue(group[0].Task, out Scored? w) && w.Reward < best)
                Add(w, group.Where(x => x.Reward == best));
        }
        int fromGreedy = points.Count;
        for (int g0 = 0; g0 + G <= kept.Count && points.Count < Options.BranchGroups; g0 += G)
        {
            List<Scored> group = kept.GetRange(g0, G);
            double best = group.Max(x => x.Reward);
            if (group.All(x => x.Reward == best))
                continue;
            foreach (Scored w in group.Where(x => x.Reward < best))
                Add(w, group.Where(x => x.Reward == best));
        }
        if (points.Count == 0)
            return (0, 0, 0, 0, 0);
        var prompts = new IReadOnlyList<int>[points.Count * G];
        for (int p = 0; p < points.Count; p++)
        {
            int[] ids = [.. _promptIds[points[p].Task], .. points[p].Prefix];
            for (int g = 0; g < G; g++)
                prompts[p * G + g] = ids;
        }
        ulong seed = Rng.Mix(Options.Train.Seed ^ Rng.Mix((ulong)Step + 1) ^ 0x4252414E4348UL);
        IReadOnlyList<GenerationResult> results = _generator.GenerateBatch(prompts, SampledReplies(Options.MaxCompletionTokens - points.Min(x => x.Prefix.Length), seed), cancel);
        int trained = 0, correct = 0, greedyTrained = 0;
        var scored = new Scored[G];
        for (int p = 0; p < points.Count; p++)
        {
            for (int g = 0; g < G; g++)
            {
                scored[g] = Score(points[p].Task, points[p].Prefix, results[p * G + g]);
                correct += scored[g].Verdict.Correct ? 1 : 0;
            }
            if (scored.Any(x => x.Reward != scored[0].Reward))
            {
                kept.AddRange(scored);
                trained++;
                greedyTrained += p < fromGreedy ? 1 : 0;
            }
        }
        return (points.Count, trained, correct, fromGreedy, greedyTrained);
    }

    private TrainingModel ModelFor(Dictionary<int, TrainingModel> cache, ModelParameters p, int rows, int T)
    {
        if (!cache.TryGetValue(T, out TrainingModel? m))
        {
            m = new TrainingModel(p, new TrainingModelOptions { BatchSize = rows, SequenceLength = T, Recompute = Options.Train.Recompute, Backend = _be });
            cache[T] = m;
        }
        return m;
    }

    // The per-token objective of one micro-batch: row r = k·T + t predicts token t+1 of sequence rowSeq[k]
    // (completion token j = t + 1 − promptLen). Called from several threads; writes only its own row's slots.
    private sealed class Objective
    {
        private readonly GrpoOptions _o;
        private readonly int _T, _n;
        private readonly int[] _rowSeq, _promptLen;
        private readonly double[] _adv;
        private readonly float[][] _old, _ref;
        private readonly bool _first;

        public Objective(GrpoOptions o, int T, int[] rowSeq, int[] promptLen, double[] adv, float[][] old, float[][] refLp, bool firstPass, int sequences)
        {
            _o = o;
            _T = T;
            _rowSeq = rowSeq;
            _promptLen = promptLen;
            _adv = adv;
            _old = old;
            _ref = refLp;
            _first = firstPass;
            _n = sequences;
            Clipped = new byte[rowSeq.Length * T];
            Kl = new double[rowSeq.Length * T];
            int tokens = 0;
            foreach (int i in rowSeq)
            {
                if (i >= 0)
                    tokens += old[i].Length;
            }
            Tokens = tokens;
        }

        public byte[] Clipped { get; }
        public double[] Kl { get; }
        public int Tokens { get; }

        public double Run(int row, float logProb, out float dLogProb)
        {
            int k = row / _T, t = row % _T, i = _rowSeq[k];
            int j = t + 1 - _promptLen[i];
            double old = _first ? logProb : _old[i][j];
            double refLp = _o.Beta > 0 ? _ref[i][j] : logProb;
            double weight = 1.0 / (_n * (double)_old[i].Length);
            double loss = GrpoMath.TokenLoss(logProb, old, refLp, _adv[i], weight, _o.ClipEps, _o.Beta, out double d, out bool clipped);
            Clipped[row] = clipped ? (byte)1 : (byte)0;
            Kl[row] = _o.Beta > 0 ? GrpoMath.KlK3(logProb, refLp) : 0;
            dLogProb = (float)d;
            return loss;
        }
    }

    /// <summary>The log as JSON lines (atomically).</summary>
    public static void WriteLog(string path, IEnumerable<GrpoStep> rows)
    {
        var sb = new StringBuilder();
        foreach (GrpoStep r in rows)
            sb.Append(JsonSerializer.Serialize(r, LogJson)).Append('\n');
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        Formats.Safetensors.AtomicFile.WriteText(path, sb.ToString());
    }

    /// <summary>Reward and accuracy (and greedy validation accuracy, where evaluated) against the step into
    /// <paramref name="path"/>, completion length into PATH-length.png.</summary>
    public static void WritePlots(string path, IReadOnlyList<GrpoStep> rows, string title = "GRPO")
    {
        GrpoStep[] trained = rows.Where(r => r.Step > 0).ToArray(); // step 0: the validation before training only
        double[] steps = trained.Select(r => (double)r.Step).ToArray();
        void Save(string file, string ylabel, params (string Name, double[] X, double[] Y)[] series)
        {
            var plt = new ScottPlot.Plot();
            foreach ((string name, double[] x, double[] y) in series)
            {
                if (x.Length == 0)
                    continue;
                var s = plt.Add.Scatter(x, y);
                s.LegendText = name;
                s.MarkerSize = x.Length > 60 ? 0 : 4;
            }
            plt.Title(title);
            plt.XLabel("step");
            plt.YLabel(ylabel);
            plt.ShowLegend();
            string dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
            Directory.CreateDirectory(dir);
            string tmp = Path.Combine(dir, $".{Path.GetFileName(file)}.{Environment.ProcessId}.tmp.png");
            plt.SavePng(tmp, 800, 500);
            File.Move(tmp, file, overwrite: true);
        }
        GrpoStep[] validated = rows.Where(r => r.ValidationAccuracy is not null).ToArray();
        Save(path, "reward / rate", ("reward", steps, trained.Select(r => r.Reward).ToArray()), ("accuracy (sampled)", steps, trained.Select(r => r.Accuracy).ToArray()),
             ("format", steps, trained.Select(r => r.FormatRate).ToArray()),
             ("validation accuracy (greedy)", validated.Select(r => (double)r.Step).ToArray(), validated.Select(r => r.ValidationAccuracy!.Value).ToArray()));
        string lengthPlot = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, Path.GetFileNameWithoutExtension(path) + "-length.png");
        Save(lengthPlot, "tokens", ("mean completion length", steps, trained.Select(r => r.CompletionLength).ToArray()));
    }

    private static readonly JsonSerializerOptions LogJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    public void Dispose() => _ownedBackend?.Dispose();

    /// <summary>A one-line summary of a step (CLI progress).</summary>
    public static string Describe(GrpoStep r, long total)
    {
        var inv = CultureInfo.InvariantCulture;
        if (r.Step == 0)
            return $"before training: validation accuracy {r.ValidationAccuracy?.ToString("F3", inv)}";
        return $"step {r.Step}/{total} reward {r.Reward.ToString("F3", inv)} acc {r.Accuracy.ToString("F3", inv)} fmt {r.FormatRate.ToString("F2", inv)} " +
               (r.SampledGroups != r.TrainedGroups ? $"groups {r.TrainedGroups}/{r.SampledGroups} " : "") +
               (r.MinedTasks > 0 ? $"greedy wrong {r.MinedWrong}/{r.MinedTasks} " : "") +
               (r.BranchGroups > 0 ? $"branches {r.BranchTrained}/{r.BranchGroups} (acc {r.BranchAccuracy?.ToString("F3", inv)}) " : "") +
               (r.GreedyBranchGroups > 0 ? $"from greedy {r.GreedyBranchTrained}/{r.GreedyBranchGroups} " : "") +
               $"len {r.CompletionLength.ToString("F1", inv)} kl {r.Kl.ToString("G3", inv)} clip {r.ClipFraction.ToString("F3", inv)} " +
               $"sample {r.SamplingTokensPerSecond.ToString("F0", inv)} tok/s train {r.TrainingTokensPerSecond.ToString("F0", inv)} tok/s" +
               (r.ValidationAccuracy is double v ? $" validation accuracy {v.ToString("F3", inv)}" : "");
    }
}
