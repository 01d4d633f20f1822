// Greedy evaluation on a task file: every prompt rendered by the model's chat template (with the generation prompt),
// completions generated through Generator.GenerateBatch (continuous batching: one forward per step over the sequences
// in flight, a finished one replaced by the next task at once), judged by Answers (the last \boxed{} after </think>). Reports accuracy, the fraction with
// a parsable answer, the R1 format rate, mean completion length, throughput, and accuracy per family and level.
using System.Diagnostics;
using SharpSeek.Inference;
using SharpSeek.Tokenizer;

namespace SharpSeek.Training.Tasks;

/// <summary>Accuracy of one family and level.</summary>
public sealed record LevelScore(string Family, int Level, int Correct, int Total)
{
    public double Accuracy => Total == 0 ? 0 : (double)Correct / Total;
}

/// <summary>The outcome of an evaluation.</summary>
public sealed record TaskScore
{
    public int Correct { get; init; }
    public int Total { get; init; }
    public double Accuracy => Total == 0 ? 0 : (double)Correct / Total;
    /// <summary>Fraction of completions with a parsable answer.</summary>
    public double FormatOk { get; init; }
    /// <summary>Fraction following the R1 reply format exactly (Answers.FormatOk).</summary>
    public double R1Format { get; init; }
    /// <summary>Fraction that stopped at the token budget or the context.</summary>
    public double Truncated { get; init; }
    public double MeanCompletionTokens { get; init; }
    /// <summary>Completion tokens per second over the whole run.</summary>
    public double TokensPerSecond { get; init; }
    public double Seconds { get; init; }
    public IReadOnlyList<LevelScore> Levels { get; init; } = [];
    /// <summary>Each completion, in task order.</summary>
    public IReadOnlyList<(string Text, Verdict Verdict, int Tokens)> Completions { get; init; } = [];
}

/// <summary>Runs greedy evaluations on task files.</summary>
public static class TaskEvaluator
{
    /// <summary>
    /// Evaluates <paramref name="tasks"/> with <paramref name="batchSize"/> completions in flight (continuous batching: an
    /// ended completion's place goes to the next task); <paramref name="progress"/> gets (done, total) as each ends.
    /// </summary>
    public static TaskScore Evaluate(Generator generator, ChatTemplate template, IReadOnlyList<TaskExample> tasks, int maxTokens,
                                     int batchSize = 64, Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        BpeTokenizer tok = generator.Tokenizer ?? throw new ArgumentException("evaluation needs the model's tokenizer");
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var options = new GenerationOptions { MaxTokens = maxTokens, Sampling = SamplingOptions.Greedy, SkipSpecialTokens = false };
        var completions = new (string, Verdict, int)[tasks.Count];
        int correct = 0, parsed = 0, formatted = 0, truncated = 0;
        long tokens = 0;
        var clock = Stopwatch.StartNew();
        var prompts = new IReadOnlyList<int>[tasks.Count];
        for (int i = 0; i < tasks.Count; i++)
        {
            prompts[i] = R1Format.EncodePrompt(tok, template, tasks[i].Prompt);
            if (prompts[i].Count + 1 > generator.ContextLength)
                throw new ArgumentException($"task {i + 1}: the prompt has {prompts[i].Count} tokens; the model's context is {generator.ContextLength}");
        }
        int done = 0;
        generator.GenerateBatch(prompts, options, cancel, batchSize, (i, r) =>
        {
            bool eos = r.FinishReason == FinishReason.Stop;
            string text = tok.Decode(r.Tokens.Take(r.Tokens.Count - (eos ? 1 : 0)).ToArray());
            Verdict v = Answers.Judge(text, tasks[i].Answer, eos);
            completions[i] = (text, v, r.Tokens.Count);
            correct += v.Correct ? 1 : 0;
            parsed += v.Answer is not null ? 1 : 0;
            formatted += v.FormatOk ? 1 : 0;
            truncated += eos ? 0 : 1;
            tokens += r.Tokens.Count;
            progress?.Invoke(++done, tasks.Count);
        });
        double seconds = clock.Elapsed.TotalSeconds;
        int total = tasks.Count;
        var levels = tasks.Select((t, i) => (t, i)).GroupBy(x => (x.t.Family, x.t.Level)).OrderBy(g => g.Key.Family, StringComparer.Ordinal).ThenBy(g => g.Key.Level)
            .Select(g => new LevelScore(g.Key.Family, g.Key.Level, g.Count(x => completions[x.i].Item2.Correct), g.Count())).ToArray();
        return new TaskScore
        {
            Correct = correct,
            Total = total,
            FormatOk = total == 0 ? 0 : (double)parsed / total,
            R1Format = total == 0 ? 0 : (double)formatted / total,
            Truncated = total == 0 ? 0 : (double)truncated / total,
            MeanCompletionTokens = total == 0 ? 0 : (double)tokens / total,
            TokensPerSecond = tokens / Math.Max(seconds, 1e-9),
            Seconds = seconds,
            Levels = levels,
            Completions = completions,
        };
    }
}
