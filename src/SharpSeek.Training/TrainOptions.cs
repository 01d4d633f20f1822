// train.json: everything a training run needs, validated with errors that name the field. Example:
// {
//   "model": { "config": "path/config.json" | { ...config.json fields... }, "init_from": "checkpoint dir", "init_std": 0.02 },
//   "data": { "shards": ["train-000.tokens"] } | { "text": "corpus.txt", "tokenizer": "tokenizer dir or tokenizer.json" },
//   "batch_size": 8, "seq_len": 256, "steps": 1000, "tokens": 0,
//   "lr": 3e-4, "min_lr": 3e-5, "schedule": "cosine" | "wsd" | "constant", "warmup_steps": 100, "decay_steps": 200,
//   "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "decay_norms": true, "clip": 1.0,
//   "mtp_lambda": 0.3, "balance_alpha": 0.0001, "bias_gamma": 0.001,
//   "checkpoint_dir": "run/ckpt", "checkpoint_interval": 100, "keep_checkpoints": 2, "resume": true,
//   "seed": 1234, "threads": 2, "recompute": false, "log_csv": "run/train.csv", "plot": "run/loss.png",
//   "indexer": { "stage": "warmup" | "sparse", "loss_weight": 1.0 }   (DeepSeek-V3.2 models only; absent: dense MLA,
//              the indexer untouched. warmup: only the indexer learns, by KL to the dense attention; sparse: attention
//              over the indexer's top-k, the indexer by KL on its selection, the rest by the LM loss)
// }
// Relative paths are relative to the directory of train.json.
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpSeek.Model;

namespace SharpSeek.Training;

/// <summary>All settings of a training run (the contents of train.json).</summary>
public sealed record TrainOptions
{
    /// <summary>Model configuration for a new (randomly initialized) model; null when <see cref="InitFrom"/> is set.</summary>
    public ModelConfig? Model { get; init; }
    /// <summary>Checkpoint directory to start from (Hugging Face layout, any weight format).</summary>
    public string? InitFrom { get; init; }
    /// <summary>Std of the random init (default: the config's initializer_range, else 0.02).</summary>
    public double InitStd { get; init; } = 0.02;
    /// <summary>Token shard files (src/SharpSeek.Data format).</summary>
    public IReadOnlyList<string> Shards { get; init; } = [];
    /// <summary>A plain text file, tokenized with <see cref="Tokenizer"/> into a shard next to the checkpoints.</summary>
    public string? TextFile { get; init; }
    /// <summary>tokenizer.json or a directory holding it (also copied into checkpoints).</summary>
    public string? Tokenizer { get; init; }
    public int BatchSize { get; init; } = 4;
    public int SequenceLength { get; init; } = 128;
    /// <summary>Optimizer steps (or derived from <see cref="TokenBudget"/>).</summary>
    public int Steps { get; init; } = 100;
    /// <summary>Token budget: when positive, Steps = ceil(TokenBudget / (B·T)).</summary>
    public long TokenBudget { get; init; }
    public LrSchedule Schedule { get; init; } = new();
    public AdamWOptions Optimizer { get; init; } = new();
    /// <summary>Global gradient-norm clip (0: off).</summary>
    public double Clip { get; init; } = 1.0;
    public float MtpLambda { get; init; }
    public float BalanceAlpha { get; init; }
    public float BiasGamma { get; init; }
    public string? CheckpointDir { get; init; }
    /// <summary>Steps between checkpoints (0: only at the end).</summary>
    public int CheckpointInterval { get; init; }
    /// <summary>Checkpoints kept (older ones deleted; 0 keeps all).</summary>
    public int KeepCheckpoints { get; init; } = 2;
    /// <summary>Continue from the latest checkpoint in <see cref="CheckpointDir"/> when there is one.</summary>
    public bool Resume { get; init; } = true;
    public ulong Seed { get; init; } = 1234;
    /// <summary>Worker threads (0: one per core).</summary>
    public int Threads { get; init; }
    public bool Recompute { get; init; }
    public string? LogCsv { get; init; }
    /// <summary>Training of V3.2's lightning indexer ("indexer"): stage and loss weight; null: not trained, attention dense.</summary>
    public SharpSeek.Model.Layers.VariantTrainingOptions? Indexer { get; init; }
    public string? Plot { get; init; }

    /// <summary>Tokens per step, B·T.</summary>
    public long TokensPerStep => (long)BatchSize * SequenceLength;

    /// <summary>Reads train.json.</summary>
    public static TrainOptions Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"training config not found: {path}", path);
        return Parse(File.ReadAllText(path), Path.GetDirectoryName(Path.GetFullPath(path))!, path);
    }

    /// <summary>Parses train.json text; relative paths resolve against <paramref name="baseDir"/>.</summary>
    public static TrainOptions Parse(string json, string baseDir, string source = "train.json") =>
        Parse(ParseObject(json, source), baseDir, source, [], dataRequired: true);

    /// <summary>Reads a JSON object with comments and trailing commas allowed; errors name <paramref name="source"/>.</summary>
    internal static JsonObject ParseObject(string json, string source) => ModelConfig.ParseObject(json, source, allowComments: true);

    /// <summary>
    /// The training settings of a config object; keys in <paramref name="extraKnown"/> belong to the caller (sft.json,
    /// grpo.json) and are skipped; without <paramref name="dataRequired"/> the "data" section is the caller's too.
    /// </summary>
    internal static TrainOptions Parse(JsonObject o, string baseDir, string source, IReadOnlyCollection<string> extraKnown, bool dataRequired)
    {
        InvalidDataException Err(string field, string msg) => new($"{source}: field '{field}' {msg}");
        string? Path_(JsonNode? n, string field) => n is null ? null : n.GetValueKind() == JsonValueKind.String
            ? Path.GetFullPath(Path.Combine(baseDir, n.GetValue<string>())) : throw Err(field, "must be a string");
        double Num(JsonObject obj, string key, double dflt, string prefix = "")
        {
            JsonNode? n = obj[key];
            if (n is null || n.GetValueKind() == JsonValueKind.Null) return dflt;
            if (n.GetValueKind() != JsonValueKind.Number) throw Err(prefix + key, $"must be a number, got {n.ToJsonString()}");
            double v = n.GetValue<double>();
            return double.IsFinite(v) ? v : throw Err(prefix + key, "must be finite");
        }
        int Int(JsonObject obj, string key, int dflt, int min)
        {
            double v = Num(obj, key, dflt);
            if (v != Math.Floor(v) || v < min || v > int.MaxValue) throw Err(key, $"must be an integer >= {min}, got {v}");
            return (int)v;
        }
        bool Bool(JsonObject obj, string key, bool dflt)
        {
            JsonNode? n = obj[key];
            if (n is null || n.GetValueKind() == JsonValueKind.Null) return dflt;
            return n.GetValueKind() switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Err(key, "must be true or false") };
        }
        foreach (var kv in o)
        {
            if (!Known.Contains(kv.Key) && !extraKnown.Contains(kv.Key))
                throw Err(kv.Key, $"is not a known setting (known: {string.Join(", ", Known.Where(k => dataRequired || k != "data").Concat(extraKnown))})");
        }

        // model
        ModelConfig? config = null;
        string? initFrom = null;
        double initStd = 0.02;
        if (o["model"] is not JsonObject m)
            throw Err("model", "is missing: give {\"config\": ...} or {\"init_from\": \"checkpoint dir\"}");
        initFrom = Path_(m["init_from"], "model.init_from");
        JsonNode? cfgNode = m["config"];
        if (cfgNode is JsonObject inline)
        {
            config = ModelConfig.Parse(inline.ToJsonString(), source + ": model.config");
            initStd = inline["initializer_range"] is JsonNode ir && ir.GetValueKind() == JsonValueKind.Number ? ir.GetValue<double>() : 0.02;
        }
        else if (cfgNode is not null && cfgNode.GetValueKind() == JsonValueKind.String)
        {
            string p = Path_(cfgNode, "model.config")!;
            config = ModelConfig.Load(p);
            string file = Directory.Exists(p) ? Path.Combine(p, "config.json") : p;
            initStd = JsonNode.Parse(File.ReadAllText(file))?["initializer_range"] is JsonNode ir && ir.GetValueKind() == JsonValueKind.Number ? ir.GetValue<double>() : 0.02;
        }
        else if (cfgNode is not null)
        {
            throw Err("model.config", "must be a config.json object or a path");
        }
        if ((config is null) == (initFrom is null))
            throw Err("model", "needs exactly one of 'config' (new model) and 'init_from' (checkpoint)");
        initStd = Num(m, "init_std", initStd, "model.");
        if (!(initStd > 0))
            throw Err("model.init_std", "must be positive");

        // data
        var shards = new List<string>();
        string? text = null, tok = Path_(m["tokenizer"], "model.tokenizer");
        if (dataRequired)
        {
            if (o["data"] is not JsonObject d)
                throw Err("data", "is missing: give {\"shards\": [...]} or {\"text\": ..., \"tokenizer\": ...}");
            if (d["shards"] is JsonArray sa)
            {
                foreach (JsonNode? s in sa)
                    shards.Add(Path_(s, "data.shards") ?? throw Err("data.shards", "must hold file paths"));
            }
            else if (d["shards"] is not null)
            {
                throw Err("data.shards", "must be an array of paths");
            }
            text = Path_(d["text"], "data.text");
            tok = Path_(d["tokenizer"] ?? m["tokenizer"], "data.tokenizer");
            if ((shards.Count == 0) == (text is null))
                throw Err("data", "needs exactly one of 'shards' and 'text'");
            if (text is not null && tok is null)
                throw Err("data.tokenizer", "is needed to tokenize a text file");
        }

        int B = Int(o, "batch_size", 4, 1), T = Int(o, "seq_len", 128, 2);
        long budget = (long)Num(o, "tokens", 0);
        int steps = budget > 0 ? (int)Math.Min(int.MaxValue, (budget + (long)B * T - 1) / ((long)B * T)) : Int(o, "steps", 100, 1);
        string kind = o["schedule"]?.GetValue<string>() ?? "cosine";
        var schedule = new LrSchedule
        {
            Kind = kind switch
            {
                "cosine" => LrScheduleKind.Cosine,
                "wsd" => LrScheduleKind.Wsd,
                "constant" => LrScheduleKind.Constant,
                _ => throw Err("schedule", $"is '{kind}'; expected cosine, wsd or constant"),
            },
            MaxLr = Num(o, "lr", 3e-4),
            MinLr = Num(o, "min_lr", 0),
            WarmupSteps = Int(o, "warmup_steps", 0, 0),
            DecaySteps = Int(o, "decay_steps", 0, 0),
            TotalSteps = steps,
        };
        if (!(schedule.MaxLr > 0) || schedule.MinLr < 0 || schedule.MinLr > schedule.MaxLr)
            throw Err("lr", "must be positive and at least min_lr >= 0");
        var opt = new AdamWOptions
        {
            Beta1 = Num(o, "beta1", 0.9),
            Beta2 = Num(o, "beta2", 0.95),
            Eps = Num(o, "eps", 1e-8),
            WeightDecay = Num(o, "weight_decay", 0.1),
            DecayVectors = Bool(o, "decay_norms", true),
        };
        if (opt.Beta1 is < 0 or >= 1 || opt.Beta2 is < 0 or >= 1)
            throw Err("beta1", "and beta2 must be in [0, 1)");
        SharpSeek.Model.Layers.VariantTrainingOptions? indexer = null;
        if (o["indexer"] is JsonNode ixNode)
        {
            if (ixNode is not JsonObject ix)
                throw Err("indexer", "must be an object: {\"stage\": \"warmup\" | \"sparse\", \"loss_weight\": 1.0}");
            foreach (var kv in ix)
            {
                if (kv.Key is not ("stage" or "loss_weight"))
                    throw Err("indexer." + kv.Key, "is not a known setting (known: stage, loss_weight)");
            }
            string stage = ix["stage"] is JsonNode sn && sn.GetValueKind() == JsonValueKind.String ? sn.GetValue<string>()
                : throw Err("indexer.stage", "is missing or not a string: give \"warmup\" or \"sparse\"");
            double weight = Num(ix, "loss_weight", 1.0, "indexer.");
            if (!(weight > 0))
                throw Err("indexer.loss_weight", $"must be positive, got {weight}");
            indexer = new SharpSeek.Model.Layers.VariantTrainingOptions(stage switch
            {
                "warmup" => SharpSeek.Model.Layers.VariantStage.Warmup,
                "sparse" => SharpSeek.Model.Layers.VariantStage.Sparse,
                _ => throw Err("indexer.stage", $"is '{stage}'; expected warmup or sparse"),
            }, (float)weight);
        }
        return new TrainOptions
        {
            Model = config,
            InitFrom = initFrom,
            InitStd = initStd,
            Shards = shards,
            TextFile = text,
            Tokenizer = tok,
            BatchSize = B,
            SequenceLength = T,
            Steps = steps,
            TokenBudget = budget,
            Schedule = schedule,
            Optimizer = opt,
            Clip = Num(o, "clip", 1.0),
            MtpLambda = (float)Num(o, "mtp_lambda", 0),
            BalanceAlpha = (float)Num(o, "balance_alpha", 0),
            BiasGamma = (float)Num(o, "bias_gamma", 0),
            CheckpointDir = Path_(o["checkpoint_dir"], "checkpoint_dir"),
            CheckpointInterval = Int(o, "checkpoint_interval", 0, 0),
            KeepCheckpoints = Int(o, "keep_checkpoints", 2, 0),
            Resume = Bool(o, "resume", true),
            Seed = (ulong)Num(o, "seed", 1234),
            Threads = Int(o, "threads", 0, 0),
            Recompute = Bool(o, "recompute", false),
            LogCsv = Path_(o["log_csv"], "log_csv"),
            Plot = Path_(o["plot"], "plot"),
            Indexer = indexer,
        };
    }

    private static readonly string[] Known =
    [
        "model", "data", "batch_size", "seq_len", "steps", "tokens", "lr", "min_lr", "schedule", "warmup_steps", "decay_steps",
        "beta1", "beta2", "eps", "weight_decay", "decay_norms", "clip", "mtp_lambda", "balance_alpha", "bias_gamma",
        "checkpoint_dir", "checkpoint_interval", "keep_checkpoints", "resume", "seed", "threads", "recompute", "log_csv", "plot",
        "indexer",
    ];
}
