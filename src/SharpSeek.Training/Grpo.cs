// Group Relative Policy Optimization (DeepSeekMath §4.1.2, DeepSeek-R1 §2.2.1), outcome supervision:
//   for each prompt q, G completions o_1..o_G from the old policy; rule-based rewards r_i;
//   advantage of every token of o_i:  A_i = (r_i − mean(r)) / (std(r) + eps)   (population std over the group)
//   J = 1/N Σ_i 1/|o_i| Σ_t [ min(ρ_t A_i, clip(ρ_t, 1 − ε, 1 + ε) A_i) − β D_t ],  ρ_t = π(o_t) / π_old(o_t)
//   D_t = π_ref(o_t)/π(o_t) − log(π_ref(o_t)/π(o_t)) − 1   (Schulman's k3 estimator, unbiased and ≥ 0)
// and the loss is −J. Everything per token depends on the token's own log-probability lp only, so the gradient is
//   dloss/dlp = −w_i [ (ρ A_i if the unclipped branch is the minimum, else 0) − β (1 − exp(lp_ref − lp)) ],  w_i = 1/(N |o_i|)
// which TrainingModel's per-token objective turns into dloss/dlogits = dloss/dlp · (onehot − softmax).
//
// grpo.json: the train.json settings (model.init_from, lr, schedule, AdamW, clip, checkpoints, seed, threads, plot)
// plus
//   "data": { "train": "tasks.jsonl", "tokenizer": "dir (default: model.init_from)" },
//   "prompts_per_step": 4, "group_size": 8, "max_completion_tokens": 160, "temperature": 1.0, "top_p": 1.0,
//   "clip_eps": 0.2, "beta": 0.04, "ppo_epochs": 1, "micro_batch": 8,
//   "reward": { "accuracy": 1.0, "format": 0.1 }, "log_jsonl": "run/grpo.jsonl",
//   optionally "data": { ..., "validation": "val.jsonl" } and "validation": { "every": 50, "limit": 300 }: greedy accuracy
//   of the policy on those tasks before the first step and every N steps (logged as validation_accuracy);
//   optionally "dynamic_sampling": { "max_rounds": 4 }: DAPO's dynamic sampling (rounds of prompts_per_step prompts
//   until prompts_per_step groups with differing rewards are found; only those are trained on)
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpSeek.Training;

/// <summary>The GRPO objective's pieces, as plain functions (tested against finite differences).</summary>
public static class GrpoMath
{
    /// <summary>Std floor of the advantage normalisation.</summary>
    public const double Eps = 1e-4;

    /// <summary>
    /// Group-normalised advantages: rewards [groups·G] in consecutive groups of <paramref name="groupSize"/>;
    /// A = (r − mean) / (std + eps) with the population std of the group; 0 for a group whose rewards are all equal.
    /// </summary>
    public static void Advantages(ReadOnlySpan<double> rewards, int groupSize, Span<double> advantages)
    {
        if (groupSize < 1 || rewards.Length % groupSize != 0 || advantages.Length < rewards.Length)
            throw new ArgumentException($"{rewards.Length} rewards do not form groups of {groupSize}");
        for (int g0 = 0; g0 < rewards.Length; g0 += groupSize)
        {
            ReadOnlySpan<double> r = rewards.Slice(g0, groupSize);
            double mean = 0;
            foreach (double x in r)
                mean += x;
            mean /= groupSize;
            double var = 0;
            foreach (double x in r)
                var += (x - mean) * (x - mean);
            double std = Math.Sqrt(var / groupSize);
            for (int i = 0; i < groupSize; i++)
                advantages[g0 + i] = r[i] == mean ? 0 : (r[i] - mean) / (std + Eps);
        }
    }

    /// <summary>The k3 estimate of KL(π || π_ref) at one token: exp(ref − lp) − (ref − lp) − 1.</summary>
    public static double KlK3(double logProb, double refLogProb)
    {
        double d = refLogProb - logProb;
        return Math.Exp(d) - d - 1;
    }

    /// <summary>
    /// Loss of one token, −w [min(ρA, clip(ρ)A) − βD], and its derivative with respect to the token's log-probability
    /// (<paramref name="dLogProb"/>); <paramref name="clipped"/> is true when the clipped branch is the minimum (no
    /// policy gradient then).
    /// </summary>
    public static double TokenLoss(double logProb, double oldLogProb, double refLogProb, double advantage, double weight,
                                   double clipEps, double beta, out double dLogProb, out bool clipped)
    {
        double ratio = Math.Exp(logProb - oldLogProb);
        double unclipped = ratio * advantage;
        double clippedValue = Math.Clamp(ratio, 1 - clipEps, 1 + clipEps) * advantage;
        clipped = clippedValue < unclipped;
        double surrogate = clipped ? clippedValue : unclipped;
        double loss = -weight * surrogate, grad = clipped ? 0 : -weight * unclipped;
        if (beta != 0)
        {
            double e = Math.Exp(refLogProb - logProb);
            loss += weight * beta * (e - (refLogProb - logProb) - 1);
            grad += weight * beta * (1 - e);
        }
        dLogProb = grad;
        return loss;
    }
}

/// <summary>The settings of a GRPO run (grpo.json).</summary>
public sealed record GrpoOptions
{
    public required TrainOptions Train { get; init; }
    public required string TasksFile { get; init; }
    public required string TokenizerDir { get; init; }
    public int PromptsPerStep { get; init; } = 4;
    public int GroupSize { get; init; } = 8;
    public int MaxCompletionTokens { get; init; } = 160;
    public float Temperature { get; init; } = 1f;
    public float TopP { get; init; } = 1f;
    public double ClipEps { get; init; } = 0.2;
    public double Beta { get; init; } = 0.04;
    public int PpoEpochs { get; init; } = 1;
    public int MicroBatch { get; init; } = 8;
    public Tasks.RewardWeights Reward { get; init; } = new();
    public string? LogJsonl { get; init; }
    /// <summary>Greedy accuracy on these tasks every <see cref="ValidationEvery"/> steps (and before the first), logged.</summary>
    public string? ValidationFile { get; init; }
    public int ValidationEvery { get; init; } = 50;
    /// <summary>Tasks of the validation file evaluated (the first ones; 0: all).</summary>
    public int ValidationLimit { get; init; }
    /// <summary>Rounds of sampling a step may take; above 1, groups of equal rewards are dropped (dynamic sampling).</summary>
    public int SamplingRounds { get; init; } = 1;
    /// <summary>Branch groups a step may sample (0: no branch sampling; see GrpoTrainer).</summary>
    public int BranchGroups { get; init; }
    /// <summary>Whether the groups sampled from the prompts are trained on (false: they only give branch points).</summary>
    public bool TrainRoots { get; init; } = true;
    /// <summary>Greedy mining: candidates decoded greedily a round, whose wrongly answered prompts are sampled (0: off).</summary>
    public int MiningCandidates { get; init; }
    /// <summary>Greedy mining: a mined prompt's greedy (wrong) reply is a branch source too, cut where it leaves a best
    /// sampled reply, ahead of the sampled replies' branch points (needs branch sampling).</summary>
    public bool BranchFromGreedy { get; init; }

    private static readonly string[] Extra =
    [
        "data", "prompts_per_step", "group_size", "max_completion_tokens", "temperature", "top_p", "clip_eps", "beta",
        "ppo_epochs", "micro_batch", "reward", "log_jsonl", "validation", "dynamic_sampling", "branch_sampling", "greedy_mining",
    ];

    /// <summary>Reads grpo.json; errors name the file and the field.</summary>
    public static GrpoOptions Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"GRPO config not found: {path}", path);
        return Parse(File.ReadAllText(path), Path.GetDirectoryName(Path.GetFullPath(path))!, path);
    }

    public static GrpoOptions Parse(string json, string baseDir, string source = "grpo.json")
    {
        JsonObject o = TrainOptions.ParseObject(json, source);
        InvalidDataException Err(string field, string msg) => new($"{source}: field '{field}' {msg}");
        TrainOptions train = TrainOptions.Parse(o, baseDir, source, Extra, dataRequired: false);
        if (train.InitFrom is null)
            throw Err("model.init_from", "is missing: GRPO starts from a trained model (the reference policy)");
        if (train.MtpLambda != 0 || train.BalanceAlpha != 0)
            throw Err(train.MtpLambda != 0 ? "mtp_lambda" : "balance_alpha", "must be 0 for GRPO (its loss is the policy objective only)");
        if (o["data"] is not JsonObject d)
            throw Err("data", "is missing: give {\"train\": \"tasks.jsonl\"}");
        foreach (var kv in d)
        {
            if (kv.Key is not ("train" or "tokenizer" or "validation"))
                throw Err("data." + kv.Key, "is not a known setting (known: train, tokenizer, validation)");
        }
        string Str(JsonNode? n, string field) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String
            ? Path.GetFullPath(Path.Combine(baseDir, v.GetValue<string>())) : throw Err(field, "must be a path string");
        string tasks = Str(d["train"], "data.train");
        string tokenizer = d["tokenizer"] is JsonNode tn ? Str(tn, "data.tokenizer") : train.InitFrom;
        if (!File.Exists(Path.Combine(tokenizer, "tokenizer.json")))
            throw Err(d["tokenizer"] is null ? "model.init_from" : "data.tokenizer", $"names {tokenizer}, which has no tokenizer.json (give data.tokenizer)");
        double Num(JsonObject obj, string key, double dflt, double min, double max, string prefix = "")
        {
            JsonNode? n = obj[key];
            if (n is null)
                return dflt;
            if (n.GetValueKind() != JsonValueKind.Number)
                throw Err(prefix + key, $"must be a number, got {n.ToJsonString()}");
            double v = n.GetValue<double>();
            return v >= min && v <= max ? v : throw Err(prefix + key, $"must be in [{min}, {max}], got {v}");
        }
        int Int(string key, int dflt, int min, int max, JsonObject? obj = null, string prefix = "")
        {
            double v = Num(obj ?? o, key, dflt, min, max, prefix);
            return v == Math.Floor(v) ? (int)v : throw Err(prefix + key, $"must be an integer, got {v}");
        }
        // an optional object of known settings: null where absent; an unknown key or a non-object names the field
        JsonObject? Section(string name, string example, params string[] known)
        {
            if (o[name] is JsonObject section)
            {
                foreach (var kv in section)
                {
                    if (!known.Contains(kv.Key))
                        throw Err(name + "." + kv.Key, $"is not a known setting (known: {string.Join(", ", known)})");
                }
                return section;
            }
            return o[name] is null ? null : throw Err(name, $"must be an object {example}");
        }
        var reward = new Tasks.RewardWeights();
        if (Section("reward", "{\"accuracy\": 1, \"format\": 0.1}", "accuracy", "format") is JsonObject r)
            reward = new Tasks.RewardWeights { Accuracy = Num(r, "accuracy", 1, 0, 1e6, "reward."), Format = Num(r, "format", 0.1, 0, 1e6, "reward.") };
        string? validation = d["validation"] is JsonNode vn ? Str(vn, "data.validation") : null;
        if (validation is not null && !File.Exists(validation))
            throw Err("data.validation", $"names {validation}, which does not exist");
        int every = 50, limit = 0;
        if (Section("validation", "{\"every\": 50, \"limit\": 300}", "every", "limit") is JsonObject vo)
        {
            every = Int("every", 50, 1, 1_000_000_000, vo, "validation.");
            limit = Int("limit", 0, 0, 1_000_000_000, vo, "validation.");
            if (validation is null)
                throw Err("validation", "needs data.validation (the task file)");
        }
        int rounds = 1;
        if (Section("dynamic_sampling", "{\"max_rounds\": 4}", "max_rounds") is JsonObject ds)
            rounds = Int("max_rounds", 4, 2, 1024, ds, "dynamic_sampling.");
        int branches = 0, mining = 0;
        bool trainRoots = true, fromGreedy = false;
        if (Section("branch_sampling", "{\"max_groups\": 16, \"train_roots\": true}", "max_groups", "train_roots") is JsonObject bs)
        {
            branches = Int("max_groups", 16, 1, 65536, bs, "branch_sampling.");
            if (bs["train_roots"] is JsonNode tr)
                trainRoots = tr.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? tr.GetValue<bool>() : throw Err("branch_sampling.train_roots", $"must be true or false, got {tr.ToJsonString()}");
        }
        if (Section("greedy_mining", "{\"candidates\": 256, \"branch_from_greedy\": false}", "candidates", "branch_from_greedy") is JsonObject gm)
        {
            mining = Int("candidates", 256, 1, 1 << 20, gm, "greedy_mining.");
            if (gm["branch_from_greedy"] is JsonNode bg)
            {
                fromGreedy = bg.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? bg.GetValue<bool>() : throw Err("greedy_mining.branch_from_greedy", $"must be true or false, got {bg.ToJsonString()}");
                if (fromGreedy && branches == 0)
                    throw Err("greedy_mining.branch_from_greedy", "needs branch_sampling (the greedy replies are branch sources)");
            }
        }
        return new GrpoOptions
        {
            SamplingRounds = rounds,
            BranchGroups = branches,
            TrainRoots = trainRoots,
            MiningCandidates = mining,
            BranchFromGreedy = fromGreedy,
            ValidationFile = validation,
            ValidationEvery = every,
            ValidationLimit = limit,
            Train = train,
            TasksFile = tasks,
            TokenizerDir = tokenizer,
            PromptsPerStep = Int("prompts_per_step", 4, 1, 4096),
            GroupSize = Int("group_size", 8, 2, 1024),
            MaxCompletionTokens = Int("max_completion_tokens", 160, 1, 1 << 20),
            Temperature = (float)Num(o, "temperature", 1, 1e-3, 100),
            TopP = (float)Num(o, "top_p", 1, 1e-6, 1),
            ClipEps = Num(o, "clip_eps", 0.2, 0, 10),
            Beta = Num(o, "beta", 0.04, 0, 1e6),
            PpoEpochs = Int("ppo_epochs", 1, 1, 64),
            MicroBatch = Int("micro_batch", 8, 1, 4096),
            Reward = reward,
            LogJsonl = o["log_jsonl"] is JsonNode lj ? Str(lj, "log_jsonl") : null,
        };
    }
}
