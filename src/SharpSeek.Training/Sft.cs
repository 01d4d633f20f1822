// Supervised fine-tuning on chat-format examples (DeepSeek-R1 §2.3.3, "cold start" SFT): every example is a prompt
// (the conversation rendered by the chat template with its generation prompt) and a completion (the final assistant
// reply, EOS appended); the loss covers the completion tokens only (targets of the prompt tokens are −1). Examples
// are packed whole into rows of seq_len + 1 tokens in a shuffled order per epoch (a new row when the next one does
// not fit; the rest of a row is padding without loss), as pre-training packs documents: no attention mask between
// examples of a row, each starts with BOS. Runs on the pre-training Trainer (AdamW, schedules, atomic checkpoints,
// exact resume: the data position is (epoch, batch)).
//
// sft.json: the train.json settings (model.init_from, batch_size, seq_len, steps, lr, schedule, checkpoints, ...)
// with a different "data" section, and "epochs" as an alternative to "steps":
//   "data": { "train": "tasks.jsonl" | ["a.jsonl", ...], "tokenizer": "dir (default: model.init_from)",
//             "template": "r1" (default) | "model" (the tokenizer's own chat template) }
// Lines of the data files: {"prompt": "...", "response": "<think>\n...", ...} (task files) or
// {"messages": [{"role": "user", "content": "..."}, ..., {"role": "assistant", "content": "..."}]}.
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpSeek.Tokenizer;
using SharpSeek.Training.Tasks;

namespace SharpSeek.Training;

/// <summary>One tokenized example: prompt ids (no loss) and completion ids (loss; EOS last).</summary>
public sealed record SftExample(int[] Prompt, int[] Completion)
{
    public int Length => Prompt.Length + Completion.Length;
}

/// <summary>The settings of an SFT run (sft.json).</summary>
public sealed record SftOptions
{
    public required TrainOptions Train { get; init; }
    public required IReadOnlyList<string> DataFiles { get; init; }
    /// <summary>Tokenizer directory (tokenizer.json, tokenizer_config.json).</summary>
    public required string TokenizerDir { get; init; }
    /// <summary>Render prompts with the R1 template (else the tokenizer's own).</summary>
    public bool R1Template { get; init; } = true;
    /// <summary>Epochs over the data; when positive, steps = epochs · batches per epoch.</summary>
    public int Epochs { get; init; }

    private static readonly string[] Extra = ["data", "epochs"];

    /// <summary>Reads sft.json; errors name the file and the field.</summary>
    public static SftOptions Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"SFT config not found: {path}", path);
        string baseDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return Parse(File.ReadAllText(path), baseDir, path);
    }

    public static SftOptions Parse(string json, string baseDir, string source = "sft.json")
    {
        JsonObject o = TrainOptions.ParseObject(json, source);
        InvalidDataException Err(string field, string msg) => new($"{source}: field '{field}' {msg}");
        TrainOptions train = TrainOptions.Parse(o, baseDir, source, Extra, dataRequired: false);
        if (train.InitFrom is null)
            throw Err("model.init_from", "is missing: SFT starts from a trained model directory or checkpoint");
        if (o["data"] is not JsonObject d)
            throw Err("data", "is missing: give {\"train\": \"tasks.jsonl\"}");
        var files = new List<string>();
        switch (d["train"])
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                files.Add(Path.GetFullPath(Path.Combine(baseDir, v.GetValue<string>())));
                break;
            case JsonArray a when a.Count > 0:
                foreach (JsonNode? n in a)
                {
                    files.Add(n is JsonValue s && s.GetValueKind() == JsonValueKind.String ? Path.GetFullPath(Path.Combine(baseDir, s.GetValue<string>()))
                        : throw Err("data.train", "must hold file paths"));
                }
                break;
            default:
                throw Err("data.train", "must be a file path or a non-empty array of them");
        }
        foreach (var kv in d)
        {
            if (kv.Key is not ("train" or "tokenizer" or "template"))
                throw Err("data." + kv.Key, "is not a known setting (known: train, tokenizer, template)");
        }
        string tokenizer = d["tokenizer"] is JsonNode tn
            ? (tn is JsonValue tv && tv.GetValueKind() == JsonValueKind.String ? Path.GetFullPath(Path.Combine(baseDir, tv.GetValue<string>())) : throw Err("data.tokenizer", "must be a string"))
            : train.InitFrom;
        if (!File.Exists(Path.Combine(tokenizer, "tokenizer.json")))
            throw Err(d["tokenizer"] is null ? "model.init_from" : "data.tokenizer", $"names {tokenizer}, which has no tokenizer.json (give data.tokenizer)");
        string template = d["template"] is null ? "r1" : d["template"] is JsonValue tp && tp.GetValueKind() == JsonValueKind.String ? tp.GetValue<string>() : throw Err("data.template", "must be a string");
        if (template is not ("r1" or "model"))
            throw Err("data.template", $"is '{template}'; expected r1 or model");
        int epochs = 0;
        if (o["epochs"] is JsonNode en)
        {
            if (en.GetValueKind() != JsonValueKind.Number || !en.AsValue().TryGetValue(out epochs) || epochs < 1)
                throw Err("epochs", $"must be an integer >= 1, got {en.ToJsonString()}");
            if (o["steps"] is not null || o["tokens"] is not null)
                throw Err("epochs", "and 'steps' (or 'tokens') do not go together");
        }
        return new SftOptions { Train = train, DataFiles = files, TokenizerDir = tokenizer, R1Template = template == "r1", Epochs = epochs };
    }

    /// <summary>
    /// Loads the tokenizer and the examples, derives the steps from <see cref="Epochs"/>, points checkpoints at a
    /// tokenizer directory with the R1 template (under checkpoint_dir) and returns the trainer's options and data.
    /// </summary>
    public (TrainOptions Options, SftData Data) Prepare()
    {
        BpeTokenizer tok = BpeTokenizer.LoadFromDirectory(TokenizerDir);
        ChatTemplate template = R1Template ? R1Format.Template(tok) : ChatTemplate.FromConfig(tok.Config);
        var examples = new List<SftExample>();
        foreach (string f in DataFiles)
            examples.AddRange(SftData.Read(f, tok, template, Train.SequenceLength + 1));
        var data = new SftData(examples, Train.BatchSize, Train.SequenceLength, Train.Seed);
        TrainOptions o = Train;
        if (Epochs > 0)
        {
            int steps = checked(Epochs * data.BatchesPerEpoch);
            o = o with { Steps = steps, Schedule = o.Schedule with { TotalSteps = steps } };
        }
        string tokenizerForCheckpoints = TokenizerDir;
        if (R1Template && o.CheckpointDir is not null)
            tokenizerForCheckpoints = R1Format.WriteTokenizerDirectory(TokenizerDir, Path.Combine(o.CheckpointDir, "tokenizer"));
        return (o with { Tokenizer = tokenizerForCheckpoints }, data);
    }
}

/// <summary>Packed, masked batches of SFT examples with a resumable position (epoch, batch).</summary>
public sealed class SftData : ITrainingData
{
    private readonly IReadOnlyList<SftExample> _examples;
    private readonly int _B, _T;
    private readonly ulong _seed;
    private List<(int Start, int Count)> _rows = [];   // per row: a run of examples in _order
    private int[] _order = [];
    private long _epoch = -1, _batch;

    public SftData(IReadOnlyList<SftExample> examples, int batchSize, int sequenceLength, ulong seed)
    {
        if (examples.Count == 0)
            throw new ArgumentException("no SFT examples");
        foreach (SftExample e in examples)
        {
            if (e.Length > sequenceLength + 1)
                throw new ArgumentException($"an example of {e.Length} tokens does not fit seq_len + 1 = {sequenceLength + 1}");
        }
        _examples = examples;
        _B = batchSize;
        _T = sequenceLength;
        _seed = seed;
        StartEpoch(0);
        BatchesPerEpoch = (_rows.Count + _B - 1) / _B;
    }

    /// <summary>Batches in the first epoch (later epochs pack their own order; the count may differ by one).</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>Number of examples.</summary>
    public int Count => _examples.Count;

    /// <summary>Completion tokens (with loss) over all examples.</summary>
    public long CompletionTokens => _examples.Sum(e => (long)e.Completion.Length);

    private void StartEpoch(long epoch)
    {
        _epoch = epoch;
        _batch = 0;
        // Fisher-Yates with a stream per epoch
        _order = Enumerable.Range(0, _examples.Count).ToArray();
        var rng = new Rng(Rng.Mix(_seed ^ Rng.Mix((ulong)epoch + 0x5346540000UL)));
        for (int i = _order.Length - 1; i > 0; i--)
        {
            int j = (int)(rng.NextUInt64() % (ulong)(i + 1));
            (_order[i], _order[j]) = (_order[j], _order[i]);
        }
        _rows = [];
        int start = 0, used = 0;
        for (int i = 0; i < _order.Length; i++)
        {
            int len = _examples[_order[i]].Length;
            if (used + len > _T + 1)
            {
                _rows.Add((start, i - start));
                start = i;
                used = 0;
            }
            used += len;
        }
        _rows.Add((start, _order.Length - start));
    }

    /// <summary>Fills one row: inputs [T], targets [T] (−1 outside completions and in the padding).</summary>
    internal void FillRow(int row, Span<int> inputs, Span<int> targets)
    {
        inputs.Clear();
        targets.Fill(-1);
        if (row < 0)
            return; // an empty row completes the last batch of an epoch
        (int start, int count) = _rows[row];
        int p = 0; // position of the next token in the row's T + 1 tokens
        for (int k = start; k < start + count; k++)
        {
            SftExample e = _examples[_order[k]];
            for (int i = 0; i < e.Length; i++, p++)
            {
                bool completion = i >= e.Prompt.Length;
                int id = completion ? e.Completion[i - e.Prompt.Length] : e.Prompt[i];
                if (p < _T)
                    inputs[p] = id;
                if (p > 0 && completion)
                    targets[p - 1] = id; // predicted from the token before it
            }
        }
    }

    public void NextBatch(Span<int> inputs, Span<int> targets)
    {
        if (_batch * _B >= _rows.Count)
            StartEpoch(_epoch + 1);
        for (int b = 0; b < _B; b++)
        {
            long row = _batch * _B + b;
            FillRow(row < _rows.Count ? (int)row : -1, inputs.Slice(b * _T, _T), targets.Slice(b * _T, _T));
        }
        _batch++;
    }

    public string SaveState() => JsonSerializer.Serialize(new[] { _epoch, _batch });

    public void RestoreState(string state)
    {
        long[] v = JsonSerializer.Deserialize<long[]>(state) ?? throw new InvalidDataException("empty SFT data state");
        if (v.Length != 2 || v[0] < 0 || v[1] < 0)
            throw new InvalidDataException($"SFT data state '{state}' is not [epoch, batch]");
        StartEpoch(v[0]);
        _batch = v[1];
    }

    public void Dispose()
    {
    }

    /// <summary>
    /// Reads the examples of a data file (task or chat lines, see the file header); errors name the file, the line and
    /// the field; an example longer than <paramref name="maxTokens"/> is an error.
    /// </summary>
    public static List<SftExample> Read(string path, BpeTokenizer tokenizer, ChatTemplate template, int maxTokens)
    {
        var list = new List<SftExample>();
        foreach ((JsonObject o, Func<string, InvalidDataException> Err) in JsonLines.Read(path, "SFT data file"))
        {
            IReadOnlyList<ChatMessage> context;
            string reply;
            if (o["messages"] is JsonNode mn)
            {
                List<ChatMessage> messages;
                try
                {
                    messages = ChatMessage.ParseJson(mn.ToJsonString(), "messages").ToList();
                }
                catch (Exception e) when (e is InvalidDataException or JsonException or ArgumentException)
                {
                    throw Err($"field 'messages': {e.Message}");
                }
                if (messages.Count < 2 || messages[^1].Role != "assistant" || messages[^1].Content is null)
                    throw Err("field 'messages' must end with an assistant message with content (the reply trained on)");
                reply = messages[^1].Content!;
                context = messages.Take(messages.Count - 1).ToList();
            }
            else
            {
                string prompt = o["prompt"] is JsonValue pv && pv.GetValueKind() == JsonValueKind.String ? pv.GetValue<string>()
                    : throw Err("field 'prompt' is missing or not a string (or give 'messages')");
                reply = o["response"] is JsonValue rv && rv.GetValueKind() == JsonValueKind.String ? rv.GetValue<string>()
                    : throw Err("field 'response' is missing or not a string (the worked reply to train on)");
                context = [ChatMessage.User(prompt)];
            }
            int[] p, c;
            try
            {
                p = R1Format.EncodePrompt(tokenizer, template, context);
                c = R1Format.EncodeCompletion(tokenizer, template, reply);
            }
            catch (ArgumentException e)
            {
                throw Err($"field '{(o["messages"] is null ? "response" : "messages")}': {e.Message}");
            }
            if (p.Length + c.Length > maxTokens)
                throw Err($"the example has {p.Length + c.Length} tokens, more than seq_len + 1 = {maxTokens}");
            list.Add(new SftExample(p, c));
        }
        if (list.Count == 0)
            throw new InvalidDataException($"{path}: no examples (the file is empty)");
        return list;
    }
}
