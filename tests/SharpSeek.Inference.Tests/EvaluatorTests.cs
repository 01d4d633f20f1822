using SharpSeek.Model;

namespace SharpSeek.Inference.Tests;

public sealed class EvaluatorTests
{
    private const string Text = "It is a truth universally acknowledged, that a single man in possession of a good fortune, " +
                                "must be in want of a wife. However little known the feelings or views of such a man may be.";

    [Fact]
    public void Bits_per_byte_follow_the_window_protocol()
    {
        using var m = TinyChatModel.Create();
        var model = new Transformer(m.Weights);
        int[] ids = m.Tokenizer.Encode(Text);
        Assert.True(ids.Length > 20);
        const int window = 8;
        EvalResult r = Evaluator.Evaluate(model, m.Tokenizer, Text, window);

        // the same protocol written out: windows [0,8), [8,16), ...; targets inside each window only
        double nll = 0;
        long scored = 0, bytes = 0;
        int V = m.Weights.Config.VocabSize;
        for (int s = 0; s + 1 < ids.Length; s += window)
        {
            int[] w = ids.Skip(s).Take(window).ToArray();
            if (w.Length < 2)
                break;
            float[] logits = model.Logits(w);
            for (int t = 0; t + 1 < w.Length; t++)
            {
                double max = logits.Skip(t * V).Take(V).Max();
                double z = logits.Skip(t * V).Take(V).Sum(v => Math.Exp(v - max));
                nll += max + Math.Log(z) - logits[t * V + w[t + 1]];
                scored++;
            }
            bytes += System.Text.Encoding.UTF8.GetByteCount(m.Tokenizer.Decode(w));
        }
        Assert.Equal(scored, r.ScoredTokens);
        Assert.Equal(bytes, r.Bytes);
        Assert.Equal(nll / Math.Log(2) / bytes, r.BitsPerByte, 1e-9);
        Assert.Equal(Math.Exp(nll / scored), r.Perplexity, 1e-6);
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(Text), r.Bytes); // windows cover the whole text
        // a random-weight model is near uniform: about ln(V) nats per token
        Assert.InRange(Math.Log(r.Perplexity), 0.5 * Math.Log(V), 2 * Math.Log(V));
    }

    [Fact]
    public void Too_short_text_and_bad_window_fail_clearly()
    {
        using var m = TinyChatModel.Create();
        var model = new Transformer(m.Weights);
        Assert.Throws<ArgumentException>(() => Evaluator.Evaluate(model, m.Tokenizer, "", 8));
        Assert.Throws<ArgumentException>(() => Evaluator.Evaluate(model, m.Tokenizer, Text, 1));
        Assert.Throws<ArgumentException>(() => Evaluator.Evaluate(model, m.Tokenizer, Text, 100000));
    }
}
