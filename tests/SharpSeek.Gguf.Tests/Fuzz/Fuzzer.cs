// Fuzz harness for the untrusted inputs SharpSeek reads: GGUF files (reader, deepseek2 config, tokenizer metadata,
// weights, one forward pass), safetensors checkpoints (header, tensors against config.json, one forward pass),
// config.json and tokenizer.json. Each case mutates a valid seed (Mutator) and runs the target on it; the target may
// refuse the input only with InvalidDataException or NotSupportedException naming the file. Anything else is a finding:
// another exception (a crash: IndexOutOfRange, NullReference, Overflow, OutOfMemory, ArgumentOutOfRange...), a case
// running past the time limit (a hang), or one allocating more than the input could justify (an allocation sized by
// untrusted input). Findings keep their input under the artifacts folder, named by target, seed and case.
using System.Diagnostics;
using System.Text;
using SharpSeek.Formats.Gguf;
using SharpSeek.Model;
using SharpSeek.Model.Gguf;
using SharpSeek.Tokenizer;

namespace SharpSeek.Gguf.Tests.Fuzz;

/// <summary>One fuzz target: its seeds and what runs on a mutated input written to <c>path</c>.</summary>
internal sealed record FuzzTarget(string Name, string FileName, IReadOnlyList<byte[]> Seeds, int HotBytes, bool Json, Action<string> Run);

internal sealed record FuzzFinding(string Key, long Case, string Detail, string InputPath);

internal sealed class FuzzReport
{
    public long Cases, Refused, Accepted;
    public long MaxAllocated;
    public double MaxSeconds;
    public Dictionary<string, int> Refusals { get; } = new(StringComparer.Ordinal);
    public List<FuzzFinding> Findings { get; } = [];

    public string Summary(string target) =>
        $"{target}: {Cases} cases, {Accepted} accepted, {Refused} refused, {Findings.Count} findings " +
        $"({Findings.Select(f => f.Key).Distinct().Count()} distinct), slowest case {MaxSeconds:F2} s, largest allocation {MaxAllocated / 1e6:F1} MB";
}

internal static class Fuzzer
{
    /// <summary>Time one case may take before it counts as a hang.</summary>
    public static readonly TimeSpan CaseLimit = TimeSpan.FromSeconds(20);

    /// <summary>Bytes a case may allocate: a fixed budget for the engine's own buffers plus a multiple of the input.</summary>
    public static long AllocationLimit(long inputLength) => (64L << 20) + 32 * inputLength;

    public static FuzzReport Run(FuzzTarget target, ulong seed, long cases, string workDir, string artifactsDir, Action<string>? log = null)
    {
        Directory.CreateDirectory(workDir);
        string path = Path.Combine(workDir, target.FileName);
        var report = new FuzzReport();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        for (long i = 0; i < cases; i++)
        {
            var m = new Mutator(seed * 0x9E3779B97F4A7C15UL ^ (ulong)i * 0xD1B54A32D192ED03UL);
            byte[] seedInput = target.Seeds[m.Next(target.Seeds.Count)];
            byte[] input = target.Json ? m.MutateJson(seedInput) : m.MutateBinary(seedInput, target.HotBytes);
            File.WriteAllBytes(path, input);
            report.Cases++;
            (string? key, string? detail, long allocated, double seconds) = RunOne(target, path, input.Length, report);
            report.MaxAllocated = Math.Max(report.MaxAllocated, allocated);
            report.MaxSeconds = Math.Max(report.MaxSeconds, seconds);
            if (key is null)
                continue;
            string saved = Path.Combine(artifactsDir, $"{target.Name}-seed{seed}-case{i}{Path.GetExtension(target.FileName)}");
            if (seen.Add(key))
            {
                Directory.CreateDirectory(artifactsDir);
                File.WriteAllBytes(saved, input);
                log?.Invoke($"finding in {target.Name} (seed {seed}, case {i}): {key}\n{detail}\n  input: {saved}");
            }
            report.Findings.Add(new FuzzFinding(key, i, detail!, saved));
            if (report.Findings.Count >= 200)
                break;
            if (key.StartsWith("hang", StringComparison.Ordinal))
                break; // the stuck case still runs on its thread; later timings would mean nothing
        }
        log?.Invoke($"{report.Summary(target.Name)}, {clock.Elapsed.TotalSeconds:F0} s ({report.Cases / Math.Max(clock.Elapsed.TotalSeconds, 1e-9):F0} cases/s)");
        return report;
    }

    private static (string? Key, string? Detail, long Allocated, double Seconds) RunOne(FuzzTarget target, string path, long inputLength, FuzzReport report)
    {
        Exception? error = null;
        long before = GC.GetTotalAllocatedBytes(precise: false);
        var sw = Stopwatch.StartNew();
        var task = Task.Factory.StartNew(() =>
        {
            try
            {
                target.Run(path);
            }
            catch (Exception e)
            {
                error = e;
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!task.Wait(CaseLimit))
            return ($"hang: no result after {CaseLimit.TotalSeconds:F0} s", "the case is still running", 0, sw.Elapsed.TotalSeconds);
        double seconds = sw.Elapsed.TotalSeconds;
        long allocated = GC.GetTotalAllocatedBytes(precise: false) - before;
        switch (error)
        {
            case null:
                report.Accepted++;
                break;
            case InvalidDataException or NotSupportedException:
                report.Refused++;
                string what = error.GetType().Name + ": " + Shape(error.Message);
                report.Refusals[what] = report.Refusals.GetValueOrDefault(what) + 1;
                if (!NamesTheInput(error.Message, path))
                    return ($"refusal that names no file: {error.GetType().Name}: {Shape(error.Message)}", error.Message, allocated, seconds);
                break;
            default:
                return ($"{error.GetType().Name} at {TopFrame(error)}", error.ToString(), allocated, seconds);
        }
        if (allocated > AllocationLimit(inputLength))
            return ($"allocation: {allocated / 1e6:F0} MB for a {inputLength}-byte input", $"{allocated} bytes allocated, limit {AllocationLimit(inputLength)}", allocated, seconds);
        return (null, null, allocated, seconds);
    }

    // the file's name or its folder's (config.json and tokenizer.json errors name the folder's files)
    private static bool NamesTheInput(string message, string path) =>
        message.Contains(Path.GetFileName(path), StringComparison.Ordinal) || message.Contains(Path.GetDirectoryName(path)!, StringComparison.Ordinal);

    // the message with numbers and quoted names blanked, so one cause counts once
    private static string Shape(string message)
    {
        var sb = new StringBuilder();
        bool quoted = false;
        foreach (char c in message.Length > 160 ? message[..160] : message)
        {
            if (c == '\'')
            {
                quoted = !quoted;
                sb.Append(c);
            }
            else if (!quoted)
            {
                sb.Append(char.IsDigit(c) ? '#' : c);
            }
        }
        return sb.ToString();
    }

    private static string TopFrame(Exception e)
    {
        string trace = e.StackTrace ?? "";
        string? first = trace.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("at SharpSeek", StringComparison.Ordinal));
        return first ?? trace.Split('\n')[0].Trim();
    }
}

/// <summary>The four targets, with seeds made once per process from a small synthetic model.</summary>
internal static class FuzzTargets
{
    private static readonly Lazy<Seeds> Made = new(MakeSeeds);

    private sealed record Seeds(byte[][] Gguf, int GgufHeader, byte[] Safetensors, int SafetensorsHeader, byte[] Config, byte[] Tokenizer);

    public static IEnumerable<FuzzTarget> All() => [Gguf(), Safetensors(), ConfigJson(), TokenizerJson()];

    public static FuzzTarget ByName(string name) => All().Single(t => t.Name == name);

    /// <summary>A GGUF file: parse, deepseek2 config, tokenizer (encode and decode), weights, one forward pass.</summary>
    public static FuzzTarget Gguf() => new("gguf", "model.gguf", Made.Value.Gguf, Made.Value.GgufHeader, Json: false, path =>
    {
        using GgufModelFile m = GgufModel.Open(path);
        ModelConfig c = m.Config;
        if (m.Tokenizer is { } tok)
            tok.Decode(tok.Encode("Hello, world! 123 <｜begin▁of▁sentence｜>", addSpecialTokens: true));
        using ModelWeights w = m.LoadWeights();
        Forward(w);
    });

    /// <summary>A safetensors file beside a valid config.json: header, tensors against the config, one forward pass.</summary>
    public static FuzzTarget Safetensors() => new("safetensors", "model.safetensors", [Made.Value.Safetensors], Made.Value.SafetensorsHeader, Json: false, path =>
    {
        string dir = Path.GetDirectoryName(path)!;
        File.WriteAllBytes(Path.Combine(dir, "config.json"), Made.Value.Config);
        using ModelWeights w = WeightLoader.Load(dir);
        Forward(w);
    });

    /// <summary>A config.json beside the valid safetensors file: parse, validation, tensors against it, one forward pass.</summary>
    public static FuzzTarget ConfigJson() => new("config", "config.json", [Made.Value.Config], 0, Json: true, path =>
    {
        string dir = Path.GetDirectoryName(path)!;
        string weights = Path.Combine(dir, "model.safetensors");
        if (!File.Exists(weights) || new FileInfo(weights).Length != Made.Value.Safetensors.Length)
            File.WriteAllBytes(weights, Made.Value.Safetensors);
        using ModelWeights w = WeightLoader.Load(dir);
        Forward(w);
    });

    /// <summary>A tokenizer.json: load, encode text with special tokens, decode.</summary>
    public static FuzzTarget TokenizerJson() => new("tokenizer", "tokenizer.json", [Made.Value.Tokenizer], 0, Json: true, path =>
    {
        BpeTokenizer tok = BpeTokenizer.Load(path);
        int[] ids = tok.Encode("Hello, world! 123 \u00e9\u4e2d <｜begin▁of▁sentence｜> the", addSpecialTokens: true);
        tok.Decode(ids);
        tok.Decode(Enumerable.Range(0, Math.Min(tok.VocabSize, 300)).ToArray());
    });

    private static void Forward(ModelWeights w)
    {
        int v = w.Config.VocabSize;
        new Transformer(w).Logits([0, v - 1, v / 2]);
    }

    // a 2-layer V3-shaped model (q_lora, sigmoid router, MTP dropped in the GGUF) with a 300-token byte-level vocabulary
    private static Seeds MakeSeeds()
    {
        using var temp = new TempDir();
        string dir = temp.Path;
        ModelConfig c = ModelConfig.Load(SharpSeek.Tests.Fixtures.Hf("v3-tiny")) with { VocabSize = 300, NumHiddenLayers = 2 };
        SyntheticModel.Write(c, dir, seed: 5);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), FixtureModels.ByteLevelTokenizerJson());
        var ggufs = new List<byte[]>();
        int header = 0;
        using (ModelWeights w = WeightLoader.Load(dir))
        {
            foreach (GgufFileType t in new[] { GgufFileType.Q8_0, GgufFileType.BF16 })
            {
                using var ms = new MemoryStream();
                GgufExport.Build(w, t, Path.Combine(dir, "tokenizer.json")).WriteTo(ms);
                ggufs.Add(ms.ToArray());
                using GgufFile f = GgufFile.FromMemory(ms.ToArray(), "seed.gguf");
                header = Math.Max(header, (int)f.DataOffset);
            }
        }
        byte[] st = File.ReadAllBytes(Path.Combine(dir, "model.safetensors"));
        int stHeader = 8 + (int)BitConverter.ToUInt64(st, 0);
        return new Seeds(ggufs.ToArray(), header, st, stHeader, File.ReadAllBytes(Path.Combine(dir, "config.json")),
            File.ReadAllBytes(Path.Combine(dir, "tokenizer.json")));
    }
}
