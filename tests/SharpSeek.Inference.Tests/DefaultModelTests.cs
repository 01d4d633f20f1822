// The prose model shipped in models/sharpseek-mini (sharpseek-r1, the default, has its architecture): it loads, fits the 30 MB budget, is trained (bits per byte on
// the opening of Persuasion, the held-out validation novel, far below an untrained model's) and continues prose
// with English words.
using System.Text.RegularExpressions;
using SharpSeek.Model;
using SharpSeek.Tests;
using SharpSeek.Tokenizer;
using Xunit.Abstractions;

namespace SharpSeek.Inference.Tests;

public sealed class DefaultModelTests(ITestOutputHelper output)
{
    private static readonly string Dir = Fixtures.ShippedModel("sharpseek-mini");

    [Fact]
    public void Shipped_model_is_a_small_trained_DeepSeek_V3()
    {
        long bytes = new FileInfo(Path.Combine(Dir, "model.safetensors")).Length;
        Assert.True(bytes <= 30_000_000, $"model.safetensors is {bytes} bytes");
        using ModelWeights w = WeightLoader.Load(Dir);
        Assert.Equal("deepseek_v3", w.Config.ModelType);
        Assert.Equal(1, w.Config.NumNextnPredictLayers);
        BpeTokenizer tok = BpeTokenizer.LoadFromDirectory(Dir);
        Assert.Equal(w.Config.VocabSize, tok.VocabSize);

        string text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "persuasion-opening.txt"));
        EvalResult r = Evaluator.Evaluate(new Transformer(w), tok, text);
        output.WriteLine($"bits per byte {r.BitsPerByte:0.000} over {r.Bytes} bytes ({r.ScoredTokens} tokens)");
        // an untrained model scores about ln(4096)/ln 2 / 3.7 bytes per token = 3.2 bits per byte
        Assert.True(r.BitsPerByte < 2.0, $"bits per byte {r.BitsPerByte:0.000}");

        var gen = new Generator(new Transformer(w), tok);
        string continuation = gen.Generate(gen.Encode("It was a fine morning, and"), new GenerationOptions { MaxTokens = 40, Sampling = new SamplingOptions { Temperature = 0 } }).Text;
        output.WriteLine(continuation);
        string[] words = Regex.Matches(continuation, @"[A-Za-z]+").Select(m => m.Value.ToLowerInvariant()).ToArray();
        Assert.True(words.Length >= 15, $"'{continuation}'");
        string[] common = ["the", "and", "of", "to", "a", "was", "he", "she", "her", "his", "in", "it", "that", "i", "had", "be", "with", "as", "not", "for"];
        Assert.True(words.Count(common.Contains) >= 4, $"few common English words in '{continuation}'");
    }
}
