// The default chat model shipped in models/sharpseek-r1 (issue 17): R1-style reasoning on arithmetic. It loads, fits
// the 30 MB budget, renders DeepSeek-R1's template (the reply opens with <think>), and, asked the question,
// reasons in steps, answers 194 in \boxed{} after </think> and ends its turn with EOS; on held-out problems drawn like
// the test split's (another seed) it is right at least 80% of the time (it scores ~99% on the test split).
using SharpSeek.Inference;
using SharpSeek.Model;
using SharpSeek.Tests;
using SharpSeek.Tokenizer;
using SharpSeek.Training.Tasks;
using Xunit.Abstractions;

namespace SharpSeek.Training.Tests;

public sealed class R1ModelTests(ITestOutputHelper output)
{
    private static readonly string Dir = Fixtures.ShippedModel("sharpseek-r1");

    [Fact]
    public void Default_model_reasons_answers_and_ends_its_turn()
    {
        long bytes = new FileInfo(Path.Combine(Dir, "model.safetensors")).Length;
        Assert.True(bytes <= 30_000_000, $"model.safetensors is {bytes} bytes");
        using ModelSession session = ModelSession.Open(Dir, new ModelSessionOptions { Tokenizer = TokenizerLoad.Required, Threads = 2 });
        Assert.Equal("deepseek_v3", session.Config.ModelType);
        string rendered = session.Template!.Render([ChatMessage.User("What is 12 + 7 * (30 - 4)?")], addGenerationPrompt: true);
        Assert.EndsWith("<｜Assistant｜><think>\n", rendered, StringComparison.Ordinal);

        Generator g = session.CreateGenerator();
        GenerationResult r = g.Generate(g.Encode(rendered), new GenerationOptions { MaxTokens = 672, Sampling = SamplingOptions.Greedy, SkipSpecialTokens = false });
        output.WriteLine(r.Text);
        Assert.Equal(FinishReason.Stop, r.FinishReason);
        Assert.Contains("</think>", r.Text, StringComparison.Ordinal);
        Assert.True(r.Text.IndexOf("</think>", StringComparison.Ordinal) > 20, "no reasoning before </think>");
        Verdict v = Answers.Judge(r.Text, "194", endedWithEos: true);
        Assert.True(v.Correct, $"answered {v.Answer} in '{r.Text}'");

        // 60 problems drawn as the test split is (2, 3 and 4 operators), but from another seed
        List<TaskExample> tasks = TaskSet.Generate("arith", "test", 20, seed: 99);
        TaskScore score = TaskEvaluator.Evaluate(g, session.Template!, tasks, maxTokens: 672, batchSize: 32);
        output.WriteLine($"accuracy {score.Accuracy:P1} ({score.Correct}/{score.Total}), format {score.R1Format:P0}, {score.MeanCompletionTokens:0} tokens");
        Assert.Equal(1.0, score.R1Format);
        Assert.True(score.Accuracy >= MinAccuracy, $"accuracy {score.Accuracy:P1}");
    }

    private const double MinAccuracy = 0.8;
}
