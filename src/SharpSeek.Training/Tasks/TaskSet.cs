// Task files and splits. A task file is JSON lines, one problem per line:
//   {"prompt": "What is 7 * (30 - 4)?", "answer": "182", "family": "arith", "level": 2, "response": "<think>\n...\boxed{182}"}
// Only "prompt" and "answer" are required (eval-tasks and GRPO); SFT needs "response" (the worked reply, EOS not
// included); other keys are ignored. Splits come from different seeds and are deduplicated against each other by
// prompt: the test split is drawn first, validation avoids it, train avoids both.
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpSeek.Formats.Safetensors;

namespace SharpSeek.Training.Tasks;

/// <summary>One verifiable problem.</summary>
/// <param name="Prompt">The user message.</param>
/// <param name="Answer">The expected integer, as decimal text.</param>
/// <param name="Family">"arith" or "word" (or anything for files written elsewhere).</param>
/// <param name="Level">Operators (arith) or steps (word); 0 when unknown.</param>
/// <param name="Response">The worked reply in the R1 format, without EOS; null when the file has none.</param>
public sealed record TaskExample(string Prompt, string Answer, string Family = "", int Level = 0, string? Response = null);

/// <summary>Generates, writes and reads task files.</summary>
public static class TaskSet
{
    /// <summary>The task families.</summary>
    public static readonly string[] Families = ["arith", "word"];

    /// <summary>The split names, each with its own seed stream.</summary>
    public static readonly string[] Splits = ["train", "validation", "test"];

    /// <summary>
    /// Draws <paramref name="perLevel"/> problems of every level (arith: 2, 3, 4 operators; word: 1, 2, 3 steps) of
    /// split <paramref name="split"/>, none of whose prompts is in <paramref name="exclude"/> or repeated. Deterministic
    /// in (family, split, seed).
    /// </summary>
    public static List<TaskExample> Generate(string family, string split, int perLevel, ulong seed, IReadOnlySet<string>? exclude = null, ArithTrace trace = ArithTrace.Compact)
    {
        int splitIndex = Array.IndexOf(Splits, split);
        if (splitIndex < 0)
            throw new ArgumentException($"unknown split '{split}' (expected {string.Join(", ", Splits)})");
        int familyIndex = Array.IndexOf(Families, family);
        if (familyIndex < 0)
            throw new ArgumentException($"unknown task family '{family}' (expected {string.Join(", ", Families)})");
        ArgumentOutOfRangeException.ThrowIfNegative(perLevel);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var list = new List<TaskExample>();
        int[] levels = family == "arith" ? [2, 3, 4] : [1, 2, 3];
        foreach (int level in levels)
        {
            var rng = new Rng(Rng.Mix(seed ^ Rng.Mix((ulong)(splitIndex * 16 + familyIndex * 4 + level) + 0x7461736Bul)));
            int made = 0, tries = 0;
            while (made < perLevel)
            {
                if (++tries > 100 * perLevel + 10000)
                    throw new InvalidOperationException($"{family} level {level}: could not draw {perLevel} distinct problems (the space is too small)");
                TaskExample t = Draw(family, rng, level, trace);
                if ((exclude is not null && exclude.Contains(t.Prompt)) || !seen.Add(t.Prompt))
                    continue;
                list.Add(t);
                made++;
            }
        }
        return list;
    }

    /// <summary>The three splits of a family, deduplicated against each other (test first, then validation, then train)
    /// and against the prompts of <paramref name="exclude"/> (for example another seed's test split). The problems do not
    /// depend on <paramref name="trace"/>, only their worked solutions.</summary>
    public static (List<TaskExample> Train, List<TaskExample> Validation, List<TaskExample> Test) GenerateSplits(
        string family, int trainPerLevel, int validationPerLevel, int testPerLevel, ulong seed, IReadOnlySet<string>? exclude = null,
        ArithTrace trace = ArithTrace.Compact)
    {
        var taken = new HashSet<string>(exclude ?? new HashSet<string>(), StringComparer.Ordinal);
        List<TaskExample> test = Generate(family, "test", testPerLevel, seed, taken, trace);
        taken.UnionWith(test.Select(t => t.Prompt));
        List<TaskExample> validation = Generate(family, "validation", validationPerLevel, seed, taken, trace);
        taken.UnionWith(validation.Select(t => t.Prompt));
        List<TaskExample> train = Generate(family, "train", trainPerLevel, seed, taken, trace);
        return (train, validation, test);
    }

    private static TaskExample Draw(string family, Rng rng, int level, ArithTrace trace)
    {
        if (family == "arith")
        {
            ArithTask.Expression e = ArithTask.Generate(rng, level);
            return new TaskExample(ArithTask.Prompt(e), ArithTask.Evaluate(e).ToString(CultureInfo.InvariantCulture), "arith", level, ArithTask.Solution(e, trace));
        }
        WordTask.Problem p = WordTask.Generate(rng, level);
        return new TaskExample(p.Prompt, p.Answer.ToString(CultureInfo.InvariantCulture), "word", level, p.Solution);
    }

    // readable lines: '+', '<' and non-ASCII characters as they are (still valid JSON)
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes a task file atomically (one JSON object per line).</summary>
    public static void Write(string path, IEnumerable<TaskExample> tasks)
    {
        var sb = new StringBuilder();
        foreach (TaskExample t in tasks)
        {
            var o = new JsonObject { ["prompt"] = t.Prompt, ["answer"] = t.Answer };
            if (t.Family.Length > 0)
                o["family"] = t.Family;
            if (t.Level > 0)
                o["level"] = t.Level;
            if (t.Response is not null)
                o["response"] = t.Response;
            sb.Append(o.ToJsonString(Relaxed)).Append('\n');
        }
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        AtomicFile.WriteText(path, sb.ToString());
    }

    /// <summary>
    /// Reads a task file. Errors name the file, the line and the field: a line that is not a JSON object, a missing
    /// or non-string "prompt", an "answer" that is not an integer (string or number). Blank lines are skipped.
    /// </summary>
    public static List<TaskExample> Read(string path, bool requireResponse = false)
    {
        var list = new List<TaskExample>();
        foreach ((JsonObject o, Func<string, InvalidDataException> Err) in JsonLines.Read(path, "task file"))
        {
            string prompt = o["prompt"] is JsonValue pv && pv.GetValueKind() == JsonValueKind.String ? pv.GetValue<string>()
                : throw Err("field 'prompt' is missing or not a string");
            if (prompt.Length == 0)
                throw Err("field 'prompt' is empty");
            string answer = o["answer"] switch
            {
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.ToJsonString(),
                null => throw Err("field 'answer' is missing"),
                _ => throw Err("field 'answer' must be an integer or a string holding one"),
            };
            if (Answers.ParseInteger(answer) is not BigInteger canonical)
                throw Err($"field 'answer' is '{answer}', not an integer");
            string? response = null;
            if (o["response"] is JsonNode rn)
            {
                response = rn is JsonValue rv && rv.GetValueKind() == JsonValueKind.String ? rv.GetValue<string>()
                    : throw Err("field 'response' must be a string");
            }
            else if (requireResponse)
            {
                throw Err("field 'response' is missing (SFT needs the worked reply)");
            }
            string family = o["family"] is JsonValue fv && fv.GetValueKind() == JsonValueKind.String ? fv.GetValue<string>() : "";
            int level = o["level"] is JsonValue lv && lv.GetValueKind() == JsonValueKind.Number && lv.TryGetValue(out int l) ? l : 0;
            list.Add(new TaskExample(prompt, canonical.ToString(CultureInfo.InvariantCulture), family, level, response));
        }
        if (list.Count == 0)
            throw new InvalidDataException($"{path}: no tasks (the file is empty)");
        return list;
    }
}
