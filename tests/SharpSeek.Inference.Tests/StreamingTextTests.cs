// Text side of generation on the tiny model with a tokenizer: streamed deltas, stop strings held back and cut,
// cancellation between tokens, the async stream, and the stop-string filter on its own.
using SharpSeek.Model;

namespace SharpSeek.Inference.Tests;

public class StreamingTextTests
{
    private static readonly GenerationOptions Greedy = new() { MaxTokens = 40, Sampling = SamplingOptions.Greedy, IgnoreEos = true };

    [Fact]
    public void StopStringFilterHoldsBackPartialMatches()
    {
        var f = new StopStringFilter(["</end>", "STOP"]);
        Assert.Equal("abc", f.Push("abc<"));
        Assert.Equal(1, f.HeldLength);
        Assert.Equal("", f.Push("/e"));
        Assert.Equal("</ex", f.Push("x")); // no longer a prefix: released
        Assert.Equal(0, f.HeldLength);
        Assert.Equal("q", f.Push("qST"));
        Assert.Equal(2, f.HeldLength);
        Assert.Equal("", f.Push("O"));
        Assert.Equal("", f.Push("Pzzz"));
        Assert.Equal("STOP", f.Matched);
        Assert.Equal("", f.Push("more")); // after a match nothing passes
    }

    [Fact]
    public void StopStringFilterPicksTheEarliestMatchAndFlushes()
    {
        var f = new StopStringFilter(["bc", "abcd", ""]);
        Assert.Equal("x", f.Push("xab"));
        Assert.Equal(2, f.HeldLength); // "ab" may start "abcd"
        Assert.Equal("a", f.Push("c")); // "bc" completes first
        Assert.Equal("bc", f.Matched);

        var g = new StopStringFilter(["abc"]);
        Assert.Equal("", g.Push("ab"));
        Assert.Equal("ab", g.Flush());
        Assert.Null(g.Matched);
        Assert.Equal("plain", new StopStringFilter([]).Push("plain"));
    }

    [Fact]
    public void StreamedDeltasConcatenateToTheDecodedOutput()
    {
        using TinyChatModel m = TinyChatModel.Create();
        var g = new Generator(new Transformer(m.Weights), m.Tokenizer);
        int[] prompt = m.Tokenizer.Encode("<｜begin▁of▁sentence｜>The cache holds the latent.");
        var updates = g.Stream(prompt, Greedy).ToList();
        Assert.Equal(40, updates.Count);
        Assert.All(updates.Take(39), u => Assert.Null(u.FinishReason));
        Assert.Equal(FinishReason.Length, updates[^1].FinishReason);
        Assert.Equal(Enumerable.Range(1, 40), updates.Select(u => u.CompletionTokens));
        Assert.All(updates, u => Assert.Equal(prompt.Length, u.PromptTokens));
        string streamed = string.Concat(updates.Select(u => u.Text));
        int[] ids = updates.Select(u => u.Token).ToArray();
        Assert.Equal(m.Tokenizer.Decode(ids, skipSpecialTokens: true), streamed);
        GenerationResult whole = g.Generate(prompt, Greedy);
        Assert.Equal(streamed, whole.Text);
        Assert.Equal(ids, whole.Tokens);
    }

    [Fact]
    public void StopStringsEndTheTextBeforeThemEvenAcrossTokens()
    {
        using TinyChatModel m = TinyChatModel.Create();
        var g = new Generator(new Transformer(m.Weights), m.Tokenizer);
        int[] prompt = m.Tokenizer.Encode("<｜begin▁of▁sentence｜>Hello there");
        GenerationResult full = g.Generate(prompt, Greedy);
        string text = full.Text;
        Assert.True(text.Length > 12, text);
        // a stop string spanning the boundary of two tokens, starting at the start of the third token's text
        var pieces = full.Tokens.Select(t => m.Tokenizer.Decode([t], skipSpecialTokens: true)).ToList();
        int start = pieces[0].Length + pieces[1].Length;
        int span = pieces[2].Length + Math.Min(1, pieces[3].Length);
        string stop = text.Substring(start, span);
        int first = text.IndexOf(stop, StringComparison.Ordinal);

        GenerationResult r = g.Generate(prompt, Greedy with { StopStrings = [stop] });
        Assert.Equal(FinishReason.Stop, r.FinishReason);
        Assert.Equal(stop, r.StopString);
        Assert.Equal(text[..first], r.Text);
        Assert.True(r.Tokens.Count < full.Tokens.Count);

        var streamed = g.Stream(prompt, Greedy with { StopStrings = [stop] }).ToList();
        Assert.Equal(r.Text, string.Concat(streamed.Select(u => u.Text)));
        Assert.Equal(FinishReason.Stop, streamed[^1].FinishReason);
        Assert.DoesNotContain(stop, string.Concat(streamed.Select(u => u.Text)));
    }

    [Fact]
    public void TheTokenizersEosStopsAndIsNotInTheText()
    {
        using TinyChatModel m = TinyChatModel.Create();
        var g = new Generator(new Transformer(m.Weights), m.Tokenizer);
        Assert.Equal([1, 1], g.EosTokenIds); // config.json and tokenizer_config.json agree
        int[] prompt = m.Tokenizer.Encode("<｜begin▁of▁sentence｜>Hello there");
        GenerationResult full = g.Generate(prompt, Greedy);
        int stopAt = full.Tokens[3];
        GenerationResult r = g.Generate(prompt, Greedy with { StopTokens = [stopAt] });
        Assert.Equal(FinishReason.Stop, r.FinishReason);
        Assert.Equal(4, r.Tokens.Count);
        Assert.Equal(m.Tokenizer.Decode(full.Tokens.Take(3).ToArray(), skipSpecialTokens: true), r.Text);
    }

    [Fact]
    public async Task AsyncStreamMatchesAndCancellationStopsBetweenTokens()
    {
        using TinyChatModel m = TinyChatModel.Create();
        var g = new Generator(new Transformer(m.Weights), m.Tokenizer);
        int[] prompt = m.Tokenizer.Encode("<｜begin▁of▁sentence｜>Tokens");
        var sync = g.Stream(prompt, Greedy).Select(u => u.Token).ToList();
        var got = new List<int>();
        await foreach (GenerationUpdate u in g.StreamAsync(prompt, Greedy))
            got.Add(u.Token);
        Assert.Equal(sync, got);

        using var cts = new CancellationTokenSource();
        var seen = new List<int>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (GenerationUpdate u in g.StreamAsync(prompt, Greedy, cts.Token))
            {
                seen.Add(u.Token);
                if (seen.Count == 3)
                    cts.Cancel();
            }
        });
        Assert.Equal(3, seen.Count);
        Assert.Equal(sync.Take(3), seen);
        Assert.Equal(sync, g.Stream(prompt, Greedy).Select(u => u.Token)); // usable again afterwards
        Assert.Throws<OperationCanceledException>(() => g.Generate(prompt, Greedy, cts.Token));
    }

    [Fact]
    public void OneCallAtATime()
    {
        using TinyChatModel m = TinyChatModel.Create();
        var g = new Generator(new Transformer(m.Weights), m.Tokenizer);
        using IEnumerator<GenerationUpdate> e = g.Stream([0, 5, 6], Greedy).GetEnumerator();
        Assert.True(e.MoveNext());
        Assert.Throws<InvalidOperationException>(() => g.Generate([0, 5], Greedy));
        e.Dispose();
        Assert.Equal(40, g.Generate([0, 5], Greedy).Tokens.Count);
    }
}
