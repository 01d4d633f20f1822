// Training checkpoints in the Hugging Face layout our loader reads, plus what resuming needs:
//   <dir>/step-00000100/config.json, generation_config.json, model.safetensors (every weight in F32, canonical
//     names incl. the MTP layer and router biases), tokenizer files (copied when given),
//     optimizer.safetensors (AdamW moments m.NAME / v.NAME), trainer_state.json (step, tokens, optimizer step,
//     RNG state, data position, loss history)
//   <dir>/latest: the name of the newest complete checkpoint.
// A checkpoint is written into a temporary sibling directory and renamed into place, then 'latest' is replaced
// atomically, so a run killed at any moment leaves the previous checkpoint intact and readable.
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpSeek.Formats.Safetensors;
using SharpSeek.Model;

namespace SharpSeek.Training;

/// <summary>What a checkpoint records besides the weights.</summary>
public sealed record TrainerState
{
    public long Step { get; init; }
    public long Tokens { get; init; }
    public long OptimizerStep { get; init; }
    public ulong RngState { get; init; }
    public string DataState { get; init; } = "";
    /// <summary>Logged rows so far (so a resumed run's log and plot cover the whole run).</summary>
    public IReadOnlyList<StepResult> History { get; init; } = [];
    /// <summary>What a loop other than the pre-training one records (GRPO: its step log), as JSON.</summary>
    public string Extra { get; init; } = "";
}

/// <summary>Writes and reads training checkpoints.</summary>
public static class TrainCheckpoint
{
    public const string LatestFile = "latest";

    /// <summary>Directory name of the checkpoint after <paramref name="step"/> steps.</summary>
    public static string StepName(long step) => $"step-{step:D8}";

    /// <summary>Writes a complete checkpoint of <paramref name="p"/> and <paramref name="opt"/>; returns its directory.</summary>
    public static string Save(string root, ModelParameters p, AdamW opt, TrainerState state, string? tokenizer, int keep, int? trainedLength = null)
    {
        Directory.CreateDirectory(root);
        string name = StepName(state.Step), final = Path.Combine(root, name);
        string tmp = Path.Combine(root, $".{name}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(tmp);
        try
        {
            WriteModel(tmp, p, tokenizer);
            if (trainedLength is int length)
                RecordLength(tmp, length);
            var ow = new SafetensorsWriter();
            for (int i = 0; i < p.Trainable.Count; i++)
            {
                string n = p.Trainable[i].Name;
                ow.AddF32("m." + n, p.Trainable[i].Shape, opt.M[i]);
                ow.AddF32("v." + n, p.Trainable[i].Shape, opt.V[i]);
            }
            ow.AddMetadata("step", opt.Step.ToString(System.Globalization.CultureInfo.InvariantCulture));
            ow.Save(Path.Combine(tmp, "optimizer.safetensors"));
            AtomicFile.WriteText(Path.Combine(tmp, "trainer_state.json"), JsonSerializer.Serialize(state, JsonOptions));
            if (Directory.Exists(final))
                Directory.Delete(final, recursive: true);
            Directory.Move(tmp, final);
        }
        catch
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
        AtomicFile.WriteText(Path.Combine(root, LatestFile), name + "\n");
        Prune(root, keep, name);
        return final;
    }

    /// <summary>Writes config.json, generation_config.json, model.safetensors and tokenizer files into <paramref name="dir"/>.</summary>
    public static void WriteModel(string dir, ModelParameters p, string? tokenizer)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteText(Path.Combine(dir, "config.json"), p.Config.ToJson());
        var gen = new JsonObject { ["_from_model_config"] = true };
        if (p.Config.BosTokenId is int bos) gen["bos_token_id"] = bos;
        if (p.Config.EosTokenIds.Length == 1) gen["eos_token_id"] = p.Config.EosTokenIds[0];
        else if (p.Config.EosTokenIds.Length > 1) gen["eos_token_id"] = new JsonArray(p.Config.EosTokenIds.Select(e => (JsonNode?)e).ToArray());
        AtomicFile.WriteText(Path.Combine(dir, "generation_config.json"), gen.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var w = new SafetensorsWriter();
        w.AddMetadata("format", "pt");
        p.AddTo(w);
        w.Save(Path.Combine(dir, "model.safetensors"));
        if (tokenizer is not null)
        {
            string src = Directory.Exists(tokenizer) ? tokenizer : Path.GetDirectoryName(Path.GetFullPath(tokenizer))!;
            foreach (string f in new[] { Directory.Exists(tokenizer) ? Path.Combine(src, "tokenizer.json") : tokenizer, Path.Combine(src, "tokenizer_config.json") })
            {
                if (File.Exists(f))
                    File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
            }
        }
    }

    /// <summary>
    /// Records in <paramref name="dir"/>/generation_config.json (max_length, Hugging Face's default limit of prompt plus
    /// generated tokens) the sequence length the model was trained on, so generation stops there rather than running on
    /// to max_position_embeddings.
    /// </summary>
    public static void RecordLength(string dir, int length)
    {
        string file = Path.Combine(dir, "generation_config.json");
        JsonObject gen = File.Exists(file) ? JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? new JsonObject() : new JsonObject();
        gen["max_length"] = length;
        AtomicFile.WriteText(file, gen.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The newest complete checkpoint under <paramref name="root"/>, or null.</summary>
    public static string? Latest(string root)
    {
        string latest = Path.Combine(root, LatestFile);
        if (File.Exists(latest))
        {
            string dir = Path.Combine(root, File.ReadAllText(latest).Trim());
            if (File.Exists(Path.Combine(dir, "trainer_state.json")))
                return dir;
        }
        if (!Directory.Exists(root))
            return null;
        return Directory.GetDirectories(root, "step-*").Where(d => File.Exists(Path.Combine(d, "trainer_state.json")))
            .OrderBy(d => d, StringComparer.Ordinal).LastOrDefault();
    }

    /// <summary>Restores weights, router biases and optimizer moments from <paramref name="dir"/>; returns the trainer state.</summary>
    public static TrainerState Load(string dir, ModelParameters p, AdamW opt)
    {
        using (Checkpoint model = Checkpoint.Open(dir))
            p.ReadFrom(model);
        using (Checkpoint o = Checkpoint.FromFiles(dir, [Path.Combine(dir, "optimizer.safetensors")], weightMap: null))
        {
            for (int i = 0; i < p.Trainable.Count; i++)
            {
                Parameter t = p.Trainable[i];
                o.ReadFloats("m." + t.Name, t.Shape).CopyTo(opt.M[i], 0);
                o.ReadFloats("v." + t.Name, t.Shape).CopyTo(opt.V[i], 0);
            }
        }
        TrainerState s = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(Path.Combine(dir, "trainer_state.json")), JsonOptions)
            ?? throw new InvalidDataException($"{dir}/trainer_state.json is empty");
        opt.Step = s.OptimizerStep;
        return s;
    }

    /// <summary>
    /// Prepares checkpoint directory <paramref name="root"/> for a run (null: no checkpoints): removes the temporaries an
    /// interrupted save left, then, when <paramref name="resume"/>, calls <paramref name="restore"/> with the latest
    /// checkpoint if there is one.
    /// </summary>
    public static void Open(string? root, bool resume, Action<string> restore)
    {
        if (root is null)
            return;
        CleanTemporaries(root);
        if (resume && Latest(root) is string latest)
            restore(latest);
    }

    /// <summary>Removes temporary directories of interrupted saves.</summary>
    public static void CleanTemporaries(string root)
    {
        if (!Directory.Exists(root))
            return;
        foreach (string d in Directory.GetDirectories(root, ".step-*.tmp"))
        {
            try { Directory.Delete(d, recursive: true); } catch (IOException) { }
        }
    }

    private static void Prune(string root, int keep, string newest)
    {
        if (keep <= 0)
            return;
        string[] all = Directory.GetDirectories(root, "step-*").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        foreach (string d in all.Take(Math.Max(0, all.Length - keep)))
        {
            if (d != newest)
                Directory.Delete(Path.Combine(root, d), recursive: true);
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
}
