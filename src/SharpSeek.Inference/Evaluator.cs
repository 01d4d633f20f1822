// Perplexity and bits per byte of a text (`sharpseek eval`): the text's tokens in consecutive non-overlapping
// windows, every token after the first of its window scored, bits per byte = summed negative log-likelihood
// / ln 2 / the UTF-8 bytes of all the windows' tokens. The protocol of the reference figures.
using System.Numerics.Tensors;
using SharpSeek.Model;
using SharpSeek.Tokenizer;

namespace SharpSeek.Inference;

/// <summary>Result of <see cref="Evaluator.Evaluate"/>.</summary>
public sealed record EvalResult(double Perplexity, double BitsPerByte, long Tokens, long ScoredTokens, long Bytes, double NllNats, int Windows);

/// <summary>Scores a text with a model.</summary>
public static class Evaluator
{
    /// <summary>Scores <paramref name="text"/> in windows of <paramref name="window"/> tokens (a final shorter window is kept if it has 2+ tokens).</summary>
    public static EvalResult Evaluate(Transformer model, BpeTokenizer tokenizer, string text, int window = 256, IProgress<double>? progress = null)
    {
        if (window < 2)
            throw new ArgumentException("--window must be at least 2");
        if (window > model.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"--window {window} exceeds the model's max_position_embeddings {model.Config.MaxPositionEmbeddings}");
        int[] ids = tokenizer.Encode(text);
        int V = model.Config.VocabSize;
        double nll = 0;
        long scored = 0, bytes = 0, used = 0;
        int windows = 0;
        for (int start = 0; start + 1 < ids.Length; start += window)
        {
            int n = Math.Min(window, ids.Length - start);
            if (n < 2)
                break;
            ReadOnlySpan<int> w = ids.AsSpan(start, n);
            float[] logits = model.Logits(w);
            for (int t = 0; t + 1 < n; t++)
            {
                ReadOnlySpan<float> row = logits.AsSpan(t * V, V);
                float max = TensorPrimitives.Max(row);
                double z = 0;
                foreach (float v in row)
                    z += Math.Exp(v - max);
                nll += max + Math.Log(z) - row[w[t + 1]];
            }
            foreach (int id in w)
                bytes += tokenizer.GetTokenBytes(id).Length;
            scored += n - 1;
            used += n;
            windows++;
            progress?.Report((double)(start + n) / ids.Length);
        }
        if (scored == 0)
            throw new ArgumentException("the text has fewer than 2 tokens");
        return new EvalResult(Math.Exp(nll / scored), nll / Math.Log(2) / bytes, used, scored, bytes, nll, windows);
    }
}
