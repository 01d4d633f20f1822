// The post-training verbs end to end on the shipped model: tasks writes deduplicated split files, eval-tasks reports
// the JSON keys of issue 17, bad task files and configs give one error line naming file, line and field, and chat
// shows the length the model was trained on and reports when a reply stops there.
using System.Text.Json;
using SharpSeek.Training.Tasks;

namespace SharpSeek.Cli.Tests;

public sealed class R1CommandTests : IClassFixture<ScratchDirectory>
{
    private readonly ScratchDirectory _scratch;

    public R1CommandTests(ScratchDirectory scratch) => _scratch = scratch;

    private static CliResult Ok(CliResult r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return r;
    }

    private static void AssertUserError(CliResult r, params string[] named)
    {
        Assert.True(r.Code == 1, r.ToString());
        string[] lines = r.Err.TrimEnd('\n').Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        foreach (string n in named)
            Assert.Contains(n, lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void TasksThenEvalTasksReportsAccuracy()
    {
        string dir = Path.Combine(_scratch.Path, "tasks");
        CliResult r = Ok(Cli.Run("tasks", "--family", "arith", "--out", dir, "--train", "20", "--validation", "2", "--test", "3"));
        Assert.Contains("arith-test.jsonl: 9 problems", r.Out, StringComparison.Ordinal);
        var prompts = new[] { "train", "validation", "test" }.SelectMany(s => File.ReadAllLines(Path.Combine(dir, $"arith-{s}.jsonl")))
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString()).ToList();
        Assert.Equal(75, prompts.Count);
        Assert.Equal(prompts.Count, prompts.Distinct().Count());

        string wrong = Path.Combine(dir, "wrong.jsonl");
        r = Ok(Cli.Run("eval-tasks", "--tasks", Path.Combine(dir, "arith-test.jsonl"), "--max-tokens", "6", "--threads", "2", "--json", "--failures", wrong));
        JsonElement j = JsonDocument.Parse(r.Out).RootElement;
        Assert.Equal(9, j.GetProperty("total").GetInt32());
        // --failures: the tasks answered wrong, as a task file (6 tokens cannot hold an answer: all nine)
        List<TaskExample> failed = TaskSet.Read(wrong);
        Assert.Equal(9 - j.GetProperty("correct").GetInt32(), failed.Count);
        Assert.Subset(TaskSet.Read(Path.Combine(dir, "arith-test.jsonl")).Select(t => (t.Prompt, t.Answer)).ToHashSet(), failed.Select(t => (t.Prompt, t.Answer)).ToHashSet());
        Assert.All(failed, t => Assert.Null(t.Response));
        foreach (string key in new[] { "accuracy", "correct", "format_ok", "mean_completion_tokens", "tokens_per_s" })
            Assert.True(j.TryGetProperty(key, out _), key);
        Assert.InRange(j.GetProperty("mean_completion_tokens").GetDouble(), 1, 6);
        Assert.Equal(3, j.GetProperty("levels").GetArrayLength());
    }

    [Fact]
    public void ColumnsTraceAndDigitSplitTokenizer()
    {
        string compact = Path.Combine(_scratch.Path, "compact"), columns = Path.Combine(_scratch.Path, "columns");
        Ok(Cli.Run("tasks", "--out", compact, "--train", "5", "--validation", "1", "--test", "1", "--seed", "3"));
        Ok(Cli.Run("tasks", "--out", columns, "--train", "5", "--validation", "1", "--test", "1", "--seed", "3", "--trace", "columns"));
        JsonElement[] a = File.ReadAllLines(Path.Combine(compact, "arith-train.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        JsonElement[] b = File.ReadAllLines(Path.Combine(columns, "arith-train.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(a.Select(e => e.GetProperty("prompt").GetString()), b.Select(e => e.GetProperty("prompt").GetString()));
        Assert.Contains(b, e => e.GetProperty("response").GetString()!.Contains(" gives ", StringComparison.Ordinal));
        Assert.DoesNotContain(a, e => e.GetProperty("response").GetString()!.Contains(" gives ", StringComparison.Ordinal));
        AssertUserError(Cli.Run("tasks", "--out", columns, "--trace", "rows"), "--trace");

        string split = Path.Combine(_scratch.Path, "split");
        CliResult r = Ok(Cli.Run("export", "--model", Cli.MiniModel, "--out", split, "--split-digits"));
        Assert.Contains("merges joining digits removed", r.Err, StringComparison.Ordinal);
        var tokenizer = SharpSeek.Tokenizer.BpeTokenizer.LoadFromDirectory(split);
        int nine = tokenizer.Encode("9").Single();
        Assert.Equal([tokenizer.Encode("1").Single(), nine, nine, nine], tokenizer.Encode("1999"));
        Assert.True(SharpSeek.Tokenizer.BpeTokenizer.LoadFromDirectory(Cli.MiniModel).Encode("1999").Length < 4); // "19" was one token
    }

    [Fact]
    public void BadTaskFilesAndConfigsNameFileLineAndField()
    {
        string bad = _scratch.File("bad.jsonl", "{\"prompt\": \"What is 1 + 2 + 3?\", \"answer\": \"6\"}\n{\"prompt\": \"x\", \"answer\": \"six\"}\n");
        AssertUserError(Cli.Run("eval-tasks", "--model", Cli.MiniModel, "--tasks", bad), $"{bad}:2:", "'answer'");
        AssertUserError(Cli.Run("eval-tasks", "--tasks", bad, "--max-tokens", "0"), "--max-tokens");
        AssertUserError(Cli.Run("eval-tasks", "--tasks", _scratch.File("none.jsonl") + "x"), "none.jsonl");
        string sft = _scratch.File("sft.json", $$"""{ "model": { "init_from": {{JsonSerializer.Serialize(Cli.MiniModel)}} }, "data": { "train": "t.jsonl" }, "lr": "fast" }""");
        AssertUserError(Cli.Run("sft", "--config", sft), "sft.json", "'lr'");
        string grpo = _scratch.File("grpo.json", $$"""{ "model": { "init_from": {{JsonSerializer.Serialize(Cli.MiniModel)}} }, "data": { "train": {{JsonSerializer.Serialize(bad)}} } }""");
        AssertUserError(Cli.Run("grpo", "--config", grpo), $"{bad}:2:", "'answer'");
        AssertUserError(Cli.Run("tasks", "--family", "poetry", "--out", _scratch.Path), "--family");
    }

    [Fact]
    public void ChatShowsTheTrainedLengthAndStopsThere()
    {
        CliResult r = Ok(Cli.Run(["chat", "--max-tokens", "3", "--temperature", "0", "--color", "never"], [], stdin: "Hello\n/exit\n"));
        Assert.Contains("context 704 tokens, the length it was trained on; config allows 1024", r.Err, StringComparison.Ordinal); // sharpseek-r1
        Assert.Contains("(finish reason: length", r.Err, StringComparison.Ordinal);
    }
}
