// sharpseek eval-tasks: greedy accuracy on a task file ({"prompt": ..., "answer": ...} per line) through the model's
// chat template, generated with continuous batching (Generator.GenerateBatch).
using System.CommandLine;
using System.Text.Json;
using SharpSeek.Inference;
using SharpSeek.Training.Tasks;

namespace SharpSeek.Cli;

internal static class EvalTasksCommand
{
    public static Command Create()
    {
        var model = DefaultModel.Option();
        var tasks = new Option<string>("--tasks") { Description = "JSON lines with \"prompt\" and \"answer\" (an integer)", Required = true };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens per completion", DefaultValueFactory = _ => 1024 };
        var batch = new Option<int>("--batch") { Description = "Completions in flight at once (continuous batching: an ended one is replaced by the next task)", DefaultValueFactory = _ => 64 };
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N tasks" };
        var samples = new Option<string>("--samples") { Description = "Write every completion and its verdict to this JSONL file" };
        var failures = new Option<string>("--failures") { Description = "Write the tasks answered wrong to this task file (hard problems for GRPO)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var threads = CliOptions.Threads();
        var dtype = CliOptions.Dtype();
        var cmd = new Command("eval-tasks", "Greedy accuracy on verifiable tasks (answer in the last \\boxed{} after </think>)") { model, tasks, maxTokens, batch, limit, samples, failures, json, threads, dtype };
        cmd.SetAction(pr =>
        {
            string dir = DefaultModel.Resolve(pr.GetValue(model));
            int max = pr.GetValue(maxTokens), b = pr.GetValue(batch);
            if (max < 1)
                throw new UserInputException($"--max-tokens must be >= 1, got {max}");
            if (b < 1)
                throw new UserInputException($"--batch must be >= 1, got {b}");
            string path = pr.GetValue(tasks)!;
            List<TaskExample> list = TaskSet.Read(path);
            if (pr.GetValue(limit) is int n)
            {
                if (n < 1)
                    throw new UserInputException($"--limit must be >= 1, got {n}");
                list = list.Take(n).ToList();
            }
            var options = new ModelSessionOptions
            {
                Dtype = CliOptions.ParseDtype(pr.GetValue(dtype)),
                Threads = CliOptions.PositiveThreads(pr.GetValue(threads)),
                Tokenizer = TokenizerLoad.Required,
            };
            using ModelSession session = CliOptions.OpenSession(dir, options);
            bool tty = !Console.IsErrorRedirected;
            TaskScore s = TaskEvaluator.Evaluate(session.CreateGenerator(), session.Template!, list, max, b,
                (done, total) => { if (tty) Console.Error.Write($"\r{done}/{total}"); });
            if (tty)
                Console.Error.WriteLine();
            if (pr.GetValue(samples) is string out_)
            {
                var sb = new System.Text.StringBuilder();
                for (int i = 0; i < list.Count; i++)
                {
                    (string text, Verdict v, int tokens) = s.Completions[i];
                    sb.Append(JsonSerializer.Serialize(new { prompt = list[i].Prompt, answer = list[i].Answer, completion = text, parsed = v.Answer?.ToString(), correct = v.Correct, format_ok = v.FormatOk, tokens })).Append('\n');
                }
                Formats.Safetensors.AtomicFile.WriteText(out_, sb.ToString());
            }
            if (pr.GetValue(failures) is string wrong)
                TaskSet.Write(wrong, list.Where((_, i) => !s.Completions[i].Verdict.Correct).Select(t => t with { Response = null }));
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    accuracy = s.Accuracy,
                    correct = s.Correct,
                    total = s.Total,
                    format_ok = s.FormatOk,
                    r1_format = s.R1Format,
                    truncated = s.Truncated,
                    mean_completion_tokens = s.MeanCompletionTokens,
                    tokens_per_s = s.TokensPerSecond,
                    seconds = s.Seconds,
                    levels = s.Levels.Select(l => new { family = l.Family, level = l.Level, accuracy = l.Accuracy, correct = l.Correct, total = l.Total }),
                    model = dir,
                    tasks = path,
                    max_tokens = max,
                }, new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                Console.WriteLine($"{path}: accuracy {s.Accuracy:P1} ({s.Correct}/{s.Total}), parsable answers {s.FormatOk:P1}, R1 format {s.R1Format:P1}, " +
                                  $"truncated {s.Truncated:P1}; {s.MeanCompletionTokens:0.0} tokens per completion, {s.TokensPerSecond:0} tokens/s ({s.Seconds:0.0} s)");
                foreach (LevelScore l in s.Levels)
                    Console.WriteLine($"  {(l.Family.Length > 0 ? l.Family : "tasks")} level {l.Level}: {l.Accuracy:P1} ({l.Correct}/{l.Total})");
            }
            return 0;
        });
        return cmd;
    }
}
